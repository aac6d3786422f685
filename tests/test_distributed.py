"""DDP on CPU: two gloo processes on loopback train like one process with the same global batch.

The processes are forked from the test (cheap: torch is already imported) and join a process
group through the same environment torchrun sets (RANK, WORLD_SIZE, MASTER_ADDR/PORT).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest
import torch
from safetensors.torch import load_file, save_file

import vaekit
from vaekit import distributed
from vaekit.cli import main
from vaekit.config import ModelConfig
from vaekit.distributions import DiagonalGaussian
from vaekit.models import build
from vaekit.checkpoint import load_tensors
from vaekit.data import Split, TensorLoader
from vaekit.errors import TrainingInterrupted
from vaekit.runlock import LOCK, lock_run
from vaekit.train import Trainer

from conftest import small_config

TIMEOUT = 300  # seconds before a hung worker fails the test instead of hanging the suite


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _join(rank: int, world: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)


def _worker(rank: int, world: int, port: int, cfg: dict, out: str, dump: str, resume: bool, stop_at: int | None,
            local_stats: bool = False) -> None:
    _join(rank, world, port)
    if local_stats:  # the control: batch statistics of each rank's shard, as before global_batch_mean
        import vaekit.models.ae_variants as variants

        variants.global_batch_mean = lambda t: t  # type: ignore[assignment]
    if stop_at is not None and rank == world - 1:  # a signal reaching the last rank only
        step = Trainer._step

        def stepping(self: Trainer, x: torch.Tensor, y: torch.Tensor | None) -> None:
            if self.step == stop_at:
                self.stop_signal = signal.SIGTERM
            step(self, x, y)

        Trainer._step = stepping  # type: ignore[method-assign]
    try:
        run = vaekit.train(vaekit.Config.from_dict(cfg), out, resume=resume)
    except TrainingInterrupted:
        return
    # Parameters only: buffers fitted after training (the ae's code Gaussian) are rank 0's job.
    save_file({k: v.detach().contiguous() for k, v in run.model.named_parameters()}, f"{dump}/rank{rank}.safetensors")


def ddp(cfg: vaekit.Config, out: Path, dump: Path, world: int = 2, resume: bool = False,
        stop_at: int | None = None, local_stats: bool = False) -> list[dict]:
    """Train ``cfg`` in ``world`` fresh processes; every rank's final weights (none if stopped).

    spawn, not fork: forking a pytest process that has trained before can inherit held locks.
    """
    dump.mkdir(exist_ok=True)
    port = _free_port()
    run_ranks(_worker, world, port, cfg.to_dict(), str(out), str(dump), resume, stop_at, local_stats)
    return [] if stop_at is not None else [load_file(dump / f"rank{r}.safetensors") for r in range(world)]


def run_ranks(target: Callable[..., None], world: int, port: int, *args: object) -> None:
    """Run ``target(rank, world, port, *args)`` in ``world`` spawned processes; all must exit 0."""
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=target, args=(r, world, port, *args)) for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(TIMEOUT)
        if p.is_alive():
            p.kill()
    assert [p.exitcode for p in procs] == [0] * world


def state(run: vaekit.Run) -> dict:
    return {k: v.detach() for k, v in run.model.named_parameters()}


def test_strided_shards_make_up_the_global_batch():
    # Rank r takes examples r, r + W, ... of the permutation, so the W rank-batches of step b are
    # exactly the single-process batch b: the condition for DDP == one process.
    split = Split(torch.zeros(96, 1), torch.arange(96))
    whole = [y.tolist() for _, y in TensorLoader(split, 16, seed=3)]
    shards = [[y.tolist() for _, y in TensorLoader(split, 8, seed=3, rank=r, world=2)] for r in range(2)]
    assert [sorted(a + b) for a, b in zip(*shards)] == [sorted(b) for b in whole]


# Ng's sparse autoencoder: its penalty is a function of the batch-mean activation, a batch statistic.
SPARSE = {"name": "sparse-ae", "options": {"penalty": "kl", "weight": 3.0, "rho": 0.05}}


@pytest.mark.parametrize("model", [{"name": "ae"}, SPARSE], ids=["ae", "sparse-ae"])
def test_ddp_matches_one_process(tmp_path: Path, model: dict):
    # Autoencoders have no sampling noise, so the only difference between the runs is float
    # summation order (per-rank means averaged vs one mean over 64): measured ~1e-7.
    cfg = small_config(model={**model, "hidden": [32], "latent_dim": 4},
                       train={"epochs": 2, "batch_size": 64, "threads": 1})
    ranks = ddp(cfg, tmp_path / "ddp", tmp_path / "dump")
    for k in ranks[0]:
        assert torch.equal(ranks[0][k], ranks[1][k]), k  # DDP keeps the replicas identical
    single = state(vaekit.train(cfg, tmp_path / "one"))
    worst = max(float((ranks[0][k] - single[k]).abs().max()) for k in single)
    assert worst < 1e-4
    if model is SPARSE:  # the control: with each shard's own mean activation the runs part
        local = ddp(cfg, tmp_path / "local", tmp_path / "dump-local", local_stats=True)
        assert max(float((local[0][k] - single[k]).abs().max()) for k in single) > 100 * max(worst, 1e-6)
    # Rank 0 alone wrote the run, with metrics over both shards: the same train loss as one process.
    ddp_rows, one_rows = vaekit.load_run(tmp_path / "ddp").metrics, vaekit.load_run(tmp_path / "one").metrics
    assert [r["epoch"] for r in ddp_rows] == [1, 2]
    assert ddp_rows[-1]["train_loss"] == pytest.approx(one_rows[-1]["train_loss"], rel=1e-4)
    assert ddp_rows[-1]["test_loss"] == pytest.approx(one_rows[-1]["test_loss"], rel=1e-4)


def _free_bits_worker(rank: int, world: int, port: int, mu: torch.Tensor, dump: str) -> None:
    _join(rank, world, port)
    with distributed.session("cpu"):
        # DDP averages the ranks' gradients, and only this rank's loss depends on its rows of mu:
        # their share of the averaged gradient is this rank's gradient / world.
        grad = free_bits_grad(mu[rank::world]) / world
        save_file({"grad": grad}, f"{dump}/rank{rank}.safetensors")


def free_bits_grad(mu: torch.Tensor) -> torch.Tensor:
    """d/dmu of the free-bits penalty's batch mean, for q = N(mu, I) (analytic KL = mu^2 / 2)."""
    model = build(ModelConfig(name="freebits-vae", hidden=[4], latent_dim=2, options={"floor": 0.25}), (4,))
    mu = mu.clone().requires_grad_(True)
    q = DiagonalGaussian(mu, torch.zeros_like(mu))
    model.kl_penalty(q.kl_standard_normal_per_dim().sum(-1), q, q.mu[None], step=0).mean().backward()
    return mu.grad


