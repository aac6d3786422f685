"""Data-parallel training with ``torch.distributed`` (DDP), started by torchrun.

``torchrun --nproc_per_node=N -m vaekit train ...`` (or ``vaekit train --nproc N``, which starts
exactly that) runs N copies of the trainer. torchrun sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`session` joins the process group
(gloo on CPU, nccl on CUDA) and leaves it. Every rank reads an equal, disjoint slice of every
global batch (``TensorLoader(rank=, world=)``), DDP averages the gradients, and rank 0 alone
writes the run folder.

Why one global batch equals the single-process batch: with per-rank batches of equal size
``b = B / W``, the mean of the W per-rank mean losses is the mean loss over the B examples, so
the averaged gradient is the full-batch gradient up to float summation order. The learning rate
therefore stays as configured (no linear scaling is applied: the step is the same step).
This holds for losses that are means of per-example terms. Objectives built on batch statistics
(free bits' batch-mean KL per dimension, the sparse autoencoder's mean activation) take those
statistics through :func:`global_batch_mean`, which makes them statistics of the global batch, so
they too equal the single-process objective.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import torch
import torch.distributed as dist

from .errors import ConfigError, RankFailed, VaekitError

if TYPE_CHECKING:
    from .config import TrainConfig


@dataclass(frozen=True)
class Env:
    """Where this process stands in the job."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env() -> Env:
    """The job layout torchrun describes in the environment (one process when it is absent)."""
    try:
        return Env(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))
    except ValueError as err:
        raise ConfigError(f"RANK / WORLD_SIZE / LOCAL_RANK must be integers ({err}); start with torchrun") from None


