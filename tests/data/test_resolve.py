"""resolve_for_data: what the data imply for the config, settled once, before a model is built."""

from __future__ import annotations

from pathlib import Path

import pytest

import vaekit
from vaekit.config import Config
from vaekit.data import open_data, resolve_for_data
from vaekit.errors import ConfigError
from vaekit.likelihoods import MixedLikelihood, register_likelihood
from vaekit.registry import LIKELIHOODS

TABLE = "h,colour\n1.0,red\n3.0,blue\n5.0,red\n7.0,green\n"


def table_config(tmp_path: Path, **model: object) -> Config:
    (tmp_path / "t.csv").write_text(TABLE)
    return Config.from_dict({"data": {"source": "csv", "path": str(tmp_path / "t.csv")}, "model": model})


def test_a_table_fills_in_its_layout_and_likelihood_in_a_new_config(tmp_path):
    cfg = table_config(tmp_path)
    data = open_data(cfg.data)
    out = resolve_for_data(cfg, data)
    assert out.model.likelihood == "mixed"  # the csv source's registered likelihood
    assert [(c["name"], c["type"]) for c in out.model.columns] == [("h", "numeric"), ("colour", "categorical")]
    assert out.model.columns[0]["mean"] == 4.0 and out.model.columns[1]["levels"] == ["blue", "green", "red"]
    assert (cfg.model.likelihood, cfg.model.columns) == ("bernoulli", [])  # the caller's config is untouched
    assert out.data == cfg.data and out.train == cfg.train
    assert resolve_for_data(out, data) == out  # resolved once: resume and load resolve to the same
    Config.from_dict(out.to_dict())  # and it passes the guard as config.json


def test_images_imply_nothing(tiny_cfg):
    data = open_data(tiny_cfg.data)
    assert resolve_for_data(tiny_cfg, data) is tiny_cfg


def test_a_stale_layout_is_refused(tmp_path):
    cfg = table_config(tmp_path)
    out = resolve_for_data(cfg, open_data(cfg.data))
    (tmp_path / "t.csv").write_text(TABLE.replace("7.0", "9.0"))  # the table changed: another mean
    with pytest.raises(ConfigError, match="model.columns: is written by training from the table's layout"):
        resolve_for_data(out, open_data(cfg.data))


def test_a_table_likelihood_the_config_names_is_kept(tmp_path):
    register_likelihood("mixed-copy")(type("MixedCopy", (MixedLikelihood,), {}))
    try:
        cfg = table_config(tmp_path, likelihood="mixed-copy")
        out = resolve_for_data(cfg, open_data(cfg.data))
        assert out.model.likelihood == "mixed-copy" and len(out.model.columns) == 2
        model = vaekit.models.build(out, (4,))
        assert type(model.likelihood).__name__ == "MixedCopy" and model.config is out
    finally:
        del LIKELIHOODS["mixed-copy"]
