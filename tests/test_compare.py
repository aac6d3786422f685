"""PCA baseline, ``compare`` end to end (train, then --runs) and ``embed`` on a small MNIST subset."""

import json

import numpy as np
import pytest
import torch
from conftest import small_config

import vaekit
from vaekit.cli import main
from vaekit.compare import PCABaseline, compare
from vaekit.metrics.probes import reconstruction_errors


def test_pca_with_full_rank_reconstructs_exactly():
    x = torch.rand(50, 6, generator=torch.Generator().manual_seed(0))  # (N, D_x) vectors
    pca = PCABaseline(6).fit(x)
    torch.testing.assert_close(pca.reconstruct(x), x, atol=1e-5, rtol=0)


def test_pca_codes_have_the_component_variances_and_samples_follow_them():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(400, 1, 4, 4, generator=g) * torch.linspace(0.1, 1, 16).view(1, 1, 4, 4)
    pca = PCABaseline(3).fit(x)
    z = pca.encode(x)  # (N, 3)
    assert z.shape == (400, 3)
    # Scores of the training data: mean 0, variance = the explained variance of each component.
    np.testing.assert_allclose(z.double().mean(0).numpy(), 0, atol=1e-5)
    np.testing.assert_allclose(z.double().var(0).numpy(), pca.variances.numpy(), rtol=1e-4)
    torch.manual_seed(0)
    s = pca.sample(8)
    assert s.shape == (8, 1, 4, 4) and s.min() >= 0 and s.max() <= 1
    # Decoding is affine and encoding projects: encode(decode(z)) = z.
    torch.testing.assert_close(pca.encode(pca.decode(z[:5])), z[:5], atol=1e-5, rtol=0)


def test_pca_refuses_more_components_than_data_allow():
    with pytest.raises(vaekit.VaekitError, match="latent size 6"):
        PCABaseline(6).fit(torch.rand(6, 6))  # 6 points span only 5 dimensions


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """VAE and AE trained for 1 epoch on 600 MNIST images (test: 100), compared with PCA."""
    out = tmp_path_factory.mktemp("cmp")
    cfg = small_config(model={"hidden": [32], "latent_dim": 4}, data={"limit": 600})
    cfg.train.epochs = 1
    result = compare(cfg, out, n_samples=300, k=5, log=lambda s: None)
    return out, cfg, result


def test_compare_reports_every_metric_for_every_model(compared):
    out, cfg, result = compared
    rows = {r["model"]: r for r in result["rows"]}
    assert list(rows) == ["vae", "ae", "pca", "real data"]
    assert json.loads((out / "comparison.json").read_text())["rows"] == result["rows"]
    md = (out / "comparison.md").read_text()
    assert "| real data |" in md and "FID" in md and "linear probe" in md
    for name in ("vae", "ae", "pca"):
        r = rows[name]
        assert r["mse_pixel"] == pytest.approx(r["mse"] / 784)
        assert 0 <= r["probe"] <= 1 and 0 <= r["knn"] <= 1
        assert np.isfinite([r["bce"], r["fid"], r["is"]]).all() and 1 <= r["is"] <= 10
    # 4 principal components of 600 digits already separate the classes far above chance (0.1).
    assert rows["pca"]["probe"] > 0.4 and rows["pca"]["knn"] > 0.4
    # Real training digits are much closer to the test digits than 1-epoch models' samples.
    assert rows["real data"]["fid"] < min(rows[m]["fid"] for m in ("vae", "ae", "pca"))
    assert rows["real data"]["is"] > 6
    # The VAE row is the reconstruction error of the saved model, recomputed here.
    model = vaekit.load(out / "vae")
    test = vaekit.open_data(cfg.data).test
    assert reconstruction_errors(test.x, model.reconstruct(test.x))["mse"] == pytest.approx(rows["vae"]["mse"], rel=1e-5)


