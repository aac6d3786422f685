import pytest

import vaekit
from vaekit.config import Config, parse_override, preset_names, read_config_file, resolve
from vaekit.errors import ConfigError


def test_presets_resolve():
    assert {"pytorch-example", "mlp-d64", "keras-conv", "gaussian-mlp"} <= set(preset_names())
    for name in preset_names():
        assert resolve(name).preset == name


def test_unknown_key_names_nearest():
    with pytest.raises(ConfigError, match=r"model: unknown key 'latnet_dim'.*'latent_dim'"):
        Config.from_dict({"model": {"latnet_dim": 3}})
    with pytest.raises(ConfigError, match=r"unknown key 'trian'.*'train'"):
        Config.from_dict({"trian": {}})


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"model": {"latent_dim": 0}}, "model.latent_dim: must be at least 1"),
        ({"model": {"beta": -1}}, "model.beta: must be >= 0"),
        ({"model": {"latent_dim": "two"}}, "model.latent_dim: expected a whole number"),
        ({"model": {"likelihood": "bernouli"}}, "did you mean 'bernoulli'"),
        ({"train": {"lr": 0}}, "train.lr: must be > 0"),
        ({"train": {"lr": float("inf")}}, "train.lr: expected a finite number"),
        ({"model": {"beta": float("nan")}}, "model.beta: expected a finite number"),
        ({"train": {"progress": "yes"}}, "train.progress: expected true or false"),
        ({"model": {"hidden": [400, -1]}}, "model.hidden"),
        ({"data": {"source": "folder"}}, "data.path: the 'folder' source needs a path"),
        ({"model": {"channels": [8, 16], "strides": [2]}}, "model.strides"),
        ({"model": {"arch": "conv", "kernel_size": 4}}, "model.kernel_size: conv layers need an odd kernel"),
    ],
)
def test_bad_values_are_named(raw, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Config.from_dict(raw)


def test_int_is_accepted_for_float_and_json_round_trip():
    cfg = Config.from_dict({"model": {"beta": 4}, "train": {"lr": 1}})
    assert cfg.model.beta == 4.0 and isinstance(cfg.model.beta, float)
    import json

    assert Config.from_dict(json.loads(cfg.to_json())) == cfg


def test_files_and_overrides(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('preset = "keras-conv"\n[model]\nbeta = 2.5\n')
    cfg = resolve(file=toml, overrides=[parse_override("train.epochs=3"), parse_override("model.arch=conv")])
    assert cfg.preset == "keras-conv" and cfg.model.latent_dim == 2 and cfg.model.beta == 2.5
    assert cfg.train.epochs == 3
    yml = tmp_path / "c.yaml"
    yml.write_text("model:\n  latent_dim: 7\n  hidden: [32, 16]\n")
    assert resolve(file=yml).model.hidden == [32, 16]
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError, match="cannot be parsed"):
        read_config_file(bad)  # safe_load refuses to construct objects


def test_unknown_preset_suggests():
    with pytest.raises(ConfigError, match="did you mean 'keras-conv'"):
        vaekit.resolve("keras_conv")
