"""The shipped pretrained models: usable wherever a run is, decent, small, and packaged."""

from __future__ import annotations

import fnmatch
import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

import vaekit
from vaekit import cli
from vaekit.errors import CheckpointError
from vaekit.pretrained import FILES, pretrained_names

ROOT = Path(__file__).parents[1]
# name -> (latent size, the test negative ELBO it must beat on the first 1000 MNIST test images)
SHIPPED = {"keras-conv": (2, 170.0), "pytorch-example": (20, 112.0)}


def test_the_shipped_models_are_the_recipes_of_the_script():
    sys.path.insert(0, str(ROOT / "scripts"))
    from make_pretrained import RECIPES

    assert pretrained_names() == sorted(SHIPPED) == sorted(RECIPES)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_a_shipped_model_loads_samples_and_is_decent(name):
    model = vaekit.load(f"pretrained:{name}")
    dim, bound = SHIPPED[name]
    assert model.latent_dim == dim and model.shape == (1, 28, 28)
    torch.manual_seed(0)
    assert model.sample(8).shape == (8, 1, 28, 28)
    ev = json.loads((FILES / name / "evaluation.json").read_text())
    assert ev["name"] == name and ev["nll"] < ev["test_neg_elbo"] < bound  # an IS NLL is below the bound
    test = vaekit.open_data(model.config.data).test
    terms = vaekit.elbo(model, vaekit.data.Split(test.x[:1000], None))
    assert terms["recon"] + terms["kl"] < bound
    assert sum(p.stat().st_size for p in (FILES / name).iterdir()) < 3_000_000


def test_any_command_takes_a_pretrained_name(tmp_path, capsys):
    assert cli.main(["sample", "pretrained:keras-conv", "-n", "16", "-o", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").is_file()
    assert cli.main(["sample", "pretrained:keras-cnv", "-o", str(tmp_path / "t.png")]) == 2
    err = capsys.readouterr().err
    assert err == "vaekit: error: pretrained:keras-cnv does not exist (did you mean 'pretrained:keras-conv'?)\n"
    with pytest.raises(CheckpointError, match="shipped: keras-conv, pytorch-example"):
        vaekit.load("pretrained:zzz")


def test_a_shipped_model_named_by_its_path_is_not_written_into(tmp_path, monkeypatch):
    # By default a command writes into RUN/outputs; a shipped folder is read-only whichever way it is
    # named (as plot and report already refused it), so the picture lands in the current folder.
    folder = FILES / "pytorch-example"
    before = sorted(p.name for p in folder.iterdir())
    monkeypatch.chdir(tmp_path)
    try:
        assert cli.main(["sample", str(folder), "-n", "4"]) == 0
        assert sorted(p.name for p in folder.iterdir()) == before and (tmp_path / "samples.png").is_file()
    finally:  # should the package folder have been written, leave it as it was
        shutil.rmtree(folder / "outputs", ignore_errors=True)
        (folder / ".lock").unlink(missing_ok=True)


def test_the_shipped_files_are_package_data():
    text = (ROOT / "pyproject.toml").read_text()
    globs = [g.removeprefix("vaekit/") for g in __import__("re").findall(r'"(pretrained/[^"]+)"', text)]
    package = FILES.parents[1]
    for f in FILES.rglob("*"):
        if f.is_file():
            rel = str(f.relative_to(package))
            assert any(fnmatch.fnmatch(rel, g) for g in globs), rel
