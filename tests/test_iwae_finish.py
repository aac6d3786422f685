"""benchmarks/iwae_finish.py keeps the finished full-protocol reproduction (issue 17): it refuses a
run that has not trained all its epochs, and keeps what the evaluation measured, unchanged, in the
results record, the shipped ``pretrained:`` folder and the docs' row."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

import vaekit
from vaekit.evaluate import evaluate_run

from conftest import small_config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import iwae_finish  # noqa: E402
import tables  # noqa: E402


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A 1-epoch run with an evaluation report under the name the k = 5000 one has."""
    run = tmp_path_factory.mktemp("iwae") / "run"
    vaekit.train(small_config(model={"hidden": [32], "latent_dim": 4}, train={"epochs": 1, "threads": 1}), run,
                 log=lambda s: None)
    report = evaluate_run(run, k=8, limit=16, progress=False)
    written = next((run / "evaluations").glob("test-n16-k8-*.json"))
    shutil.copyfile(written, run / "evaluations" / iwae_finish.REPORT)
    (run / "eval.time").write_text(json.dumps({"user": 600.0, "sys": 6.0, "wall": 620.0}))
    return run, report


def test_the_evaluation_becomes_the_record_the_shipped_model_and_the_row(finished, tmp_path):
    run, report = finished
    record = iwae_finish.finish(run, run / "eval.time", results=tmp_path / "results",
                                pretrained=tmp_path / "shipped", docs=False)
    kept = json.loads((tmp_path / "results" / "iwae-paper-vae-full.json").read_text())
    assert kept["evaluation"]["nll"]["value"] == report["nll"]["value"] == record["evaluation"]["nll"]["value"]
    assert kept["epochs"] == 1 and kept["evaluate_process"]["user"] == 600.0
    # the shipped folder is the run's final weights, byte for byte, and loads as a run
    shipped = tmp_path / "shipped"
    assert (shipped / "model.safetensors").read_bytes() == (run / "model.safetensors").read_bytes()
    a, b = vaekit.load(run), vaekit.load(shipped)
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    summary = json.loads((shipped / "evaluation.json").read_text())
    assert summary["nll"] == report["nll"]["value"] and summary["nll_se"] == report["nll"]["se"]
    assert summary["test_neg_elbo"] == report["elbo"]["neg_elbo"] and summary["nll_images"] == 16
    row = tables.render_iwae_full(kept)
    assert f"**{report['nll']['value']:.2f} ± {report['nll']['se']:.2f}**" in row
    verdict = "within" if report["nll"]["value"] <= 87.26 else "outside"
    assert f"{verdict} the 0.5-nat target (87.26)" in row and "10 min of CPU time" in row


def test_an_unfinished_run_is_refused(finished, tmp_path):
    run, _ = finished
    partial = tmp_path / "partial"
    shutil.copytree(run, partial)
    cfg = json.loads((partial / "config.json").read_text())
    cfg["train"]["epochs"] = 3280
    (partial / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(SystemExit, match="not finished \\(final model at epoch 1, config says 3280\\)"):
        iwae_finish.finish(partial, partial / "eval.time", results=tmp_path / "r", pretrained=tmp_path / "p",
                           docs=False)
    assert not (tmp_path / "r").exists() and not (tmp_path / "p").exists()


def test_the_row_gets_its_place_in_the_results_page_once(tmp_path):
    page = tmp_path / "results.md"
    shutil.copyfile(ROOT / "docs" / "results.md", page)
    for _ in range(2):
        iwae_finish.add_block(page)
    text = page.read_text()
    start, end = tables.markers("iwae-paper-vae-full")
    assert text.count(start) == 1 and text.count(end) == 1
    assert text.index("<!-- iwae-curve:end -->") < text.index(start) < text.index(end)
    filled = tables.replace_block(text, start, end, "| row |")
    assert f"{start}\n| row |\n{end}" in filled


def test_an_evaluation_of_other_weights_is_refused(finished, tmp_path):
    """A k = 5000 report left from earlier weights must not be shipped as the final model's."""
    run, _ = finished
    stale = tmp_path / "stale"
    shutil.copytree(run, stale)
    report = stale / "evaluations" / iwae_finish.REPORT
    r = json.loads(report.read_text())
    r["weights"]["id"] = "0123456789abcdef"
    report.write_text(json.dumps(r))
    with pytest.raises(SystemExit, match="measured weights 0123456789abcdef, not the final model's"):
        iwae_finish.finish(stale, stale / "eval.time", results=tmp_path / "r", pretrained=tmp_path / "p", docs=False)
    assert not (tmp_path / "r").exists() and not (tmp_path / "p").exists()
