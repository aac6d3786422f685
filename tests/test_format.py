"""The file format is stable: runs written by earlier code keep loading with the same outputs, and a
folder from a newer, unknown format version is refused in one line naming both versions."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import vaekit
from vaekit import checkpoint, cli
from vaekit.errors import CheckpointError

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(FIXTURES))
from make_fixtures import FIXTURES as RUNS, outputs  # noqa: E402


@pytest.mark.parametrize("name", sorted(RUNS))
def test_a_run_written_by_format_v1_loads_with_identical_weights_and_outputs(name):
    folder = FIXTURES / name
    model = vaekit.load(folder)
    stored = load_file(str(folder / "model.safetensors"))
    for key, value in model.state_dict().items():
        assert torch.equal(value, stored[key]), key  # the weights, bit for bit
    expected = load_file(str(folder / "expected.safetensors"))
    got = outputs(model, expected["x"], expected["z"])
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key].shape == value.shape, key
        # float32 kernels may round differently on another CPU; a format break moves far more
        assert float((got[key] - value).abs().max()) <= 1e-5, key


def test_the_fixture_still_carries_format_v1():
    with safe_open(str(FIXTURES / "run-v1" / "model.safetensors"), "pt") as f:
        assert f.metadata()["format"] == "vaekit/1"
    assert checkpoint.FORMAT == f"vaekit/{checkpoint.FORMAT_VERSION}" and checkpoint.FORMAT_VERSION >= 1


def newer_run(tmp_path: Path) -> Path:
    """The fixture as a future vaekit might write it: format vaekit/2 and a config key unknown today."""
    run = tmp_path / "future"
    shutil.copytree(FIXTURES / "run-v1", run)
    tensors = load_file(str(run / "model.safetensors"))
    with safe_open(str(run / "model.safetensors"), "pt") as f:
        header = dict(f.metadata())
    save_file(tensors, str(run / "model.safetensors"), metadata={**header, "format": "vaekit/2"})
    cfg = json.loads((run / "config.json").read_text())
    cfg["model"]["a_key_from_the_future"] = 1
    (run / "config.json").write_text(json.dumps(cfg))
    return run


def test_a_newer_format_is_refused_naming_both_versions(tmp_path, capsys):
    run = newer_run(tmp_path)
    with pytest.raises(CheckpointError, match=r"format vaekit/2, newer than the vaekit/1 this vaekit .* reads"):
        vaekit.load(run)
    assert cli.main(["sample", str(run), "-o", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "vaekit/2" in err and "vaekit/1" in err and "upgrade" in err


def test_a_file_of_another_kind_is_still_not_a_vaekit_checkpoint(tmp_path):
    run = tmp_path / "other"
    shutil.copytree(FIXTURES / "run-v1", run)
    save_file(load_file(str(run / "model.safetensors")), str(run / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="is not a vaekit checkpoint"):
        vaekit.load(run)


def test_the_same_tensors_and_metadata_give_the_same_bytes(tmp_path):
    """safetensors orders its header by a per-map random hash; save_tensors sorts it, so a rerun of a
    deterministic script reproduces its files byte for byte (scripts/make_pretrained.py)."""
    tensors = {f"layer{i}.weight": torch.full((3, i + 1), float(i)) for i in range(12)}
    meta = {"b": 1, "a": [1, 2], "config": {"z": None}}
    files = []
    for i in range(6):
        checkpoint.save_tensors(tmp_path / f"{i}.safetensors", tensors, meta)
        files.append((tmp_path / f"{i}.safetensors").read_bytes())
    assert len(set(files)) == 1
    loaded, got = checkpoint.load_tensors(tmp_path / "0.safetensors")
    assert got == meta and all(torch.equal(loaded[k], v) for k, v in tensors.items())
