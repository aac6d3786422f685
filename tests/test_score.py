"""Anomaly scores of table rows: planted outliers rank at the top."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import vaekit
from vaekit.cli import main
from vaekit.score import score_csv


def table(path: Path, n: int, seed: int, outliers: list[list[str]] | None = None) -> Path:
    """Rows where b = 2a + noise and the colour is decided by a: a learnable joint structure."""
    rng = np.random.default_rng(seed)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b", "colour"])
        for _ in range(n):
            a = rng.normal()
            w.writerow([f"{a:.4f}", f"{2 * a + 0.1 * rng.normal():.4f}", "red" if a > 0 else "blue"])
        for row in outliers or []:
            w.writerow(row)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("score")
    cfg = vaekit.resolve("pytorch-example", overrides=[{
        "data": {"source": "csv", "path": str(table(tmp / "train.csv", 512, 0))},
        "model": {"hidden": [32], "latent_dim": 2},
        "train": {"epochs": 60, "batch_size": 64, "lr": 3e-3, "progress": False, "tensorboard": False, "eval_every": 0},
    }])
    vaekit.train(cfg, tmp / "run")
    return tmp / "run"


def test_layout_is_saved_with_the_run(run: Path):
    cols = json.loads((run / "config.json").read_text())["model"]["columns"]
    assert [c["name"] for c in cols] == ["a", "b", "colour"] and cols[2]["levels"] == ["blue", "red"]
    assert abs(cols[0]["mean"]) < 0.15 and 0.85 < cols[0]["std"] < 1.15  # a ~ N(0, 1) over 512 rows
    assert vaekit.load_run(run).config.model.likelihood == "mixed"


def test_planted_outliers_rank_at_the_top(run: Path, tmp_path: Path):
    planted = [["6.0", "-12.0", "red"],    # far out in both numeric columns
               ["0.5", "-3.0", "red"],     # b breaks b = 2a by 40 noise sds; marginals plausible
               ["1.5", "3.0", "blue"],     # the colour contradicts a
               ["-5.0", "-10.0", "blue"]]  # on the line, but 5 sd out
    new = table(tmp_path / "new.csv", 200, 1, planted)
    scores = score_csv(run, new, tmp_path / "scores.csv")["neg_elbo"]
    top = set(np.argsort(-scores)[:4].tolist())
    assert top == {200, 201, 202, 203}
    with open(tmp_path / "scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 204 and rows[0]["line"] == "2"
    assert float(rows[200]["neg_elbo"]) == pytest.approx(float(scores[200]), rel=1e-5)


def test_score_cli_and_its_errors(run: Path, tmp_path: Path, capsys):
    new = table(tmp_path / "new.csv", 20, 2, [["0.1", "0.2", "purple"]])
    assert main(["score", str(run), "--data", str(new), "-o", str(tmp_path / "s.csv")]) == 2
    err = capsys.readouterr().err
    assert "column 'colour' has value 'purple' on line(s) 22 that training never saw" in err and err.count("\n") == 1
    ok = table(tmp_path / "ok.csv", 20, 2)
    assert main(["score", str(run), "--data", str(ok), "-o", str(tmp_path / "s.csv")]) == 0
    assert "wrote" in capsys.readouterr().out and (tmp_path / "s.csv").is_file()
    (tmp_path / "nob.csv").write_text("a,colour\n1,red\n")
    assert main(["score", str(run), "--data", str(tmp_path / "nob.csv")]) == 2
    assert "lacks the column(s) ['b']" in capsys.readouterr().err


def gappy_table(path: Path, n: int, seed: int, extra: list[list[str]] | None = None) -> Path:
    """``table``'s rows with ~15% of each column missing (blank)."""
    rng = np.random.default_rng(seed + 100)
    with open(table(path.with_suffix(".full.csv"), n, seed)) as f:
        rows = list(csv.reader(f))
    for row in rows[1:]:
        for j in rng.permutation(3)[:2]:  # never all three
            if rng.random() < 0.15:
                row[j] = ""
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows + (extra or []))
    return path