def test_ddp_free_bits_decides_on_the_global_batch(tmp_path: Path):
    # Dimension 0's mean KL is 0.005 on rank 0's half and 0.5 on rank 1's: 0.2525 over the global
    # batch, just above the 0.25-nat floor. One process trains it (a gradient on every example);
    # a rank deciding on its own half would floor rank 0's examples (no gradient) instead.
    mu = torch.tensor([[0.1, 0.0], [1.0, 0.0]]).repeat(4, 1)  # rows alternate between the ranks
    single = free_bits_grad(mu)
    assert (single[:, 0] != 0).all() and (single[:, 1] == 0).all()
    dump = tmp_path / "dump"
    dump.mkdir()
    run_ranks(_free_bits_worker, 2, _free_port(), mu, str(dump))
    for r in range(2):
        torch.testing.assert_close(load_file(dump / f"rank{r}.safetensors")["grad"], single[r::2])
    assert (free_bits_grad(mu[0::2])[:, 0] == 0).all()  # rank 0's own half alone: floored


VAE = {"model": {"hidden": [32], "latent_dim": 4}, "train": {"epochs": 2, "batch_size": 64, "threads": 1}}


@pytest.fixture(scope="module")
def vae_full(tmp_path_factory) -> tuple[vaekit.Config, Path, list[dict]]:
    """An uninterrupted 2-process VAE run: what every interrupted-and-resumed one must end as."""
    cfg = small_config(**VAE)
    base = tmp_path_factory.mktemp("vae")
    full = ddp(cfg, base / "full", base / "dump")
    assert all(torch.equal(full[0][k], full[1][k]) for k in full[0])
    return cfg, base / "full", full


