"""One writer per run folder, with real processes: a holder process takes the run's lock and waits
on a synchronisation file (VAEKIT_LOCK_HOLD, no sleeps), while every other writing command, run
for real through the CLI in this (another) process, is refused with one line naming the holder."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import vaekit
from vaekit.cli import main
from vaekit.runlock import HOLD_ENV, LOCK, lock_run

ENV = dict(os.environ, OMP_NUM_THREADS="1")
TINY = ["--data", "digits", "--limit", "256", "--batch-size", "64", "--latent-dim", "2", "--set", "model.hidden=[16]",
        "--set", "train.threads=1", "--set", "train.tensorboard=false", "--no-progress"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished 1-epoch run, trained in this process: each test works on a copy."""
    out = tmp_path_factory.mktemp("base") / "run"
    assert main(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 0
    return out


def hold(args: list[str], sync: Path) -> subprocess.Popen:
    """Start ``vaekit <args>``; return once it holds the run's lock (it waits until ``sync`` is deleted)."""
    sync.touch()
    proc = subprocess.Popen([sys.executable, "-m", "vaekit", *args], env=dict(ENV, **{HOLD_ENV: str(sync)}),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not Path(f"{sync}.held").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the holder never took the lock"
        time.sleep(0.01)
    return proc


def refused(capsys, argv: list[str], holder: subprocess.Popen, run: Path) -> None:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (argv, out, err)
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"{run} is in use: pid {holder.pid} (vaekit " in err, err


def test_every_writer_is_refused_while_a_training_holds_the_run(finished, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir() if p.name != LOCK}
    holder = hold(["train", *TINY, "--epochs", "2", "--resume", "--out", str(run)], tmp_path / "sync")
    for argv in (["train", *TINY, "--epochs", "2", "--resume", "--out", str(run)],   # train + resume
                 ["train", *TINY, "--epochs", "1", "--overwrite", "--out", str(run)],  # train + overwrite
                 ["evaluate", str(run), "--k", "5", "--no-progress"],                # train + evaluate
                 ["plot", str(run), "samples"],
                 ["report", str(run)]):
        refused(capsys, argv, holder, run)
    # Written elsewhere, a plot reads the run without needing its lock.
    assert main(["plot", str(run), "samples", "-o", str(tmp_path / "elsewhere")]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir() if p.name != LOCK} == before  # nobody else wrote
    (tmp_path / "sync").unlink()
    out, err = holder.communicate(timeout=120)
    assert holder.returncode == 0, err
    assert [r["epoch"] for r in vaekit.load_run(run).metrics] == [1, 2]  # not doubled, not mixed


def test_two_fresh_trainings_and_a_killed_holder(tmp_path, capsys):
    run = tmp_path / "new"
    holder = hold(["train", *TINY, "--epochs", "1", "--out", str(run)], tmp_path / "sync")
    refused(capsys, ["train", *TINY, "--epochs", "1", "--out", str(run)], holder, run)
    refused(capsys, ["train", *TINY, "--epochs", "1", "--overwrite", "--out", str(run)], holder, run)
    holder.send_signal(signal.SIGKILL)  # a kernel lock dies with its holder: nothing is left to block
    holder.communicate(timeout=60)
    assert [p.name for p in run.iterdir()] == [LOCK]  # the killed run wrote nothing yet
    assert main(["train", *TINY, "--epochs", "1", "--out", str(run)]) == 0
    assert f"wrote {run}" in capsys.readouterr().out
    assert json.loads((run / LOCK).read_text())["pid"] == os.getpid()  # the last holder's name


def test_an_evaluation_holds_the_run_too(finished, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    holder = hold(["evaluate", str(run), "--k", "5", "--no-progress"], tmp_path / "sync")
    refused(capsys, ["evaluate", str(run), "--k", "5", "--no-progress"], holder, run)  # evaluate + evaluate
    refused(capsys, ["train", *TINY, "--epochs", "2", "--resume", "--out", str(run)], holder, run)  # + resume
    (tmp_path / "sync").unlink()
    out, err = holder.communicate(timeout=120)
    assert holder.returncode == 0 and "negative ELBO" in out, err
    assert list((run / "evaluations").glob("*.json"))


def test_two_trainings_started_together_one_writes(tmp_path):
    # The race as reported: no synchronisation at all, both started at once into the same folder.
    run = tmp_path / "race"
    cmd = [sys.executable, "-m", "vaekit", "train", *TINY, "--epochs", "1", "--out", str(run)]
    procs = [subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    done = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    assert sorted(code for code, _, _ in done) == [0, 2], done
    loser = next(err for code, _, err in done if code == 2)
    assert "is in use: pid" in loser or "already holds a run" in loser  # refused, whichever came second
    assert sum(f"wrote {run}" in out for _, out, _ in done) == 1
    assert [r["epoch"] for r in vaekit.load_run(run).metrics] == [1]


def test_lock_is_reentrant_and_a_failed_fresh_run_leaves_no_folder(tmp_path, tiny_cfg):
    run = tmp_path / "runs" / "r"
    with lock_run(run, "train", create=True):
        with lock_run(run, "evaluate"):  # the same process: nested, not refused
            assert (run / LOCK).is_file()
    assert not (tmp_path / "runs").exists()  # made to be locked, nothing written: removed, parent too
    tiny_cfg.train.batch_size = 10_000  # a bad input, found after the lock was taken
    with pytest.raises(vaekit.VaekitError, match="larger than the 512 training examples"):
        vaekit.train(tiny_cfg, run, log=lambda s: None)
    assert not run.exists()