@pytest.fixture(scope="module")
def masked_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("score-masked")
    cfg = vaekit.resolve("pytorch-example", overrides=[{
        "data": {"source": "csv", "path": str(gappy_table(tmp / "train.csv", 512, 0)), "missing": "mask"},
        "model": {"hidden": [32], "latent_dim": 2},
        "train": {"epochs": 60, "batch_size": 64, "lr": 3e-3, "progress": False, "tensorboard": False, "eval_every": 0},
    }])
    vaekit.train(cfg, tmp / "run")
    assert cfg.model.columns == [] and cfg.model.likelihood == "bernoulli"  # the caller's config is not changed
    return tmp / "run"


def test_masked_gaps_do_not_hide_outliers(masked_run: Path, tmp_path: Path):
    planted = [["6.0", "", "red"],      # far out, b missing
               ["", "-3.0", "red"],     # b far below the b = 2a line for any red (a > 0) row
               ["-5.0", "-10.0", ""]]   # 5 sd along the trend, colour missing
    # The same normal rows twice: complete, then with b and the colour missing.
    same = [["0.3", "0.6", "red"], ["-0.8", "-1.6", "blue"], ["1.1", "2.2", "red"]]
    gapped = [[a, "", ""] for a, _, _ in same]
    new = gappy_table(tmp_path / "new.csv", 200, 1, planted + same + gapped + [["", "", ""]])
    s = score_csv(masked_run, new, tmp_path / "scores.csv")
    assert set(np.argsort(-s["score"])[:3].tolist()) == {200, 201, 202}
    assert s["observed"][200:203].tolist() == [2, 2, 2] and s["observed"][206:209].tolist() == [1, 1, 1]
    complete = s["observed"] == 3
    assert np.allclose(s["score"][complete], s["neg_elbo"][complete], rtol=1e-5)
    # With 1 of 3 columns left the raw bound drops (fewer terms); the score adds back what the two
    # missing cells would typically cost, and these ordinary rows stay far below every outlier.
    assert (s["neg_elbo"][206:209] < s["neg_elbo"][203:206]).all()
    assert s["score"][203:209].max() < s["score"][200:203].min() / 2
    assert np.abs(s["score"][206:209] - s["score"][203:206]).mean() < 1.0  # close to the complete twins' (~0.3)
    with open(tmp_path / "scores.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows[206]["observed"] == "1" and float(rows[0]["score"]) == pytest.approx(float(s["score"][0]), rel=1e-5)
    assert np.isnan(s["score"][209]) and rows[209]["score"] == "nan" and rows[209]["observed"] == "0"  # nothing to score


def test_missing_cost_is_the_entropy_of_the_missing_cells():
    import torch

    from vaekit.likelihoods import MixedLikelihood

    cols = [{"name": "a", "type": "numeric", "mean": 0, "std": 1, "masked": True},
            {"name": "b", "type": "numeric", "mean": 0, "std": 1},
            {"name": "c", "type": "categorical", "levels": ["x", "y", "z"]}]
    lik = MixedLikelihood(cols)  # layout: a, a_observed, b, c_x, c_y, c_z
    with torch.no_grad():
        lik.raw_sigma.copy_(torch.tensor([-2.0, 0.5]))  # sigma_a < 0.24: a negative entropy
    out = torch.randn(3, 6)
    x = torch.tensor([[0.3, 1.0, 0.1, 0.0, 1.0, 0.0],    # complete
                      [0.0, 0.0, 0.1, 0.0, 1.0, 0.0],    # a missing
                      [0.0, 0.0, 0.1, 0.0, 0.0, 0.0]])   # a and c missing
    cost = lik.missing_cost(out, x)
    h_a = torch.distributions.Normal(0.0, lik.sigma()[0]).entropy()
    h_c = torch.distributions.Categorical(logits=out[2, 3:]).entropy()
    torch.testing.assert_close(cost, torch.stack([torch.tensor(0.0), h_a, h_a + h_c]))
    assert h_a < 0 and lik.observed(x).tolist() == [3, 2, 1]