def test_ddp_vae_stops_together_and_resumes_mid_epoch_exactly(tmp_path: Path, vae_full):
    # A VAE (noise reseeded per rank and step) whose last rank alone is signalled at step 11 (epoch 2,
    # batch 4 of 8): both ranks stop after that step (the stop flag is all-reduced), rank 0 saves
    # the merged running sums, and the resumed run ends bit-identical to an uninterrupted one.
    cfg, full_dir, full = vae_full
    ddp(cfg, tmp_path / "cut", tmp_path / "d2", stop_at=11)
    _, saved = load_tensors(tmp_path / "cut" / "checkpoints" / "last.safetensors")
    assert (saved["epoch"], saved["batch"], saved["step"]) == (1, 4, 12)
    assert saved["running"]["count"] == 4 * 64  # both shards' examples, not rank 0's alone
    resumed = ddp(cfg, tmp_path / "cut", tmp_path / "d3", resume=True)
    assert all(torch.equal(resumed[0][k], full[0][k]) for k in full[0])
    rows, ref = vaekit.load_run(tmp_path / "cut").metrics, vaekit.load_run(full_dir).metrics
    assert [dict(r, seconds=0, cpu_seconds=0) for r in rows] == [dict(r, seconds=0, cpu_seconds=0) for r in ref]


def test_a_rank_killed_mid_epoch_stops_the_job_and_resume_is_exact(tmp_path: Path, vae_full):
    """`vaekit train --nproc 2` (torchrun, gloo on loopback) whose rank 1 is SIGKILLed at the start of
    step 11 (epoch 2, batch 4 of 8): the job stops at once with one line naming the dead rank, the
    checkpoint of step 11 is kept, and `--resume --nproc 2` ends bit-identical to an uninterrupted run."""
    cfg, full_dir, full = vae_full
    cut = tmp_path / "cut"
    (tmp_path / "cfg.json").write_text(json.dumps(vaekit.Config.from_dict(
        {**cfg.to_dict(), "train": {**cfg.to_dict()["train"], "checkpoint_every_steps": 1}}).to_dict()))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "vaekit", "train", "--nproc", "2", "--out", str(cut)]
    done = subprocess.run([*cmd, "--config", str(tmp_path / "cfg.json")], capture_output=True, text=True,
                          timeout=TIMEOUT, env={**env, "VAEKIT_FAULT": "kill-rank:1:step:11"})
    ended = time.time()
    last = cut / "checkpoints" / "last.safetensors"
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "ChildFailedError" not in done.stderr, done.stderr[-3000:]
    assert re.search(r"^vaekit: error: rank 1 \(pid \d+\) died \(SIGKILL\); torchrun stopped the other rank", done.stderr,
                     re.M), done.stderr
    assert f"The last checkpoint (epoch 1 + 3 batches, step 11) is kept; continue with: vaekit train --nproc 2 " \
           f"--out {cut} --resume" in done.stderr
    assert ended - last.stat().st_mtime < 30  # stopped within torchrun's grace period (~1 s measured)
    assert not (cut / "model.safetensors").exists()
    resumed = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=TIMEOUT, env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stdout.count(f"wrote {cut}") == 1  # rank 0 reports, rank 1 stays quiet
    weights = load_tensors(cut / "model.safetensors")[0]
    assert all(torch.equal(weights[k], full[0][k]) for k in full[0])
    rows, ref = vaekit.load_run(cut).metrics, vaekit.load_run(full_dir).metrics
    assert [dict(r, seconds=0, cpu_seconds=0) for r in rows] == [dict(r, seconds=0, cpu_seconds=0) for r in ref]


