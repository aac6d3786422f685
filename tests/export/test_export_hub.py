"""Hub folders: written from a run, read back by vaekit.load and every command with identical decode;
pushed to and downloaded from a loopback fake of the Hub's HTTP API (never the internet)."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import torch
import yaml

import vaekit
from vaekit import cli
from vaekit.errors import VaekitError
from vaekit.evaluate import evaluate_run
from vaekit.export.hub import export_hub

sys.path.insert(0, str(Path(__file__).parent))
from fakehub import FakeHub  # noqa: E402

RUN = Path(__file__).parents[1] / "fixtures" / "run-v1"  # a real run folder of format v1 (8x8 digits)


def front_matter(card: str) -> dict:
    m = re.match(r"---\n(.*?)\n---\n", card, re.S)
    assert m, card[:200]
    return yaml.safe_load(m[1])


def assert_same_model(a: vaekit.Model, b: vaekit.Model) -> None:
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    z = torch.randn(16, a.latent_dim, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a.decode(z), b.decode(z))


def test_a_hub_folder_is_a_run_that_loads_with_identical_decode(tmp_path):
    out = export_hub(vaekit.load_run(RUN), tmp_path / "hub", repo="alice/tiny")
    assert {p.name for p in out.iterdir()} == {"config.json", "model.safetensors", "README.md", "samples.png"}
    assert (out / "model.safetensors").read_bytes() == (RUN / "model.safetensors").read_bytes()
    assert_same_model(vaekit.load(RUN), vaekit.load(out))
    card = (out / "README.md").read_text()
    meta = front_matter(card)
    # no license was given: the card claims none (vaekit never picks one for someone's weights)
    assert meta["library_name"] == "vaekit" and meta["license"] == "unknown"
    assert "no license was chosen for them" in card
    assert {"vaekit", "variational-autoencoder", "vae"} <= set(meta["tags"])
    assert "model-index" not in meta  # the fixture keeps no metrics: the card claims none
    assert 'vaekit.load("hf://alice/tiny")' in card and "Kingma & Welling (2014)" in card
    assert "![64 samples, seed 0](samples.png)" in card
    # every command that takes a run takes the folder
    assert cli.main(["sample", str(out), "-n", "8", "-o", str(tmp_path / "s.png")]) == 0
    assert cli.main(["reconstruct", str(out), "-n", "8", "-o", str(tmp_path / "r.png")]) == 0


def test_the_license_given_is_the_cards_and_a_wrong_one_is_refused_before_writing(tmp_path, capsys):
    out = tmp_path / "hub"
    assert cli.main(["export", str(RUN), "--format", "hub", "-o", str(out), "--license", "CC-BY-SA-3.0"]) == 0
    card = (out / "README.md").read_text()
    assert front_matter(card)["license"] == "cc-by-sa-3.0" and "The weights: `cc-by-sa-3.0`." in card
    capsys.readouterr()
    assert cli.main(["export", str(RUN), "--format", "hub", "-o", str(tmp_path / "bad"), "--license", "apache2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean 'apache-2.0'?" in err
    # 'other' needs license_name and license_link in the card, which vaekit does not write: refused
    assert cli.main(["export", str(RUN), "--format", "hub", "-o", str(tmp_path / "bad"), "--license", "other"]) == 2
    assert "needs license_name and license_link" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()  # refused before anything was written
    # ONNX states no license: the option is refused, not ignored
    assert cli.main(["export", str(RUN), "--format", "onnx", "-o", str(tmp_path / "onnx"), "--license", "mit"]) == 2
    assert "--license applies to --format hub" in capsys.readouterr().err
    assert not (tmp_path / "onnx").exists()


def test_the_card_states_the_runs_evaluation(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(RUN, run)
    evaluate_run(run, k=10, limit=4, progress=False)  # another setting of the same weights
    report = evaluate_run(run, k=10, limit=16, progress=False)  # writes run/evaluations/test-n16-k10-...
    export_hub(vaekit.load_run(run), tmp_path / "hub")
    assert json.loads((tmp_path / "hub" / "evaluation.json").read_text()) == json.loads(json.dumps(report))
    metrics = front_matter((tmp_path / "hub" / "README.md").read_text())["model-index"][0]["results"][0]["metrics"]
    assert [(m["type"], m["value"]) for m in metrics] == [
        ("nll", round(report["nll"]["value"], 3)), ("neg_elbo", round(report["elbo"]["neg_elbo"], 3))]
    assert metrics[0]["name"] == "IS NLL, nats (k=10, 16 images)"


def test_the_card_of_a_shipped_model_states_its_test_metrics_and_dataset(tmp_path):
    assert cli.main(["export", "pretrained:pytorch-example", "--format", "hub", "-o", str(tmp_path / "hub")]) == 0
    meta = front_matter((tmp_path / "hub" / "README.md").read_text())
    assert meta["datasets"] == ["ylecun/mnist"]
    metrics = {m["type"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    ev = vaekit.load_run("pretrained:pytorch-example").dir / "evaluation.json"
    assert metrics["nll"] == round(json.loads(ev.read_text())["nll"], 3)
    assert_same_model(vaekit.load("pretrained:pytorch-example"), vaekit.load(tmp_path / "hub"))


@pytest.fixture
def hub(tmp_path, monkeypatch):
    pytest.importorskip("huggingface_hub")
    with FakeHub() as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.url)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
        monkeypatch.setenv("HF_TOKEN", "hf_fake_token")
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        yield fake


def test_push_then_load_from_hf_round_trips(hub, tmp_path, capsys):
    assert cli.main(["push", str(RUN), "alice/tiny", "--license", "mit"]) == 0
    assert f"pushed to {hub.url}/alice/tiny" in capsys.readouterr().out
    assert set(hub.repos["alice/tiny"]) == {"config.json", "model.safetensors", "README.md", "samples.png"}
    card = front_matter(hub.cards[-1])  # the Hub's YAML check saw the card
    assert card["library_name"] == "vaekit" and card["license"] == "mit"
    model = vaekit.load("hf://alice/tiny")
    assert_same_model(vaekit.load(RUN), model)
    assert cli.main(["sample", "hf://alice/tiny", "-n", "8", "-o", str(tmp_path / "s.png")]) == 0
    # a downloaded run is read-only: evaluate reports but writes nothing into the cache
    report = evaluate_run("hf://alice/tiny", k=0, progress=False, limit=8)
    assert report["n"] == 8 and not list((tmp_path / "hf-cache").rglob("evaluation.json"))


def test_hf_errors_are_one_line(hub, capsys):
    assert cli.main(["sample", "hf://alice/missing", "-o", "x.png"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "hf://alice/missing cannot be downloaded" in err
    with pytest.raises(VaekitError, match="expected hf://OWNER/NAME"):
        vaekit.load("hf://not-a-repo")


def test_without_huggingface_hub_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(VaekitError, match=r"pip install 'vaekit\[hub\]'"):
        vaekit.load("hf://alice/tiny")


def test_push_refuses_an_unknown_license_before_uploading(hub, capsys):
    assert cli.main(["push", str(RUN), "alice/tiny", "--license", "mit-0"]) == 2
    assert "not a Hugging Face Hub license identifier" in capsys.readouterr().err
    assert "alice/tiny" not in hub.repos and not hub.cards
