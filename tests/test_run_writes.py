"""Writes that fail, on real file systems: a read-only mount (root ignores chmod, so tmpfs remounted
read-only), a full one (a tiny tmpfs), a file in the way. Each ends in one line that follows the real
errno, suggests --resume only when there is a checkpoint, and keeps what was computed."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from vaekit.cli import main
from vaekit.run import write_error_message

TINY = ["--data", "digits", "--limit", "256", "--batch-size", "64", "--latent-dim", "2", "--set", "model.hidden=[16]",
        "--set", "train.threads=1", "--set", "train.tensorboard=false", "--no-progress"]


def _mount(where: Path, *options: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(("size=8m", *options)), "vaekit-test", str(where)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): {r.stderr.strip()}")


@pytest.fixture
def mnt(tmp_path):
    where = tmp_path / "mnt"
    _mount(where)
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def _remount_ro(where: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
    with pytest.raises(OSError) as err:
        (where / "probe").touch()
    assert err.value.errno == errno.EROFS


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("base") / "run"
    assert main(["train", *TINY, "--epochs", "1", "--out", str(out)]) == 0
    return out


def one_line(err: str) -> str:
    """The error is one line; before it may stand the loader's one line of what it read ("data ...")."""
    lines = [line for line in err.splitlines() if not line.startswith("data ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0] + "\n"


def test_read_only_run_folder(finished, mnt, tmp_path, capsys):
    run = mnt / "run"
    shutil.copytree(finished, run)
    _remount_ro(mnt)
    capsys.readouterr()
    # evaluate: the numbers are printed first; the failed save is one line, exit 1
    assert main(["evaluate", str(run), "--k", "5", "--no-progress"]) == 1
    out, err = capsys.readouterr()
    assert "negative ELBO" in out and "IS NLL (k=5)" in out
    assert "cannot write the evaluation" in one_line(err) and "Read-only file system" in err
    assert "the results printed above stand" in err and "--resume" not in err
    # plot and report: one line each, and the same commands writing elsewhere work
    assert main(["plot", str(run), "samples"]) == 1
    err = one_line(capsys.readouterr().err)
    assert "cannot write plots" in err and "Read-only file system" in err and "choose another -o" in err
    assert main(["report", str(run)]) == 1
    assert "Read-only file system" in one_line(capsys.readouterr().err)
    assert main(["plot", str(run), "samples", "-o", str(tmp_path / "p")]) == 0
    assert main(["report", str(run), "--no-plots", "-o", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "p" / "samples.png").is_file() and (tmp_path / "r.html").is_file()
    # train --resume: one line, and no advice to resume (that is what just failed) without fixing it first
    assert main(["train", *TINY, "--epochs", "2", "--resume", "--out", str(run)]) == 1
    err = one_line(capsys.readouterr().err)
    assert "Read-only file system" in err and "make it writable, then continue with" in err


def test_full_disk_says_so_and_resume_only_with_a_checkpoint(finished, mnt, capsys):
    run = mnt / "run"
    shutil.copytree(finished, run)
    filler = mnt / "filler"
    with open(filler, "wb") as f:  # fill the tmpfs to its last byte
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as err:
            assert err.errno == errno.ENOSPC
    capsys.readouterr()
    assert main(["train", *TINY, "--epochs", "2", "--resume", "--out", str(run)]) == 1
    err = one_line(capsys.readouterr().err)
    assert "No space left on device (the disk is full)" in err
    assert f"free some space, then continue with: vaekit train --out {run} --resume" in err
    assert main(["train", *TINY, "--epochs", "1", "--out", str(mnt / "fresh")]) == 1
    err = one_line(capsys.readouterr().err)
    assert "No space left on device" in err and "free some space or choose another --out" in err
    assert "--resume" not in err
    assert not (mnt / "fresh").exists()  # nothing was written: nothing is left behind


def test_out_under_a_file_names_the_cause(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    assert main(["train", *TINY, "--epochs", "1", "--out", str(blocker / "run")]) == 1
    err = one_line(capsys.readouterr().err)
    assert "Not a directory (a part of the path is a file, not a folder)" in err and "choose another --out" in err
    assert "space" not in err and "--resume" not in err


def test_messages_follow_the_errno(tmp_path):
    # Root ignores permissions, so EACCES cannot be provoked here: the message of each errno instead.
    (tmp_path / "checkpoints").mkdir()
    def msg(code: int, resume: bool = True) -> str:
        return write_error_message(OSError(code, os.strerror(code), str(tmp_path / "x")), tmp_path, "a checkpoint",
                                   resume=resume)
    assert msg(errno.EACCES).endswith(f"Permission denied: {tmp_path / 'x'}; fix the permissions of {tmp_path / 'x'} "
                                      "or choose another --out")
    assert "a folder on the path is missing" in msg(errno.ENOENT) and "space" not in msg(errno.ENOENT)
    (tmp_path / "checkpoints" / "last.safetensors").write_bytes(b"")
    assert msg(errno.ENOSPC).endswith(f"free some space, then continue with: vaekit train --out {tmp_path} --resume")
    assert "--resume" not in msg(errno.ENOSPC, resume=False)


def test_epochs_zero_is_refused(tmp_path, capsys):
    assert main(["train", *TINY, "--epochs", "0", "--out", str(tmp_path / "r")]) == 2
    assert "train.epochs must be at least 1 (got 0)" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "r").exists()


def test_evaluation_json_is_written_after_printing(finished, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    assert main(["evaluate", str(run), "--k", "5", "--no-progress", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    (saved,) = (run / "evaluations").glob("*.json")
    assert json.loads(saved.read_text()) == printed
