"""The csv source: column types, standardisation, one-hot, missing values; the mixed likelihood."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from vaekit.config import DataConfig, ModelConfig
from vaekit.data import open_data, tabular
from vaekit.errors import DataError
from vaekit.likelihoods import MixedLikelihood


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


TABLE = "h,colour,n\n1.0,red,3\n3.0,blue,1\n5.0,red,2\n7.0,green,3\n"


def test_numeric_standardised_categorical_one_hot(tmp_path: Path):
    data = open_data(DataConfig(source="csv", path=write(tmp_path / "t.csv", TABLE), categorical=["n"]))
    cols = data.columns
    assert [(c["name"], c["type"]) for c in cols] == [("h", "numeric"), ("colour", "categorical"), ("n", "categorical")]
    assert cols[0]["mean"] == 4.0 and cols[0]["std"] == pytest.approx(math.sqrt(5.0))  # population std of 1,3,5,7
    assert cols[1]["levels"] == ["blue", "green", "red"] and cols[2]["levels"] == ["1", "2", "3"]
    x = data.train.x  # (4, 1 + 3 + 3)
    assert x.shape == (4, 7) and data.shape == (7,)
    assert torch.allclose(x[:, 0], torch.tensor([-3.0, -1.0, 1.0, 3.0]) / math.sqrt(5.0))
    assert x[:, 1:4].tolist() == [[0, 0, 1], [1, 0, 0], [0, 0, 1], [0, 1, 0]]
    assert x[:, 4:].tolist() == [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]]


def test_missing_values_are_reported_by_column_and_line(tmp_path: Path):
    path = write(tmp_path / "t.csv", "a,b\n1,x\n,y\n3,NA\n4,\n")
    with pytest.raises(DataError, match=r"column 'a' has 1 missing value\(s\) on line\(s\) 3; .*data.missing=mask"):
        open_data(DataConfig(source="csv", path=path))


def test_masked_missing_values(tmp_path: Path):
    path = write(tmp_path / "t.csv", "a,b\n1,x\n,y\n3,NA\n5,x\n")
    data = open_data(DataConfig(source="csv", path=path, missing="mask"))
    a, b = data.columns
    assert a["masked"] and a["mean"] == 3.0  # statistics of the observed values only
    # a, its observed indicator, then b's one-hot; the gap in b is all zeros
    assert data.train.x[:, 1].tolist() == [1, 0, 1, 1] and data.train.x[1, 0] == 0.0
    assert data.train.x[2, 2:].tolist() == [0, 0]


def test_encode_puts_each_column_where_offsets_says():
    # the layout's order, not the file's; a masked numeric takes two places, a level one each
    layout = [{"name": "c", "type": "categorical", "levels": ["p", "q", "r"]},
              {"name": "a", "type": "numeric", "mean": 1.0, "std": 2.0, "masked": True},
              {"name": "b", "type": "numeric", "mean": 0.0, "std": 1.0}]  # no "masked" key: an unmasked column
    assert tabular.offsets(layout) == [0, 3, 5] and tabular.width(layout) == 6
    x = tabular.encode(["a", "b", "c"], [["5", "-1", "q"], ["", "2", "r"]], layout, "t.csv")
    assert x.tolist() == [[0, 1, 0, 2.0, 1, -1.0],   # q; (5 - 1) / 2 observed; -1
                          [0, 0, 1, 0.0, 0, 2.0]]    # r; a gap at the mean, flag 0; 2


def test_ragged_rows_and_unknown_categorical(tmp_path: Path):
    with pytest.raises(DataError, match="line 3 has 1 fields but the header has 2"):
        open_data(DataConfig(source="csv", path=write(tmp_path / "r.csv", "a,b\n1,2\n3\n")))
    with pytest.raises(DataError, match=r"data.categorical: \['zz'\] are not columns"):
        open_data(DataConfig(source="csv", path=write(tmp_path / "t.csv", TABLE), categorical=["zz"]))


def test_mixed_log_prob_is_gaussian_plus_categorical():
    cols = [{"name": "a", "type": "numeric", "mean": 0, "std": 1, "masked": True},
            {"name": "c", "type": "categorical", "levels": ["p", "q", "r"]}]
    lik = MixedLikelihood(cols, min_sigma=0.01)
    out = torch.tensor([[0.5, 9.0, 1.0, 2.0, 3.0]])  # (1, 5): mean of a, ignored, 3 logits
    x = torch.tensor([[1.5, 1.0, 0.0, 1.0, 0.0]])  # a = 1.5 observed, c = q
    s = lik.sigma()[0].item()
    expected = -0.5 * (1.0 / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi) + (2.0 - math.log(sum(math.exp(v) for v in (1, 2, 3))))
    assert lik.log_prob(out, x).item() == pytest.approx(expected, abs=1e-5)
    # A gap (indicator 0) and a missing category (all-zero one-hot) contribute nothing at all.
    gap = torch.tensor([[123.0, 0.0, 0.0, 0.0, 0.0]])
    assert lik.log_prob(out, gap).item() == 0.0
    probs = lik.mean(out)
    assert probs[0, 1] == 1.0 and probs[0, 2:].sum().item() == pytest.approx(1.0)


def test_mixed_needs_a_table():
    with pytest.raises(Exception, match="needs a table"):
        MixedLikelihood([])
    from vaekit.likelihoods import build_likelihood

    with pytest.raises(Exception, match="models table rows"):
        build_likelihood("mixed", 3, ModelConfig(likelihood="mixed"))


def test_sample_is_one_hot():
    cols = [{"name": "c", "type": "categorical", "levels": ["p", "q"]}, {"name": "d", "type": "categorical", "levels": ["u", "v", "w"]}]
    torch.manual_seed(0)
    x = MixedLikelihood(cols).sample(torch.randn(6, 5))
    assert np.array_equal(x[:, :2].sum(1).numpy(), np.ones(6)) and np.array_equal(x[:, 2:].sum(1).numpy(), np.ones(6))


# ---- a numeric column with bad cells is refused, not made a category ------------------------


@pytest.mark.parametrize("bad", ["inf", "-", "1,5", "missing"])
def test_bad_cells_in_a_numeric_column_are_refused(tmp_path: Path, bad: str):
    rows = [f"{i * 0.5},{'red' if i % 2 else 'blue'}" for i in range(30)]
    cell = f'"{bad}"' if "," in bad else bad  # quoted, as a spreadsheet writes it
    rows[7] = f"{cell},red"
    rows[19] = f"{cell},blue"
    path = write(tmp_path / "t.csv", "h,colour\n" + "\n".join(rows) + "\n")
    for missing in ("error", "mask"):
        with pytest.raises(DataError) as e:
            open_data(DataConfig(source="csv", path=path, missing=missing))
        msg = str(e.value)
        assert "column 'h' is numeric in 28 of 30 cells" in msg and "line(s) 9, 21" in msg and repr(bad) in msg
        assert "\n" not in msg


def test_missing_markers_follow_data_missing(tmp_path: Path):
    path = write(tmp_path / "t.csv", "h\n" + "\n".join(["1", "2", "NA", "4", "5"]) + "\n")
    with pytest.raises(DataError, match="column 'h' has 1 missing value"):
        open_data(DataConfig(source="csv", path=path))
    assert open_data(DataConfig(source="csv", path=path, missing="mask")).columns[0]["type"] == "numeric"


def test_decimal_commas_are_named(tmp_path: Path):
    path = write(tmp_path / "t.csv", 'h\n"1,5"\n"2,25"\n"3,0"\n')
    with pytest.raises(DataError, match="decimals with a comma"):
        open_data(DataConfig(source="csv", path=path))


def test_text_columns_and_declared_categoricals_stay_categorical(tmp_path: Path):
    path = write(tmp_path / "t.csv", "size,n\nS,1\nM,2\nXL,3\n4,x\n")  # 'n' is mostly numbers, 'size' text
    with pytest.raises(DataError, match="column 'n'"):
        open_data(DataConfig(source="csv", path=path))
    cols = open_data(DataConfig(source="csv", path=path, categorical=["n"])).columns
    assert [c["type"] for c in cols] == ["categorical", "categorical"]
