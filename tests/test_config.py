import json

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


def test_a_retired_key_is_dropped_from_a_saved_config_and_refused_where_a_user_wrote_it(tmp_path):
    from vaekit.config import RETIRED, load_json, resolve

    assert "channels-last" in RETIRED["train.channels_last"]  # why it went, for whoever meets it in an old run
    for value in (True, False):
        raw = {"train": {"channels_last": value, "epochs": 3}}
        cfg = Config.from_dict(raw, saved=True)
        assert cfg == Config.from_dict({"train": {"epochs": 3}}) and "channels_last" in raw["train"]  # raw kept
        assert "channels_last" not in cfg.to_dict()["train"]
        saved = tmp_path / "config.json"  # an old run folder's config.json
        saved.write_text(json.dumps(raw))
        assert load_json(saved) == cfg
        # written by a user now (a config file, --set): refused with the reason, never silently ignored
        with pytest.raises(ConfigError, match=r"train\.channels_last was removed \(the conv layers"):
            Config.from_dict(raw)
        with pytest.raises(ConfigError, match="was removed"):
            resolve("pytorch-example", overrides=[{"train": {"channels_last": value}}])
    with pytest.raises(ConfigError, match="unknown key 'channel_last'"):
        Config.from_dict({"train": {"channel_last": True}})


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


# ---- the guard (vaekit.guard): a key set where it has no effect is refused ------------------


@pytest.mark.parametrize("raw, message", [
    ({"data": {"threshold": 0.3}},
     "data.threshold=0.3 has no effect here: it applies only when data.binarize = threshold "
     "(here data.binarize = none); remove it or change data.binarize"),
    ({"data": {"source": "digits", "path": "x.npy"}},
     "data.path=x.npy has no effect here: it applies only when data.source = folder or arrays or csv "
     "(here data.source = digits); remove it or change data.source"),
    ({"model": {"sigma": 0.5}}, "model.sigma=0.5 has no effect here: it applies only when model.likelihood = gaussian"),
    ({"model": {"arch": "conv", "hidden": [8]}}, "model.hidden=[8] has no effect here: it applies only when model.arch = mlp"),
    ({"train": {"lr_gamma": 0.1}}, "train.lr_gamma=0.1 has no effect here: it applies only when train.lr_schedule = step or exponential"),
    ({"train": {"device": "cpu", "compile": True}}, "train.compile=true has no effect here: it applies only on CUDA"),
    ({"data": {"source": "folder", "path": "d", "test_limit": 5}}, "data.test_limit=5 has no effect here"),
    ({"data": {"url": "http://x/"}}, "data.url=http://x/ has no effect here: it applies only when data.source = mnist and when data.download = true (here data.download = false)"),
    ({"model": {"likelihood": "gaussian"}, "data": {"source": "csv", "path": "t.csv"}}, "model.likelihood=gaussian has no effect here"),
    ({"model": {"name": "warmup-vae", "options": {"cycles": 2}}},
     "model.options.cycles=2 has no effect here: it applies only when model.options.schedule = cyclical"),
])
def test_guard_refuses_keys_where_they_have_no_effect(raw, message):
    with pytest.raises(ConfigError) as e:
        Config.from_dict(raw)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_guard_accepts_keys_where_they_apply_and_saved_table_configs():
    Config.from_dict({"data": {"binarize": "threshold", "threshold": 0.3}, "model": {"likelihood": "gaussian", "sigma": 0.5}})
    Config.from_dict({"data": {"source": "mnist", "download": True, "url": "http://x/"}})
    # what training writes for a csv table: the mixed likelihood and the column layout
    saved = {"data": {"source": "csv", "path": "t.csv"}, "model": {"likelihood": "mixed", "min_sigma": 0.1,
             "columns": [{"name": "h", "type": "numeric", "mean": 0.0, "std": 1.0, "masked": False}]}}
    Config.from_dict(saved)
    with pytest.raises(ConfigError, match="model.likelihood=mixed has no effect here"):
        Config.from_dict({"model": {"likelihood": "mixed"}})


def test_default_values_are_never_refused():
    # Writing a key at its default (as config.json does for every key) is not "setting" it.
    assert Config.from_dict(json.loads(Config().to_json())) == Config()
    cfg = Config.from_dict({"data": {"threshold": 0.5}, "model": {"name": "ae", "beta": 1.0, "samples": 1}})
    assert cfg.model.name == "ae" and (cfg.data.threshold, cfg.model.beta, cfg.model.samples) == (0.5, 1.0, 1)
