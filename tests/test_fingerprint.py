"""A run remembers where its data is (an absolute path, and the way from the run folder) and what it
was (sizes + a content hash in data.json): --resume refuses changed data, evaluate and score warn."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from vaekit.cli import main
from vaekit.data import fingerprint as fp
from vaekit.config import DataConfig

TRAIN = ["--set", "data.source=arrays", "--latent-dim", "2", "--set", "model.hidden=[16]", "--batch-size", "32",
         "--set", "train.threads=1", "--set", "train.tensorboard=false", "--no-progress", "--epochs", "1"]


def _arrays(path: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    np.savez(path, x_train=rng.random((128, 16), dtype=np.float32), x_test=rng.random((32, 16), dtype=np.float32))


@pytest.fixture
def project(tmp_path, monkeypatch, capsys) -> Path:
    """proj/data.npz and proj/run, trained with the relative path as a user types it."""
    proj = tmp_path / "proj"
    proj.mkdir()
    _arrays(proj / "data.npz")
    monkeypatch.chdir(proj)
    assert main(["train", *TRAIN, "--data-path", "data.npz", "--out", "run"]) == 0
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    return proj


def test_the_run_finds_its_data_from_anywhere(project, tmp_path, capsys):
    saved = json.loads((project / "run" / "config.json").read_text())["data"]["path"]
    assert saved == str(project / "data.npz")  # absolute, not as typed
    info = json.loads((project / "run" / "data.json").read_text())
    assert info["path_from_run"] == "../data.npz" and info["fingerprint"]["hashed"] == "all bytes"
    assert main(["evaluate", str(project / "run"), "--k", "5", "--no-progress"]) == 0  # from tmp_path
    assert "warning" not in capsys.readouterr().err
    os.utime(project / "data.npz", (1, 1))  # a copy that changed the mtime only: the same data
    moved = tmp_path / "elsewhere"
    shutil.move(project, moved)  # run and data moved together: the saved absolute path is gone
    assert main(["evaluate", str(moved / "run"), "--k", "5", "--no-progress"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_changed_data_refuses_resume_and_warns_evaluate(project, tmp_path, capsys):
    _arrays(project / "data.npz", seed=1)  # same shape and size, other values
    run = str(project / "run")
    assert main(["train", *TRAIN, "--epochs", "2", "--resume", "--out", run]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--resume: the data changed since {run} was trained: " in err
    assert "restore that data, or train a new run" in err
    assert main(["evaluate", run, "--k", "5", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert err.count("vaekit: warning: the data changed since") == 1 and "negative ELBO" in out
    assert main(["plot", run, "samples"]) == 0 and "data changed" in capsys.readouterr().err


def test_score_warns_only_for_the_training_table(tmp_path, monkeypatch, capsys):
    table = tmp_path / "t.csv"
    rows = "\n".join(f"{i % 7},{i % 3}.5,{'ab'[i % 2]}" for i in range(64))
    table.write_text("a,b,c\n" + rows + "\n")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--set", "data.source=csv", "--data-path", "t.csv", "--latent-dim", "2",
                 "--set", "model.hidden=[8]", "--batch-size", "16", "--epochs", "1", "--no-progress",
                 "--set", "train.tensorboard=false", "--out", "run"]) == 0
    other = tmp_path / "new.csv"
    other.write_text("a,b,c\n1,0.5,a\n")
    capsys.readouterr()
    assert main(["score", "run", "--data", str(other), "-o", "s.csv"]) == 0
    assert "warning" not in capsys.readouterr().err  # new rows are new by design
    table.write_text("a,b,c\n" + rows + "\n9,9.5,b\n")
    assert main(["score", "run", "--data", "t.csv", "-o", "s.csv", "--overwrite"]) == 0
    assert "vaekit: warning: the data changed since run was trained" in capsys.readouterr().err


def test_image_folder_and_sampled_hash(tmp_path, monkeypatch):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((4, 4), 40 * i, dtype=np.uint8)).save(folder / f"{i}.png")
    (folder / "notes.txt").write_text("not read by training, not part of the data")
    cfg = DataConfig(source="folder", path=str(folder))
    before = fp.fingerprint(cfg)
    (folder / "notes.txt").write_text("edited")
    assert fp.fingerprint(cfg) == before
    Image.fromarray(np.full((4, 4), 7, dtype=np.uint8)).save(folder / "3.png")
    assert fp.fingerprint(cfg)["files"] == 4
    # Beyond FULL_BYTES: names, sizes and sampled blocks; a change inside a sampled block shows.
    monkeypatch.setattr(fp, "FULL_BYTES", 1024)
    monkeypatch.setattr(fp, "BLOCK", 256)
    big = tmp_path / "big.npy"
    np.save(big, np.zeros(100_000, dtype=np.uint8))
    cfg = DataConfig(source="arrays", path=str(big))
    first = fp.fingerprint(cfg)
    assert first["hashed"].startswith("names, sizes and 8 blocks")
    with open(big, "r+b") as f:
        f.seek(big.stat().st_size - 10)
        f.write(b"\x01")
    assert fp.fingerprint(cfg)["sha256"] != first["sha256"]
