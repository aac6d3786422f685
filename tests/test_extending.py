"""A likelihood and a data source registered from user code, with no edit of vaekit.config: the
config accepts their names and the keys they declare, a run trains and evaluates with them through
the normal path (config -> data -> model -> trainer -> run folder), and the run loads again. A
registered *table* likelihood (``table = True``) is one everywhere a table is asked about: the
config, ``vaekit score`` and the ONNX exporter read the trait, never the name ``mixed``."""

from __future__ import annotations

import csv
import json
import math
import re

import numpy as np
import pytest
import torch

import vaekit
from vaekit.config import Config
from vaekit.data import RawData, register_source
from vaekit.data.infer import resolve_data_flags
from vaekit.errors import ConfigError
from vaekit.evaluate import evaluate_run
from vaekit.score import score_csv
from vaekit.likelihoods import Likelihood, register_likelihood
from vaekit.registry import LIKELIHOODS, SOURCES


class Laplace(Likelihood):
    """p(x|z) = prod_i Laplace(x_i; out_i, b), b = model.sigma: -log p = sum_i |x_i - out_i| / b + log 2b."""

    reads = frozenset({"sigma"})

    def __init__(self, event_dims: int, b: float) -> None:
        super().__init__(event_dims)
        self.b = b

    @classmethod
    def from_config(cls, event_dims, cfg):  # noqa: ANN001, ANN206
        return cls(event_dims, cfg.sigma)

    def log_prob(self, out, x):  # noqa: ANN001, ANN201
        return -self._sum((x - out).abs() / self.b + math.log(2 * self.b))

    def mean(self, out):  # noqa: ANN001, ANN201
        return out

    def sample(self, out):  # noqa: ANN001, ANN201
        return out + torch.distributions.Laplace(0.0, self.b).sample(out.shape)


class UnitTable(Likelihood):
    """p(x|z) = prod_j N(x_j; out_j, 1) over a table row of numeric columns, no gaps (D,):
    -log p = sum_j (x_j - out_j)^2 / 2 + D log(2 pi) / 2."""

    reads = frozenset({"columns"})
    table = True

    def __init__(self, columns) -> None:  # noqa: ANN001
        super().__init__(event_dims=1)
        self.n_columns = len(columns)

    @classmethod
    def from_config(cls, event_dims, cfg):  # noqa: ANN001, ANN206
        return cls(cfg.columns)

    def log_prob(self, out, x):  # noqa: ANN001, ANN201
        return -self._sum(0.5 * (x - out) ** 2 + 0.5 * math.log(2 * math.pi))

    def mean(self, out):  # noqa: ANN001, ANN201
        return out

    def observed(self, x):  # noqa: ANN001, ANN201
        return x.new_full((x.shape[0],), float(self.n_columns))

    def missing_cost(self, out, x):  # noqa: ANN001, ANN201
        return x.new_zeros(x.shape[0])


def line_table(path, n: int, extra: list[list[str]] = ()):  # noqa: ANN001, ANN201
    """Rows with b = 2a + noise, then ``extra`` rows."""
    rng = np.random.default_rng(3)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b"])
        for _ in range(n):
            a = rng.normal()
            w.writerow([f"{a:.4f}", f"{2 * a + 0.1 * rng.normal():.4f}"])
        w.writerows(extra)
    return path


def speckles(cfg) -> RawData:  # noqa: ANN001
    """100 fixed random 1x4x4 images in [0, 1]: 80 to train on, 20 to test on."""
    x = np.random.default_rng(7).random((100, 1, 4, 4)).astype(np.float32)
    return RawData(x[:80], x_test=x[80:])


@pytest.fixture
def registered():
    register_likelihood("laplace")(Laplace)
    register_source("speckles", test_split=True)(speckles)
    yield
    del LIKELIHOODS["laplace"], SOURCES["speckles"]  # the other tests see the built-ins only


