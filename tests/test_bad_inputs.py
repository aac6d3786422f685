"""The bad-input suite: every case is one clear line on stderr naming what is wrong and where,
exit code 2, no traceback, and nothing written. Run in-process through ``vaekit.cli.main``."""

from __future__ import annotations

import json
import pickle
import shutil
import struct
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

import vaekit
from vaekit.cli import main

TINY = ["--limit", "64", "--epochs", "1", "--batch-size", "32", "--no-progress", "--set", "model.hidden=[8]",
        "--latent-dim", "2"]


def png(path: Path, size=(8, 8), mode="L") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (*size, 3 if mode == "RGB" else 1)).astype(np.uint8).squeeze(),
                    mode).save(path)
    return path


def folder(tmp: Path, make: Callable[[Path], object]) -> list[str]:
    root = tmp / "imgs"
    root.mkdir()
    make(root)
    return ["train", "--data", "folder", "--data-path", str(root), *TINY]


def npy(tmp: Path, array: object, name: str = "x.npy") -> list[str]:
    path = tmp / name
    if isinstance(array, bytes):
        path.write_bytes(array)
    elif name.endswith(".npz"):
        np.savez(path, **array)
    else:
        np.save(path, array, allow_pickle=True)
    return ["train", "--data", "arrays", "--data-path", str(path), *TINY]


def cfgfile(tmp: Path, name: str, text: str) -> list[str]:
    (tmp / name).write_text(text)
    return ["train", "--config", str(tmp / name), *TINY]