def test_compare_cli_on_existing_runs_gives_the_same_numbers(compared, tmp_path, capsys):
    out, _, result = compared
    code = main(["compare", "--runs", str(out / "vae"), str(out / "ae"), "--out", str(tmp_path), "--n-samples", "300"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| vae |" in printed and "| pca |" in printed
    again = {r["model"]: r for r in json.loads((tmp_path / "comparison.json").read_text())["rows"]}
    for row in result["rows"]:  # same models, data and seeds: identical scores
        for key, value in row.items():
            if key != "model":
                assert again[row["model"]][key] == pytest.approx(value, rel=1e-6), (row["model"], key)


def test_embed_writes_posterior_means_logvars_and_labels(compared, tmp_path):
    out, cfg, _ = compared
    test = vaekit.open_data(cfg.data).test
    path = tmp_path / "z.npz"
    assert main(["embed", str(out / "vae"), "-o", str(path)]) == 0
    with np.load(path, allow_pickle=False) as z:
        assert set(z.files) == {"mu", "logvar", "y", "classes"} and list(z["classes"]) == [str(i) for i in range(10)]
        n = len(test)
        assert z["mu"].shape == z["logvar"].shape == (n, 4) and z["y"].shape == (n,)
        np.testing.assert_array_equal(z["mu"], vaekit.load(out / "vae").encode(test.x).numpy())
        np.testing.assert_array_equal(z["y"], test.y.numpy())
    # The autoencoder has no posterior: codes only.
    assert main(["embed", str(out / "ae"), "--split", "train", "-o", str(path), "--overwrite"]) == 0
    with np.load(path, allow_pickle=False) as z:
        assert set(z.files) == {"mu", "y", "classes"} and z["mu"].shape == (600, 4)
        np.testing.assert_array_equal(z["mu"], vaekit.load(out / "ae").encode(vaekit.open_data(cfg.data).train.x).numpy())


def test_compare_bad_options_are_user_errors(compared, tmp_path, capsys):
    out, _, _ = compared
    assert main(["compare", "--runs", str(out / "vae"), "--k", "0", "--out", str(tmp_path)]) == 2
    assert "k >= 1" in capsys.readouterr().err


def test_embed_missing_split_is_a_user_error(compared, tmp_path, capsys):
    out, _, _ = compared
    assert main(["embed", str(out / "vae"), "--split", "val", "-o", str(tmp_path / "z.npz")]) == 2
    assert "no val split" in capsys.readouterr().err


def test_compare_skips_generation_metrics_for_other_data(tmp_path):
    # 8x8 digits: the MNIST classifier does not apply, so FID / IS are skipped with a note.
    cfg = small_config(model={"hidden": [16], "latent_dim": 3}, data={"source": "digits", "limit": 300})
    cfg.train.epochs = 1
    result = compare(cfg, tmp_path, n_samples=50, log=lambda s: None)
    assert [r["model"] for r in result["rows"]] == ["vae", "ae", "pca"]
    assert all("fid" not in r for r in result["rows"])
    assert any("no FID / IS" in n and "28x28" in n for n in result["notes"])


def test_compare_cli_applies_flags_and_set_to_both_models(tmp_path, capsys):
    # 1 short epoch: only the plumbing (flags, --set, output files) is exercised.
    out = tmp_path / "cmp"
    args = ["compare", "--limit", "300", "--set", "data.test_limit=50", "--epochs", "1", "--latent-dim", "3", "--set", "model.hidden=[16]",
            "--set", "train.tensorboard=false", "--n-samples", "100", "--k", "3", "--no-progress", "--out", str(out)]
    assert main(args) == 0
    assert "| real data |" in capsys.readouterr().out
    for name in ("vae", "ae"):
        cfg = json.loads((out / name / "config.json").read_text())
        assert cfg["model"]["name"] == name and cfg["model"]["latent_dim"] == 3 and cfg["model"]["hidden"] == [16]
        assert cfg["data"]["limit"] == 300 and cfg["train"]["epochs"] == 1
    report = json.loads((out / "comparison.json").read_text())
    assert any("300 train / 50 test" in n and "k = 3" in n for n in report["notes"])