def active() -> bool:
    """True inside a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def device_for(device: torch.device) -> torch.device:
    """On CUDA every rank owns the GPU ``LOCAL_RANK`` of its machine."""
    if device.type == "cuda" and env().world > 1:
        return torch.device("cuda", env().local_rank)
    return device


@contextlib.contextmanager
def session(device_name: str) -> Iterator[Env]:
    """Join the process group when torchrun started several processes; leave it afterwards.

    nccl when the run is on CUDA, gloo otherwise. Nothing happens for a single process, or when
    the caller already initialised the group (it then also tears it down).
    """
    e = env()
    if e.world <= 1 or dist.is_initialized():
        yield e
        return
    cuda = device_name in ("auto", "cuda") and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(e.local_rank)
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        yield e
    finally:
        dist.destroy_process_group()


def barrier() -> None:
    if active():
        dist.barrier()


def collective_device() -> torch.device:
    """Where a tensor handed to a collective must live: NCCL reduces CUDA tensors only (this rank's
    GPU, set in :func:`session`), gloo CPU ones."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def any_flags(*flags: bool) -> list[bool]:
    """Each flag OR-ed over all ranks (one tiny all-reduce), so every rank takes the same branch."""
    if not active():
        return list(flags)
    t = torch.tensor([float(f) for f in flags], device=collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def on_main(fn: Callable[[], Any]) -> Any:
    """``fn()`` on rank 0 only (taking the run folder's lock, writing); every rank fails if it fails.

    A collective: the other ranks learn of rank 0's failure here instead of waiting for it in the
    next collective until the process group times out.
    """
    err: Exception | None = None
    result = None
    if env().is_main or not active():
        try:
            result = fn()
        except Exception as e:  # noqa: BLE001 - re-raised below, on this rank and as a stop elsewhere
            err = e
    if any_flags(err is not None)[0]:
        if err is not None:
            raise err
        raise VaekitError(f"rank {env().rank}: stopping, rank 0 could not start (its message says why)")
    return result


def is_peer_failure(err: BaseException) -> bool:
    """Whether a collective failed because another rank is gone (connection reset/closed, timeout).

    gloo reports a dead peer as a plain RuntimeError from its transport, so the message is matched too.
    """
    if not active():
        return False
    if isinstance(err, (dist.DistNetworkError, dist.DistStoreError)):
        return True
    text = str(err)  # not any gloo/NCCL error: a shape mismatch is a bug, not a lost rank
    return isinstance(err, RuntimeError) and any(
        s in text for s in ("Connection reset", "Connection closed", "Connection refused", "Broken pipe",
                            "Timed out", "timed out", "communicator was aborted"))


def rank_lost(err: BaseException, resume_hint: str) -> RankFailed:
    """The one line a surviving rank stops with (torchrun's launcher names the rank that died)."""
    first = " ".join(str(err).split()).split("] ", 1)[-1]  # without gloo's source-file prefix
    first = first.split(". ", 1)[0][:160]  # its first sentence: "Read error ...: Connection reset by peer"
    return RankFailed(f"rank {env().rank}: another rank of the {env().world}-process job stopped "
                      f"answering ({first}); stopping. {resume_hint}")


def global_batch_mean(local: torch.Tensor) -> torch.Tensor:
    """A batch statistic of this rank's shard (e.g. a mean over its examples, (D,)) made global.

    Value: the mean of ``local`` over all ranks. Every rank holds an equal share of each global
    batch, so that is the statistic of the global batch, as one process would compute it.
    Gradient: that of ``local`` alone (a straight-through sum), which is what makes DDP exact: for
    an objective f(m) of the global mean m = (1/W) sum_r m_r, df/dtheta = (1/W) sum_r f'(m) dm_r/dtheta,
    and DDP's gradient averaging supplies the 1/W sum when each rank back-propagates f'(m) dm_r/dtheta.
    Outside a process group it returns ``local`` itself. Call it from training steps only: it is a
    collective, and rank 0 evaluates alone.
    """
    if not active():
        return local
    total = local.detach().clone()
    dist.all_reduce(total)
    return local + (total / dist.get_world_size() - local).detach()


def seed_step(seed: int, step: int) -> None:
    """Under DDP, reseed every rank's torch RNG from (seed, rank, step) before each step.

    Distinct per rank, so the reparameterisation noise of the W shards is independent (one seed
    on all ranks would give example i on rank 0 the same eps as example i on rank 1), and a
    function of the step alone, so ``--resume`` reproduces it with no saved per-rank RNG state.
    """
    rank = dist.get_rank() if active() else 0
    torch.manual_seed(((seed * 1_000_003 + rank) * 1_000_003 + step) % (2**63 - 1))


def gather_running(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Every rank's :meth:`vaekit.train.Running.state`, in rank order (a collective)."""
    if not active():
        return [state]
    states: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(states, state)
    return states


def merge_running(states: list[dict[str, Any]]) -> dict[str, Any]:
    """One running state summing the per-rank sums and counts."""
    names = next((s["names"] for s in states if s["sums"] is not None), states[0]["names"])
    sums = [0.0] * len(names)
    for s in states:
        if s["sums"] is not None:
            sums = [a + b for a, b in zip(sums, s["sums"])]
    count = sum(int(s["count"]) for s in states)
    return {"names": names, "count": count, "sums": sums if count else None}


def check_flags(t: "TrainConfig", device: torch.device) -> None:
    """bf16 autocast and torch.compile are CUDA speed-ups: refuse them elsewhere."""
    if device.type == "cuda":
        return
    for on, what in ((t.precision == "bf16", "train.precision=bf16 (--bf16)"),
                     (t.compile, "train.compile (--compile)")):
        if on:
            raise ConfigError(
                f"{what} applies to CUDA training only and this run is on {device.type}; "
                "drop the flag or train with --device cuda"
            )


def wrap(model: torch.nn.Module, device: torch.device, t: "TrainConfig") -> Callable[..., Any]:
    """The callable the training step runs the model through: DDP, compile. (Channels-last is the
    conv layers' own layout, vaekit.nn.conv, on every device.)"""
    net: Any = model
    if active():
        # DDP broadcasts rank 0's parameters and buffers here, so all ranks start identical.
        ids = [device.index] if device.type == "cuda" else None
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if t.compile:
        net = torch.compile(net)
    return net


def autocast(t: "TrainConfig", device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on CUDA when asked for; otherwise nothing."""
    if t.precision == "bf16" and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def without_nproc(argv: Sequence[str]) -> list[str]:
    """``argv`` minus ``--nproc N`` / ``--nproc=N``: what each worker is started with."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def launch(nproc: int, argv: Sequence[str]) -> int:
    """Run ``vaekit <argv>`` on ``nproc`` local processes with torchrun's launcher; the exit code.

    Exactly ``python -m torch.distributed.run --standalone --nproc_per_node=N -m vaekit <argv>``,
    run in this process so that a failed job ends in one line instead of torchrun's report: when a
    rank dies, torchrun stops the others (SIGTERM, then SIGKILL after its grace period) and this
    names the rank, its signal and the checkpoint to resume from. ``--standalone`` picks a free
    port on this machine; for several machines call torchrun directly (see the README).
    """
    import logging
    import time

    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    if nproc < 1:
        raise ConfigError(f"--nproc must be at least 1 (got {nproc})")
    args = torchrun.parse_args(["--standalone", f"--nproc_per_node={nproc}", "-m", "vaekit", *without_nproc(argv)])
    start = time.monotonic()
    logging.disable(logging.ERROR)  # the agent's multi-line failure report: replaced by one line below
    try:
        torchrun.run(args)
    except ChildFailedError as err:
        return _report_failure(err.failures, argv, nproc, time.monotonic() - start)
    except SignalException as err:  # Ctrl-C / SIGTERM of the launcher: torchrun passed it on to the ranks
        print(f"vaekit: interrupted ({signal_name(err.sigval)}); the ranks were stopped", file=sys.stderr)
        return 130
    finally:
        logging.disable(logging.NOTSET)
    return 0


def signal_name(sig: int) -> str:
    import signal

    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _report_failure(failures: dict[int, Any], argv: Sequence[str], nproc: int, seconds: float) -> int:
    """Print which rank died and what is kept; return the job's exit code."""
    import argparse
    from pathlib import Path

    from .run import resume_hint

    died = {r: f for r, f in failures.items() if f.exitcode < 0}
    # Once a rank fails torchrun stops the others with SIGTERM: those deaths are not the cause.
    cause = {r: f for r, f in died.items() if f.signal_name() != "SIGTERM"} or died
    if not cause:  # ranks that stopped with an error of their own have printed it
        return int(min(failures.values(), key=lambda f: f.timestamp).exitcode)
    rank, f = min(cause.items(), key=lambda kv: (kv[1].timestamp, kv[0]))
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--out")
    out = parser.parse_known_args(list(argv))[0].out
    hint = resume_hint(Path(out), nproc) if out else "Resume it with --resume on its run folder."
    print(f"vaekit: error: rank {rank} (pid {f.pid}) died ({f.signal_name()}); torchrun stopped the "
          f"other rank(s), the job ended after {seconds:.0f}s. {hint}", file=sys.stderr)
    return 1