def truncated_png(root: Path) -> None:
    png(root / "a.png")
    data = png(root / "trunc.png").read_bytes()
    (root / "trunc.png").write_bytes(data[: len(data) // 2])


def mixed_sizes(root: Path) -> None:
    png(root / "a.png", (8, 8))
    png(root / "b.png", (9, 8))


# (id, argv builder, substrings the one-line message must contain)
CASES: list[tuple[str, Callable[[Path], list[str]], list[str]]] = [
    # image folders
    ("folder-missing", lambda t: ["train", "--data", "folder", "--data-path", str(t / "nope"), *TINY], ["nope", "does not exist"]),
    ("folder-empty", lambda t: folder(t, lambda r: None), ["imgs", "holds no images"]),
    ("folder-is-file", lambda t: ["train", "--data", "folder", "--data-path", str(png(t / "one.png")), *TINY], ["one.png", "is no data vaekit reads"]),
    ("png-truncated", lambda t: folder(t, truncated_png), ["trunc.png"]),
    ("jpeg-garbage", lambda t: folder(t, lambda r: (png(r / "a.png"), (r / "b.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage"))), ["b.jpg"]),
    ("text-named-png", lambda t: folder(t, lambda r: (png(r / "a.png"), (r / "notes.png").write_text("hello"))), ["notes.png"]),
    ("mixed-sizes", lambda t: folder(t, mixed_sizes), ["differ in size", "data.image_size"]),
    ("loose-and-classes", lambda t: folder(t, lambda r: (png(r / "a.png"), png(r / "cls" / "b.png"))), ["loose images"]),
    # arrays
    ("npy-nan", lambda t: npy(t, np.full((4, 8, 8), np.nan, np.float32)), ["x.npy", "NaN or Inf"]),
    ("npy-inf", lambda t: npy(t, np.full((4, 8, 8), np.inf, np.float32)), ["x.npy", "NaN or Inf"]),
    ("npy-rank-1", lambda t: npy(t, np.zeros(10, np.float32)), ["x.npy", "rank 1"]),
    ("npy-rank-5", lambda t: npy(t, np.zeros((2, 1, 2, 2, 2), np.float32)), ["x.npy", "rank 5"]),
    ("npy-empty", lambda t: npy(t, np.zeros((0, 8, 8), np.float32)), ["x.npy", "empty"]),
    ("npy-object", lambda t: npy(t, np.array([{"a": 1}, None], dtype=object)), ["x.npy", "Python objects"]),
    ("npy-strings", lambda t: npy(t, np.array([["a", "b"], ["c", "d"]])), ["x.npy"]),
    ("npy-over-one", lambda t: npy(t, np.full((4, 8, 8), 2.5, np.float32)), ["x.npy", "[0, 1]"]),
    ("npy-negative", lambda t: npy(t, np.full((4, 8, 8), -0.5, np.float32)), ["x.npy", "[0, 1]"]),
    ("npy-int-range", lambda t: npy(t, np.full((4, 8, 8), 300, np.int32)), ["x.npy", "0..255"]),
    ("npy-pickle-payload", lambda t: npy(t, pickle.dumps({"evil": 1}), "x.npy"), ["x.npy", "not a NumPy"]),
    ("npy-random-bytes", lambda t: npy(t, bytes(range(256)) * 4, "x.npy"), ["x.npy"]),
    ("npy-truncated", lambda t: npy(t, b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (10, 8, 8), }" + b" " * 60 + b"\n" + b"\x00" * 40), ["x.npy"]),
    ("npy-wrong-ext", lambda t: npy(t, b"1,2,3\n", "x.csv"), ["x.csv", "it is csv data"]),
    ("npy-missing", lambda t: ["train", "--data", "arrays", "--data-path", str(t / "gone.npy"), *TINY], ["gone.npy", "does not exist"]),
    ("npz-label-mismatch", lambda t: npy(t, {"x": np.zeros((4, 8, 8), np.uint8), "y": np.arange(3)}, "d.npz"), ["d.npz", "3 labels for 4 examples"]),
    ("npz-label-floats", lambda t: npy(t, {"x": np.zeros((4, 8, 8), np.uint8), "y": np.array([0.5, 1, 2, 3])}, "d.npz"), ["d.npz", "whole numbers"]),
    ("npz-label-negative", lambda t: npy(t, {"x": np.zeros((4, 8, 8), np.uint8), "y": np.array([0, -1, 2, 3])}, "d.npz"), ["d.npz", ">= 0"]),
    ("npz-missing-keys", lambda t: npy(t, {"images": np.zeros((4, 8, 8), np.uint8)}, "d.npz"), ["d.npz", "found: images"]),
    ("npy-4d-no-channels", lambda t: npy(t, np.zeros((2, 5, 6, 7), np.float32)), ["x.npy", "no channel axis"]),
    # configs, flags and presets
    ("unknown-key", lambda t: ["train", "--set", "model.latnet_dim=3", *TINY], ["latnet_dim", "did you mean 'latent_dim'"]),
    ("unknown-section", lambda t: ["train", "--set", "modle.beta=3", *TINY], ["modle", "did you mean 'model'"]),
    ("wrong-type", lambda t: ["train", "--set", "model.samples='two'", *TINY], ["model.samples", "whole number"]),
    ("negative-beta", lambda t: ["train", "--beta", "-1", *TINY], ["model.beta", ">= 0"]),
    ("latent-zero", lambda t: ["train", *TINY, "--latent-dim", "0"], ["model.latent_dim", "at least 1"]),
    ("lr-zero", lambda t: ["train", "--lr", "0", *TINY], ["train.lr", "> 0"]),
    ("adam-eps-zero", lambda t: ["train", "--set", "train.adam_eps=0", *TINY], ["train.adam_eps", "> 0"]),
    ("epochs-negative", lambda t: ["train", *TINY, "--epochs", "-3"], ["train.epochs", ">= 0"]),
    ("batch-too-large", lambda t: ["train", *TINY, "--batch-size", "100000"], ["batch_size=100000", "64 training examples"]),
    ("unknown-preset", lambda t: ["train", "--preset", "kears-conv", *TINY], ["kears-conv", "did you mean 'keras-conv'"]),
    ("preset-traversal", lambda t: ["train", "--preset", "../../etc/passwd", *TINY], ["../../etc/passwd"]),
    ("unknown-model", lambda t: ["train", "--model", "vea", *TINY], ["unknown model 'vea'", "did you mean 'vae'"]),
    ("bad-likelihood", lambda t: ["train", "--likelihood", "bernouli", *TINY], ["model.likelihood", "did you mean 'bernoulli'"]),
    ("bad-binarize", lambda t: ["train", "--binarize", "dynamc", *TINY], ["data.binarize", "did you mean 'dynamic'"]),
    ("set-without-equals", lambda t: ["train", "--set", "model.beta", *TINY], ["model.beta", "section.key=value"]),
    ("val-size-too-big", lambda t: ["train", "--set", "data.val_size=64", *TINY], ["val_size=64", "leaves 0"]),
    ("strides-mismatch", lambda t: ["train", "--set", "model.arch='conv'", "--set", "model.strides=[2]", *TINY], ["model.strides", "one stride per conv layer"]),
    ("image-size-rank", lambda t: ["train", "--set", "data.image_size=[8]", *TINY], ["data.image_size"]),
    ("threshold-range", lambda t: ["train", "--set", "data.threshold=1.5", *TINY], ["data.threshold", "(0, 1)"]),
    ("folder-without-path", lambda t: ["train", "--data", "folder", *TINY], ["--data folder", "needs a path"]),
    ("cuda-missing", lambda t: ["train", "--device", "cuda", *TINY], ["cuda", "--device cpu"]),
    ("conv-on-vectors", lambda t: npy(t, np.random.default_rng(0).random((64, 5)).astype(np.float32))[:5]
     + [a for a in TINY if a not in ("--set", "model.hidden=[8]")] + ["--set", "model.arch='conv'"],
     ["conv encoder needs image data"]),
    ("config-missing", lambda t: ["train", "--config", str(t / "no.toml"), *TINY], ["no.toml", "does not exist"]),
    ("config-bad-toml", lambda t: cfgfile(t, "c.toml", "[model\nbeta = 2\n"), ["c.toml", "cannot be parsed"]),
    ("config-bad-yaml", lambda t: cfgfile(t, "c.yaml", "model: [1, 2\n"), ["c.yaml", "cannot be parsed"]),
    ("config-yaml-object", lambda t: cfgfile(t, "c.yaml", "model: !!python/object/apply:os.system ['true']\n"), ["c.yaml", "cannot be parsed"]),
    ("config-list-top", lambda t: cfgfile(t, "c.yaml", "- 1\n- 2\n"), ["c.yaml", "top level"]),
    ("config-wrong-ext", lambda t: cfgfile(t, "c.ini", "[model]\n"), ["c.ini", ".toml"]),
    ("config-unknown-key", lambda t: cfgfile(t, "c.toml", "[train]\nepohcs = 3\n"), ["c.toml", "epohcs", "did you mean 'epochs'"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, tmp_path, monkeypatch, capsys):
    _, build, needles = case
    monkeypatch.chdir(tmp_path)
    argv = build(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("vaekit: error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, no runs/ folder


# ---- run folders and checkpoints from strangers ---------------------------------------------


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("good") / "run"
    cfg = vaekit.resolve(overrides=[{"data": {"source": "digits", "limit": 64},
                                     "model": {"hidden": [8], "latent_dim": 2},
                                     "train": {"epochs": 1, "batch_size": 32, "progress": False}}])
    vaekit.train(cfg, out, log=lambda s: None)
    return out


def _edit_json(path: Path, change: Callable[[dict], None]) -> None:
    raw = json.loads(path.read_text())
    change(raw)
    path.write_text(json.dumps(raw))


def lying_header(path: Path) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [1000, 1000], "data_offsets": [0, 4000000]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\x00" * 16)


RUN_CASES: list[tuple[str, Callable[[Path], None], list[str], list[str]]] = [
    ("config-missing", lambda r: (r / "config.json").unlink(), ["config.json is missing"], ["evaluate"]),
    ("config-not-json", lambda r: (r / "config.json").write_text("{oops"), ["config.json", "not valid JSON"], ["evaluate"]),
    ("config-edited-latent", lambda r: _edit_json(r / "config.json", lambda c: c["model"].update(latent_dim=5)),
     ["model.safetensors", "another architecture or latent size"], ["evaluate"]),
    ("config-edited-hidden", lambda r: _edit_json(r / "config.json", lambda c: c["model"].update(hidden=[16])),
     ["model.safetensors", "has shape"], ["sample"]),
    ("config-edited-model", lambda r: _edit_json(r / "config.json", lambda c: c["model"].update(name="ae")),
     ["holds a 'vae' model", "says 'ae'"], ["evaluate"]),
    ("config-unknown-key", lambda r: _edit_json(r / "config.json", lambda c: c["model"].update(evil=1)),
     ["config.json", "unknown key 'evil'"], ["evaluate"]),
    ("config-preset-traversal", lambda r: _edit_json(r / "config.json", lambda c: c.update(preset="../../x")),
     ["not a preset name"], ["evaluate"]),
    ("weights-pickle", lambda r: (r / "model.safetensors").write_bytes(pickle.dumps({"w": 1})),
     ["model.safetensors", "not a readable safetensors"], ["evaluate"]),
    ("weights-huge-header", lambda r: (r / "model.safetensors").write_bytes(struct.pack("<Q", 2**40) + b"{}"),
     ["model.safetensors", "not a readable safetensors"], ["sample"]),
    ("weights-lying-header", lambda r: lying_header(r / "model.safetensors"), ["model.safetensors"], ["evaluate"]),
    ("weights-truncated", lambda r: (r / "model.safetensors").write_bytes((r / "model.safetensors").read_bytes()[:200]),
     ["model.safetensors"], ["evaluate"]),
    ("weights-foreign-safetensors", lambda r: __import__("safetensors.torch").torch.save_file(
        {"w": __import__("torch").zeros(2)}, str(r / "model.safetensors")), ["not a vaekit checkpoint"], ["evaluate"]),
    ("resume-without-checkpoint", lambda r: shutil.rmtree(r / "checkpoints"), ["has no checkpoint"], ["train", "--resume", "--out"]),
    ("resume-changed-model", lambda r: None, ["model.latent_dim is 4 but the run was started with 2"],
     ["train", "--resume", "--latent-dim", "4", "--out"]),
    ("train-into-existing", lambda r: None, ["already holds a run", "--overwrite"], ["train", "--limit", "64", "--out"]),
    ("evaluate-bad-split", lambda r: None, ["no val split"], ["evaluate", "--split", "val"]),
]


@pytest.mark.parametrize("case", RUN_CASES, ids=[c[0] for c in RUN_CASES])
def test_bad_run_folder(case, good_run, tmp_path, capsys):
    _, corrupt, needles, command = case
    run = tmp_path / "run"
    shutil.copytree(good_run, run)
    corrupt(run)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}  # .lock: who held it
    argv = [*command, str(run)]
    if command[0] in ("evaluate", "sample") and command[-1] != "--out":
        argv = [command[0], str(run), *command[1:]]
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    for needle in needles:
        assert needle in err[0], (needle, err[0])
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"} == before  # nothing changed


# ---- controls: the inputs above minus their one defect work, so each refusal is that defect's ---------


def test_the_same_command_on_good_data_trains(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    good = np.random.default_rng(0).random((64, 8, 8)).astype(np.float32)  # the npy-* cases, in range
    assert main([*npy(tmp_path, good), "--out", str(tmp_path / "run")]) == 0, capsys.readouterr().err
    assert (tmp_path / "run" / "model.safetensors").is_file()


def test_the_untouched_run_folder_evaluates(good_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(good_run, run)  # as the run-folder cases do (evaluate writes into the run)
    assert main(["evaluate", str(run), "--k", "2", "--no-progress"]) == 0, capsys.readouterr().err
    assert "negative ELBO" in capsys.readouterr().out