def _locked_worker(rank: int, world: int, port: int, cfg: dict, out: str, dump: str) -> None:
    _join(rank, world, port)
    try:
        vaekit.train(vaekit.Config.from_dict(cfg), out)
    except vaekit.VaekitError as err:
        Path(f"{dump}/rank{rank}.txt").write_text(f"{type(err).__name__}: {err}")


def test_ddp_refused_by_a_held_lock_stops_every_rank(tmp_path: Path):
    # Rank 0 alone takes the run folder's lock; when it cannot, rank 1 hears of it at once (not at
    # the next collective, after the process group's 30-minute timeout) and nothing is written.
    cfg = small_config(model={"name": "ae", "hidden": [8], "latent_dim": 2}, train={"epochs": 1, "threads": 1})
    out, dump = tmp_path / "run", tmp_path / "dump"
    dump.mkdir()
    with lock_run(out, "test", create=True):
        run_ranks(_locked_worker, 2, _free_port(), cfg.to_dict(), str(out), str(dump))
        assert [p.name for p in out.iterdir()] == [LOCK]
    assert (dump / "rank0.txt").read_text().startswith(f"RunBusyError: {out} is in use: pid {os.getpid()} ")
    assert "rank 1: stopping, rank 0 could not start" in (dump / "rank1.txt").read_text()


def test_without_nproc():
    assert distributed.without_nproc(["train", "--nproc", "2", "--epochs", "1", "--nproc=3"]) == ["train", "--epochs", "1"]


@pytest.mark.parametrize("flag,key", [("--bf16", "train.precision=bf16"), ("--compile", "train.compile")])
def test_cuda_flags_are_refused_on_cpu(tmp_path: Path, capsys, flag: str, key: str):
    code = main(["train", flag, "--device", "cpu", "--data", "digits", "--epochs", "1", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert key in err and "CUDA" in err and not (tmp_path / "r").exists()


def test_global_batch_must_divide_over_ranks(tmp_path: Path, monkeypatch):
    # The check runs before the model is wrapped, so a pretend 2-process job is enough to reach it.
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(distributed, "active", lambda: True)
    cfg = small_config(model={"name": "ae", "hidden": [8], "latent_dim": 2}, train={"batch_size": 63, "epochs": 1})
    with pytest.raises(vaekit.VaekitError, match="train.batch_size=63 is the global batch .* multiple of 2"):
        Trainer(cfg, tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_collective_flags_live_where_the_backend_reduces(monkeypatch):
    """NCCL all-reduces CUDA tensors only: any_flags' flag tensor goes to this rank's GPU under
    nccl and stays on the CPU under gloo (a CPU tensor under NCCL fails at the first collective)."""
    monkeypatch.setattr(distributed.dist, "get_backend", lambda *a: "nccl")
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    assert distributed.collective_device() == torch.device("cuda", 1)
    monkeypatch.setattr(distributed.dist, "get_backend", lambda *a: "gloo")
    assert distributed.collective_device() == torch.device("cpu")
    seen = []
    monkeypatch.setattr(distributed, "active", lambda: True)
    monkeypatch.setattr(distributed.dist, "all_reduce", lambda t, op=None: seen.append(t.device) or t.fill_(1.0))
    assert distributed.any_flags(False, True) == [True, True] and seen == [torch.device("cpu")]
