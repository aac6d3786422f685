"""Model keys a family does not read are refused: silently ignored, `--model iwae --samples 10`
would train with k = 5 and `--beta 4` on `ae` or `capacity-vae` give bit-identical metrics."""

from __future__ import annotations

import pytest

from vaekit.cli import main
from vaekit.config import resolve
from vaekit.errors import ConfigError
from vaekit.models import MODELS


@pytest.mark.parametrize("argv, message", [
    (["--model", "iwae", "--samples", "10"], "model.samples=10 has no effect here.*model.name = iwae: its k is model.options.k"),
    (["--model", "ae", "--beta", "4"], "model.beta=4.0 has no effect here.*an autoencoder has no KL term"),
    (["--model", "capacity-vae", "--beta", "4"], "model.beta=4.0 .*its KL weight is model.options.gamma"),
    (["--model", "iwae", "--kl", "mc"], "model.kl=mc .*never uses the analytic KL"),
    (["--model", "vamp", "--kl", "mc"], "model.kl=mc .*always the Monte-Carlo estimate"),
    (["--model", "dae", "--samples", "3"], "model.samples=3 .*deterministic"),
])
def test_unread_model_flags_are_refused_in_one_line(argv, message, capsys, tmp_path):
    assert main(["train", *argv, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    import re

    assert re.search(message, err), err
    assert not (tmp_path / "r").exists()


def test_iwae_k_is_its_option():
    cfg = resolve("iwae", overrides=[{"model": {"options": {"k": 10}}}])
    from vaekit.models import build

    assert build(cfg.model, (1, 28, 28)).default_samples == 10


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_family_declares_what_it_reads(name):
    cls = MODELS[name]
    assert cls.reads <= {"beta", "kl", "samples"}
    for key in {"beta", "kl", "samples"} - cls.reads:  # a refused key says why, or the guard lists where
        with pytest.raises(ConfigError, match=f"model.{key}="):
            value = {"beta": 2.0, "kl": "mc", "samples": 2}[key]
            resolve(overrides=[{"model": {"name": name, key: value}}])


def test_compare_gives_beta_to_the_vae_only(tmp_path):
    import json

    from vaekit.compare import _train_models

    cfg = resolve(overrides=[{"data": {"source": "digits", "limit": 64}, "model": {"beta": 2.0, "hidden": [8], "latent_dim": 2},
                              "train": {"epochs": 1, "batch_size": 32, "progress": False, "tensorboard": False}}])
    _train_models(cfg, tmp_path, overwrite=False, log=lambda s: None)
    saved = {n: json.loads((tmp_path / n / "config.json").read_text())["model"]["beta"] for n in ("vae", "ae")}
    assert saved == {"vae": 2.0, "ae": 1.0}
