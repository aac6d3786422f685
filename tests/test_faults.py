"""Crash safety with real processes: SIGKILL at chosen and random moments (mid-checkpoint
included), SIGINT/SIGTERM, non-finite steps, and write errors. Resumed runs must end with weights
identical to an uninterrupted run."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import small_config

import vaekit
from vaekit import checkpoint
from vaekit.errors import RunWriteError, TrainingDiverged
from vaekit.models.vae import VAE
from vaekit.train import Trainer

# Small and quick: 256 digits, 4 batches per epoch, a checkpoint after every optimiser step.
ARGS = ["--data", "digits", "--limit", "256", "--batch-size", "64", "--latent-dim", "3",
        "--set", "model.hidden=[32]", "--set", "train.checkpoint_every_steps=1",
        "--set", "train.threads=1", "--no-progress"]
ENV = dict(os.environ, OMP_NUM_THREADS="1")


def _train(out: Path, epochs: int, *extra: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "vaekit", "train", *ARGS, "--epochs", str(epochs), "--out", str(out), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env=env or ENV, timeout=300, **kw)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return checkpoint.load_tensors(run / "model.safetensors")[0]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, torch.Tensor]:
    out = tmp_path_factory.mktemp("ref") / "run"
    r = _train(out, 3)
    assert r.returncode == 0, r.stderr
    return _weights(out)


# Write 1 is config.json, write 2 data.json, writes 3-14 the checkpoints after each of the 12 steps,
# write 15 the final model.safetensors. (A kill during write 3 leaves no checkpoint at all: --resume
# then says so.)
@pytest.mark.parametrize("fault", ["mid-write:4", "before-rename:5", "mid-write:8", "before-rename:10",
                                   "mid-write:13", "before-rename:15"])
def test_sigkill_during_checkpoint_then_resume(fault, reference, tmp_path):
    out = tmp_path / "run"
    r = _train(out, 3, env=dict(ENV, VAEKIT_FAULT=fault))
    assert r.returncode == -signal.SIGKILL, (r.returncode, r.stderr)
    assert list(out.glob("**/.*.tmp")), "the kill should leave a torn temporary behind"
    checkpoint.load_tensors(out / "checkpoints" / "last.safetensors")  # the last complete one reads fine
    r = _train(out, 3, "--resume")
    assert r.returncode == 0, r.stderr
    assert not list(out.glob("**/.*.tmp"))
    got = _weights(out)
    assert all(torch.equal(got[k], v) for k, v in reference.items())
    epochs = [line for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [json.loads(e)["epoch"] for e in epochs] == [1, 2, 3]


@pytest.mark.parametrize("delay", [0.0, 0.15, 0.4])
def test_sigkill_at_random_moments_then_resume(delay, tmp_path):
    out, ref = tmp_path / "run", tmp_path / "ref"
    assert _train(ref, 12).returncode == 0
    proc = subprocess.Popen([sys.executable, "-m", "vaekit", "train", *ARGS, "--epochs", "12", "--out", str(out)],
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (out / "checkpoints" / "last.safetensors").exists() and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(delay)
    proc.kill()
    proc.wait()
    r = _train(out, 12, "--resume")
    assert r.returncode == 0, r.stderr
    assert all(torch.equal(_weights(out)[k], v) for k, v in _weights(ref).items())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_cleanly_and_resumes_exactly(sig, tmp_path):
    out, ref = tmp_path / "run", tmp_path / "ref"
    assert _train(ref, 30).returncode == 0
    proc = subprocess.Popen([sys.executable, "-m", "vaekit", "train", *ARGS, "--epochs", "30", "--out", str(out)],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not (out / "checkpoints" / "last.safetensors").exists():
        time.sleep(0.01)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"stopped by {sig.name}" in err and f"vaekit train --out {out} --resume" in err
    # Besides the log (what was loaded, notes, epoch lines) the error is one line, and no traceback.
    log = ("data ", "note: ", "epoch ")
    lines = [line for line in err.strip().splitlines() if not line.startswith(log)]
    assert len(lines) == 1 and lines[0].startswith("vaekit: error: stopped by") and "Traceback" not in err, err
    r = _train(out, 30, "--resume")
    assert r.returncode == 0, r.stderr
    assert all(torch.equal(_weights(out)[k], v) for k, v in _weights(ref).items())


def test_resume_in_the_middle_of_an_epoch_in_process(tmp_path, monkeypatch):
    cfg = small_config(model={"hidden": [32], "latent_dim": 3}, data={"limit": 256, "binarize": "dynamic"},
                       train={"checkpoint_every_steps": 2, "epochs": 2})
    full = vaekit.train(cfg, tmp_path / "full", log=lambda s: None)
    calls = {"n": 0}
    original = Trainer._step

    def crash_at_step_7(self, x, y):
        calls["n"] += 1
        if calls["n"] == 7:
            raise RuntimeError("simulated crash")
        original(self, x, y)

    monkeypatch.setattr(Trainer, "_step", crash_at_step_7)
    with pytest.raises(RuntimeError, match="simulated crash"):
        vaekit.train(cfg, tmp_path / "part", log=lambda s: None)
    monkeypatch.undo()
    meta = checkpoint.load_tensors(tmp_path / "part" / "checkpoints" / "last.safetensors")[1]
    # 4 batches per epoch, checkpoints at steps 2, 4 (epoch end) and 6: the crash at step 7 leaves
    # the one from the middle of epoch 2.
    assert (meta["epoch"], meta["batch"], meta["step"]) == (1, 2, 6)
    cfg.train.epochs = 1  # fewer epochs than the checkpoint began: refused, not a model mislabelled epoch 1
    with pytest.raises(vaekit.VaekitError, match=r"has trained 1 epochs \+ 2 batches, more than train.epochs = 1"):
        vaekit.train(cfg, tmp_path / "part", resume=True, log=lambda s: None)
    cfg.train.epochs = 2
    resumed = vaekit.train(cfg, tmp_path / "part", resume=True, log=lambda s: None)
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    assert resumed.metrics[-1]["train_loss"] == full.metrics[-1]["train_loss"]


def _nan_at(calls):
    """A KL weight that is NaN on the given training forward passes (counted from 1)."""
    seen = {"n": 0}

    def kl_weight(self, step):
        if self.training:
            seen["n"] += 1
            if seen["n"] in calls:
                return float("nan")
        return self.cfg.beta

    return kl_weight


def test_isolated_nan_steps_are_skipped_and_counted(tmp_path, monkeypatch, tiny_cfg):
    monkeypatch.setattr(VAE, "kl_weight", _nan_at({3, 5, 6, 11}))
    run = vaekit.train(tiny_cfg, tmp_path / "r", log=lambda s: None)
    assert [r.get("skipped_steps", 0) for r in run.metrics] == [3, 1]
    assert run.metrics[-1]["step"] == 16 - 4
    assert all(torch.isfinite(p).all() for p in run.model.parameters())


def test_persistent_nan_stops_with_last_good_checkpoint(tmp_path, monkeypatch, tiny_cfg):
    tiny_cfg.train.epochs = 3
    # 8 batches per epoch; every pass from the 11th on (epoch 2, batch 3) is NaN.
    monkeypatch.setattr(VAE, "kl_weight", _nan_at(set(range(11, 10**6))))
    with pytest.raises(TrainingDiverged, match=r"5 non-finite losses or gradients in a row at epoch 2, batch 7 \(step 10\).*is kept"):
        vaekit.train(tiny_cfg, tmp_path / "r", log=lambda s: None)
    meta = checkpoint.load_tensors(tmp_path / "r" / "checkpoints" / "last.safetensors")[1]
    assert meta["epoch"] == 1 and meta["step"] == 8


def test_disk_full_keeps_the_previous_checkpoint(tmp_path, monkeypatch, tiny_cfg):
    tiny_cfg.train.epochs = 2
    real_fdopen = os.fdopen
    state = {"ckpt": 0}

    def fdopen(fd, mode="r", *a, **k):
        f = real_fdopen(fd, mode, *a, **k)
        if "w" in mode and state["armed"]:
            def write(data, _f=f):
                raise OSError(errno.ENOSPC, "No space left on device")
            f.write = write
        return f

    state["armed"] = False
    monkeypatch.setattr(checkpoint.os, "fdopen", fdopen)
    original = Trainer.save_checkpoint

    def save(self):
        state["ckpt"] += 1
        state["armed"] = state["ckpt"] == 2  # the second checkpoint hits a full disk
        if state["ckpt"] == 2:
            state["before"] = (self.dir / "checkpoints" / "last.safetensors").read_bytes()
        original(self)

    monkeypatch.setattr(Trainer, "save_checkpoint", save)
    with pytest.raises(RunWriteError, match="cannot write a checkpoint in .*No space left on device .the disk is full.; the files written before are intact; free some space, then continue with: vaekit train --out .* --resume"):
        vaekit.train(tiny_cfg, tmp_path / "r", log=lambda s: None)
    ckpt = tmp_path / "r" / "checkpoints" / "last.safetensors"
    assert ckpt.read_bytes() == state["before"]
    assert checkpoint.load_tensors(ckpt)[1]["epoch"] == 1
    assert not list(ckpt.parent.glob(".*.tmp"))


def test_unwritable_output_is_one_clear_line(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    r = _train(blocker / "run", 1)
    assert r.returncode in (1, 2) and "Traceback" not in r.stderr
    assert "cannot write the run folder" in r.stderr and "Not a directory" in r.stderr
