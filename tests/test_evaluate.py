"""evaluate / evaluate_run on a small trained run: the report, its labels and its saved file."""

import json
import math

import pytest
import torch
from conftest import small_config

import vaekit
from vaekit.config import ModelConfig
from vaekit.data import Split
from vaekit.errors import VaekitError
from vaekit.evaluate import evaluate, evaluate_run, format_report
from vaekit.models.ae import Autoencoder


@pytest.fixture(scope="module")
def binarized_run(tmp_path_factory):
    cfg = small_config(model={"hidden": [32], "latent_dim": 4}, data={"limit": 300, "binarize": "static"})
    cfg.train.epochs = 1
    out = tmp_path_factory.mktemp("eval") / "run"
    vaekit.train(cfg, out, log=lambda s: None)
    return out


def test_evaluate_run_reports_and_saves(binarized_run):
    r = evaluate_run(binarized_run, k=20, limit=30, progress=False)
    assert r["split"] == "test" and r["n"] == 30 and r["binarize"] == "static"
    saved = binarized_run / "evaluations" / "test-n30-k20-L1-seed0.json"
    assert json.loads(saved.read_text()) == json.loads(json.dumps(r))
    assert r["split_size"] == 50 and r["elbo"]["bound"].startswith("negative ELBO of log p(x)")
    e, nll, lat = r["elbo"], r["nll"], r["latent"]
    assert e["neg_elbo"] == pytest.approx(e["recon"] + e["kl"])
    assert r["meaning"]["kind"] == "nll"  # Bernoulli on binarized pixels: a real NLL
    assert nll["k"] == 20 and nll["se"] > 0 and 1 <= nll["ess"] <= 20
    # The importance-weighted bound is tighter than the ELBO (Burda et al. 2015, theorem 1).
    assert nll["value"] < e["neg_elbo"]
    # The analytic KL per dimension adds up to the ELBO's (analytic) KL term.
    assert len(lat["kl_per_dim"]) == 4
    assert sum(lat["kl_per_dim"]) == pytest.approx(e["kl"], rel=1e-5)
    assert 0 <= lat["active_units"] <= 4 and 0 <= lat["mi"] <= lat["mi_max"] + 1e-9
    again = evaluate_run(binarized_run, k=20, limit=30, progress=False, save=False)
    assert again["nll"]["value"] == r["nll"]["value"]  # seeded: the same number every time
    text = format_report(r)
    assert "IS NLL (k=20)" in text and "comparable to papers" in text and "active units" in text
    # -log p(x|y) only for a conditional model: an unconditional one has no such key or line
    assert "nll_conditional" not in r and "p(x|y)" not in text


def test_evaluate_run_bad_input(binarized_run):
    with pytest.raises(VaekitError, match="--limit"):
        evaluate_run(binarized_run, limit=0, k=1, save=False)
    with pytest.raises(VaekitError, match="no val split"):
        evaluate_run(binarized_run, split="val", k=1, save=False)


def test_models_without_a_density():
    ae = Autoencoder(ModelConfig(name="ae", latent_dim=2, hidden=[8]), (6,))
    split = Split(torch.rand(10, 6))
    from vaekit.metrics.likelihood import importance_sampled_nll

    with pytest.raises(VaekitError, match="no density"):
        importance_sampled_nll(ae, split, k=5, progress=False)
    r = evaluate(ae, split, k=5, progress=False)  # the ELBO-free parts only, and a note saying so
    assert "nll" not in r and "latent" not in r and r["meaning"]["kind"] == "bce"
    assert "defines no density" in r["notes"][0] and "defines no density" in format_report(r)
    assert "reconstruction loss" in format_report(r) and "negative ELBO" not in format_report(r)
    assert "notes" not in evaluate(ae, split, k=0, progress=False)


def test_discretized_gaussian_reports_bits_per_dim():
    from vaekit.models.vae import VAE

    torch.manual_seed(0)
    model = VAE(ModelConfig(latent_dim=2, hidden=[8], likelihood="gaussian-learned"), (1, 4, 4))
    split = Split(torch.randint(0, 256, (10, 1, 4, 4)).float() / 255)  # 8-bit pixels
    r = evaluate(model, split, k=8, progress=False, discretize=True)
    assert r["meaning"]["kind"] == "discretized"
    assert r["nll"]["bits_per_dim"] == pytest.approx(r["nll"]["value"] / (16 * math.log(2)))
    assert r["nll"]["value"] > 0  # -log of a probability mass
    dens = evaluate(model, split, k=8, progress=False)
    assert dens["meaning"]["kind"] == "density" and dens["nll"]["bits_per_dim"] is None
    with pytest.raises(VaekitError, match="not 256-level"):
        evaluate(model, Split(torch.full((3, 1, 4, 4), 0.5001)), k=2, progress=False, discretize=True)


def test_active_units_per_layer_are_reported_for_a_hierarchical_model_only():
    from vaekit.models import build
    from vaekit.viz.report_eval import headline

    x = torch.rand(60, 1, 4, 4, generator=torch.Generator().manual_seed(0)).bernoulli()
    torch.manual_seed(0)
    hvae = build(ModelConfig(name="hvae", latent_dim=3, hidden=[8], options={"top_dim": 2, "features": 8,
                                                                            "top_hidden": 8}), (1, 4, 4))
    with torch.no_grad():
        hvae.head2.weight[1] *= 100  # one z2 unit active, whatever the initialisation did
    r = evaluate(hvae, Split(x), k=0, progress=False)
    lat = r["latent"]
    a1, a2 = lat["active_units_by_layer"]["z1"], lat["active_units_by_layer"]["z2"]
    assert a1 == lat["active_units"] and a2 >= 1 and lat["latent_dim_by_layer"] == {"z1": 3, "z2": 2}
    line = [ln for ln in format_report(r).splitlines() if "active units" in ln]
    assert line == [f"  {'active units':<28s} z1 {a1}/3, z2 {a2}/2 (Cov_x E_q[z_u] > 0.01)"]
    assert f"<td>z1 {a1} / 3, z2 {a2} / 2</td>" in headline(r)
    # The saved JSON round-trips the breakdown.
    assert json.loads(json.dumps(r))["latent"]["active_units_by_layer"] == {"z1": a1, "z2": a2}

    vae = build(ModelConfig(latent_dim=3, hidden=[8]), (1, 4, 4))
    r = evaluate(vae, Split(x), k=0, progress=False)
    assert "active_units_by_layer" not in r["latent"] and "latent_dim_by_layer" not in r["latent"]
    text = format_report(r)
    line = [ln for ln in text.splitlines() if "active units" in ln]
    assert line == [f"  {'active units':<28s} {r['latent']['active_units']}/3 (Cov_x E_q[z_u] > 0.01)"]
    assert "z1 " not in text and f"<td>{r['latent']['active_units']} / 3</td>" in headline(r)