def test_a_registered_likelihood_and_source_train_evaluate_and_load(registered, tmp_path):
    cfg = vaekit.resolve(overrides=[{
        "data": {"source": "speckles"},
        "model": {"likelihood": "laplace", "sigma": 0.5, "hidden": [8], "latent_dim": 2},
        "train": {"epochs": 2, "batch_size": 20, "progress": False, "tensorboard": False}}])
    run = vaekit.train(cfg, tmp_path / "run", log=lambda s: None)

    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (saved["data"]["source"], saved["model"]["likelihood"], saved["model"]["sigma"]) == ("speckles", "laplace", 0.5)
    assert [r["epoch"] for r in run.metrics] == [1, 2]
    assert run.metrics[-1]["test_what"].endswith("mean over 20 examples")  # the source's test split

    model = vaekit.load(tmp_path / "run")
    assert type(model.likelihood) is Laplace and model.likelihood.b == 0.5  # b from model.sigma
    x = torch.from_numpy(speckles(None).x_test)  # (20, 1, 4, 4)
    with torch.no_grad():
        out = model.decode_params(model.encode(x))
        # b = 0.5: -log p = 2 |x - out| summed, log 2b = 0 (b = 1, the default sigma, gives |x - out| + 16 log 2)
        torch.testing.assert_close(-model.likelihood.log_prob(out, x), 2 * (x - out).abs().flatten(1).sum(1))

    report = evaluate_run(tmp_path / "run", k=8, progress=False, save=False)
    assert (report["split"], report["n"], report["likelihood"]) == ("test", 20, "laplace")
    # The same 20 test images, weights, seed and z draws as training's last evaluation.
    assert report["elbo"]["recon"] == pytest.approx(run.metrics[-1]["test_recon"], rel=1e-5)
    assert report["elbo"]["kl"] == pytest.approx(run.metrics[-1]["test_kl"], rel=1e-5)
    assert math.isfinite(report["nll"]["value"]) and report["nll"]["k"] == 8

    pytest.importorskip("onnxruntime")
    from vaekit.export.onnx import ExportRefused, export_onnx

    # ONNX describes the built-in likelihoods only: a registered one is refused by name, before any file
    with pytest.raises(ExportRefused, match=r"^vae: not exported: the 'laplace' likelihood has no vaekit-onnx/1"):
        export_onnx(vaekit.load_run(tmp_path / "run"), tmp_path / "onnx")
    assert not (tmp_path / "onnx").exists()


@pytest.mark.parametrize(("raw", "error"), [
    ({"model": {"likelihood": "laplace", "sigma": 0.5}}, None),  # the key it declares it reads
    ({"model": {"sigma": 0.5}}, "applies only when model.likelihood = gaussian or laplace (here"),
    ({"model": {"likelihood": "laplace", "min_sigma": 0.1}}, "model.min_sigma=0.1 has no effect here"),
    ({"model": {"likelihood": "lapalce"}}, "model.likelihood: unknown likelihood 'lapalce' (did you mean 'laplace'?)"),
    ({"data": {"source": "speckles", "split": "all", "binarize": "static"}}, None),  # images with a test split
    ({"data": {"source": "speckles", "path": "x.npy"}}, "applies only when data.source = folder or arrays or csv"),
    ({"data": {"source": "speckes"}}, "data.source: unknown source 'speckes' (did you mean 'speckles'?)"),
])
def test_the_config_checks_registered_names_and_their_declared_keys(registered, raw, error):
    if error is None:
        Config.from_dict(raw)
    else:
        with pytest.raises(ConfigError, match=re.escape(error)):
            Config.from_dict(raw)


def test_the_cli_data_flag_names_a_registered_source(registered):
    assert resolve_data_flags("speckles", None) == {"source": "speckles"}


def test_a_name_registers_once():
    with pytest.raises(ValueError, match="likelihood 'bernoulli' is registered twice"):
        register_likelihood("bernoulli")(Laplace)
    assert LIKELIHOODS["bernoulli"] is not Laplace


@pytest.fixture
def unit_table():
    register_likelihood("unit-table")(UnitTable)
    yield
    del LIKELIHOODS["unit-table"]


def test_a_registered_table_likelihood_trains_scores_and_is_refused_by_onnx_by_its_trait(unit_table, tmp_path):
    cfg = vaekit.resolve(overrides=[{
        "data": {"source": "csv", "path": str(line_table(tmp_path / "train.csv", 256))},
        "model": {"likelihood": "unit-table", "hidden": [16], "latent_dim": 2},
        "train": {"epochs": 20, "batch_size": 64, "lr": 3e-3, "progress": False, "tensorboard": False}}])
    run = vaekit.train(cfg, tmp_path / "run", log=lambda s: None)
    assert run.config.model.likelihood == "unit-table"  # kept: a table likelihood, not replaced by csv's mixed
    assert type(run.model.likelihood) is UnitTable and run.model.likelihood.n_columns == 2

    # score: the bound under UnitTable (no gaps: score = neg_elbo), and the planted row ranks first
    new = line_table(tmp_path / "new.csv", 50, [["6.0", "-12.0"]])  # 6 sd out in both columns, off the line
    scores = score_csv(tmp_path / "run", new, tmp_path / "scores.csv")
    np.testing.assert_array_equal(scores["observed"], np.full(51, 2.0))
    np.testing.assert_array_equal(scores["score"], scores["neg_elbo"])
    assert int(np.argmax(scores["score"])) == 50
    # recon >= the normaliser D log(2 pi) / 2 of two unit Gaussians: the likelihood UnitTable defines
    assert scores["recon"].min() >= math.log(2 * math.pi) - 1e-5

    pytest.importorskip("onnxruntime")
    from vaekit.export.onnx import ExportRefused, export_onnx

    with pytest.raises(ExportRefused, match=r"^vae: not exported: the 'unit-table' likelihood of a table"):
        export_onnx(vaekit.load_run(tmp_path / "run"), tmp_path / "onnx")
    assert not (tmp_path / "onnx").exists()
