"""Typed run configuration: dataclasses, presets, config files and ``key=value`` overrides.

Every run is described by one :class:`Config`. It is built from (in order of precedence, lowest
first) the defaults, a named preset (``presets/*.toml``), a TOML/YAML file, and ``section.key=value``
overrides. Unknown keys are an error naming the key and the nearest valid one; the resolved config
is saved as ``config.json`` beside every checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from . import guard
from .errors import ConfigError
from .guard import Applies, all_of, any_of, key, model_reads, when, when_in
from .registry import LIKELIHOODS, MODELS, SOURCES
from .typed import build_dataclass, suggest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


# Where keys apply (vaekit.guard): a key set away from its default where it has no effect is
# refused by validate(), so config.json never records a value the run did not use. Which sources
# and likelihoods a key applies to is read from their registered traits (vaekit.registry), so a
# new source or likelihood registers without an edit here.
def _sources(test: Any) -> Any:
    return lambda: SOURCES.names(test)


def _likelihoods(test: Any) -> Any:
    return lambda: LIKELIHOODS.names(test)


IMAGES = when_in("data.source", _sources(lambda s: s.kind == "images"))  # pixels in [0, 1]
TABLES = when_in("data.source", _sources(lambda s: s.kind == "table"))  # standardised rows
WITH_PATH = when_in("data.source", _sources(lambda s: s.path))  # sources that read data.path
WITH_TEST = when_in("data.source", _sources(lambda s: s.test_split))  # that can deliver a test split
_test_split = all_of(WITH_TEST, when("data.split", "train"))
_val = Applies(lambda cfg, opts: cfg.data.val_size > 0, "when data.val_size > 0")
_not_cpu = Applies(lambda cfg, opts: cfg.train.device != "cpu", "on CUDA (train.device = auto or cuda)",
                   lambda cfg, opts: "train.device = cpu")


def _reads(name: str) -> Applies:
    """Applies to the likelihoods that read model config key ``name`` (their ``reads``)."""
    return when_in("model.likelihood", _likelihoods(lambda c: name in c.reads))


def _is_table_likelihood(cfg: Any) -> bool:
    return cfg.model.likelihood in LIKELIHOODS.names(lambda c: c.table)


# A table trains with a table likelihood (its source's, filled in by vaekit.data.resolve_for_data
# unless the config names another table likelihood); images with any other.
_likelihood = Applies(
    lambda cfg, opts: TABLES.test(cfg, opts) == _is_table_likelihood(cfg),
    lambda: (f"to image data ({' / '.join(SOURCES.names(lambda s: s.kind == 'table'))} tables always use "
             f"{' or '.join(LIKELIHOODS.names(lambda c: c.table))}, set by training)"),
    lambda cfg, opts: f"data.source = {cfg.data.source}")


@dataclass
class DataConfig:
    """Where the data comes from and how it is prepared."""

    source: Annotated[str, SOURCES.check] = key("mnist")  # a registered source (vaekit.data.register_source)
    path: str | None = key(None, WITH_PATH)  # folder, .npy/.npz, .csv
    # "train": fit on the training split, report on the test split; "all": train + test together
    # (the Keras tutorial trains on all 70k MNIST images).
    split: Literal["train", "all"] = key("train", WITH_TEST)
    val_size: float = key(0.0)  # held out of training for validation: a fraction (< 1) or a count
    binarize: Literal["none", "threshold", "static", "dynamic"] = key("none", IMAGES)
    threshold: float = key(0.5, when("data.binarize", "threshold"))
    # the seed of the single Bernoulli draw of held-out data (and of the training data when static)
    test_binarize_seed: int = key(0, any_of(when("data.binarize", "static"), all_of(
        when("data.binarize", "dynamic"), any_of(_val, _test_split))))
    image_size: list[int] | None = key(None, IMAGES)  # [H, W] to resize every image to
    grayscale: bool | None = key(None, IMAGES)  # force grey (True) or RGB (False); None = keep
    limit: int | None = key(None)  # train on the first N training examples only (quick runs)
    test_limit: int | None = key(None, _test_split)  # the first N test examples; None = the full test set
    download: bool = key(False, when("data.source", "mnist"))  # fetch MNIST instead of the embedded copy
    url: str | None = key(None, all_of(when("data.source", "mnist"), when("data.download", True)))  # its base URL
    seed: int = key(0, any_of(when("data.source", "digits"), _val))  # digits' test split, the validation split
    # csv tables (vaekit.data.tabular): columns to treat as categorical even if they look numeric,
    # and missing cells: "error" (name the column and lines) or "mask" (left out of the likelihood)
    categorical: list[str] = key(applies=when("data.source", "csv"), factory=list)
    missing: Literal["error", "mask"] = key("error", when("data.source", "csv"))
    # arrays .npy / folders of .npy shards / image folders: stream rows from disk (vaekit.data.stream);
    # "auto" = when the float32 data would fill more than half the available memory
    stream: Literal["auto", "on", "off"] = key("auto", when("data.source", "arrays", "folder"))
    # image folders: train on the readable images and list the unreadable ones, instead of refusing
    skip_bad: bool = key(False, when("data.source", "folder"))


@dataclass
class ModelConfig:
    """The model: which registered family, its networks, likelihood and objective."""

    name: Annotated[str, MODELS.check] = key("vae")  # a registered model family (vaekit.models.register)
    latent_dim: int = key(20)
    arch: Literal["mlp", "conv"] = key("mlp")
    hidden: list[int] = key(applies=when("model.arch", "mlp"), factory=lambda: [400])  # MLP encoder hidden sizes
    decoder_hidden: list[int] | None = key(None, when("model.arch", "mlp"))  # None = reversed(hidden)
    channels: list[int] = key(applies=when("model.arch", "conv"), factory=lambda: [32, 64])  # conv encoder channels
    kernel_size: int = key(3, when("model.arch", "conv"))
    strides: list[int] | None = key(None, when("model.arch", "conv"))  # per conv layer; None = 2 for every layer
    dense: list[int] = key(applies=when("model.arch", "conv"), factory=list)  # conv: dense layers before the latent
    decoder_dense: list[int] | None = key(None, when("model.arch", "conv"))  # None = reversed(dense)
    # Weight initialisation: PyTorch's default, or Glorot-uniform kernels with zero biases (what
    # Keras does; the keras-conv preset uses it to reproduce that model's training curve).
    init: Literal["default", "glorot"] = key("default")
    activation: Literal["relu", "tanh", "elu", "leaky_relu", "softplus", "gelu", "silu"] = key("relu")
    # a registered likelihood (vaekit.likelihoods.register_likelihood); a table's is set by training
    likelihood: Annotated[str, LIKELIHOODS.check] = key("bernoulli", _likelihood)
    sigma: float = key(1.0, _reads("sigma"))  # fixed-variance Gaussian: the decoder's std
    # learned-variance Gaussian (and a table's numeric columns): floor on the standard deviation
    min_sigma: float = key(0.01, any_of(_reads("min_sigma"), TABLES))
    beta: float = key(1.0, model_reads("beta"))  # weight of the KL term (Higgins et al. 2017); 1 is the ELBO
    kl: Literal["analytic", "mc"] = key("analytic", model_reads("kl"))  # SGVB estimator B (analytic) or A (MC)
    samples: int = key(1, model_reads("samples"))  # L: posterior samples per datapoint (Kingma & Welling eq. 7/8)
    options: dict[str, Any] = key(factory=dict)  # options of the registered family (checked against its Options)
    # a table likelihood: the table's column layout (names, types, mean/std, categories), filled in
    # from the data before the model is built (vaekit.data.resolve_for_data) and reused to score new
    # rows (vaekit.score); never an input
    columns: list[dict[str, Any]] = key(applies=TABLES, factory=list)


@dataclass
class TrainConfig:
    """The optimisation loop."""

    epochs: int = key(10)
    batch_size: int = key(128)
    lr: float = key(1e-3)
    adam_eps: float = key(1e-8)  # Adam's epsilon: torch's default; Keras's is 1e-7
    weight_decay: float = key(0.0)
    # "burda": Burda et al. (2015) §5, stage i = 0, 1, ... lasts 3^i epochs at lr * 10^(-i/7)
    lr_schedule: Literal["none", "cosine", "step", "exponential", "burda"] = key("none")
    lr_step_epochs: int = key(10, when("train.lr_schedule", "step"))  # multiply by lr_gamma every N epochs
    lr_gamma: float = key(0.5, when("train.lr_schedule", "step", "exponential"))  # the decay factor
    grad_clip: float | None = key(None)  # clip the global gradient norm to this value
    seed: int = key(0)
    device: Literal["auto", "cpu", "cuda"] = key("auto")
    eval_batch_size: int = key(2048)
    eval_every: int = key(1)  # evaluate on validation/test data every N epochs (0 = only at the end)
    checkpoint_every: int = key(1)  # save a resumable checkpoint every N epochs
    checkpoint_every_steps: int | None = key(None)  # also every N optimiser steps (long epochs)
    # keep the weights of every Nth epoch as RUN/checkpoints/epoch_NNNNN.safetensors (0 = none):
    # learning curves of a long run evaluated afterwards (e.g. NLL against CPU-hours)
    snapshot_every: int = key(0)
    max_bad_steps: int = key(5)  # stop after this many non-finite losses/gradients in a row
    progress: bool = key(True)  # a live progress bar
    tensorboard: bool = key(True)  # write TensorBoard logs when tensorboard is installed
    threads: int | None = key(None)  # torch intra-op threads; None = torch's default
    plot_every: int = key(0)  # write progress pictures (RUN/progress/*_epochNNN.png) every N epochs; 0 = never
    # CUDA only (refused elsewhere, see vaekit.distributed.check_flags): bf16 autocast of the
    # forward pass, torch.compile of the (DDP-wrapped) model. (The conv layers keep their own
    # channels-last layout on every device: see RETIRED.)
    precision: Literal["fp32", "bf16"] = key("fp32", _not_cpu)
    compile: bool = key(False, _not_cpu)


# Keys that earlier versions wrote into config.json and this one no longer has, with why. A config
# that carries one (an old run folder's, resumed or loaded) is read without it, so old runs load
# and resume; the key is gone from the config.json a resumed run writes back.
RETIRED: dict[str, str] = {
    "train.channels_last": (
        "the conv layers keep their weights and activations channels-last on every device "
        "(vaekit.nn.conv), so the model.to(channels_last) it asked for left every model computing "
        "the same numbers: the key did nothing"),
}


def retired_in(raw: dict[str, Any]) -> list[tuple[str, str]]:
    """(section, name) of every :data:`RETIRED` key the nested config dict ``raw`` carries."""
    keys = [tuple(dotted.split(".")) for dotted in RETIRED]
    return [(s, n) for s, n in keys if isinstance(raw.get(s), dict) and n in raw[s]]


def without_retired(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` (a nested config dict) minus the :data:`RETIRED` keys; ``raw`` is not changed."""
    out = dict(raw)
    for section, name in retired_in(raw):
        out[section] = {k: v for k, v in out[section].items() if k != name}
    return out


@dataclass
class Config:
    """A whole run: data, model and training, plus the preset it came from."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    preset: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "config", *, saved: bool = False) -> "Config":
        """Build a config from a nested dict, rejecting unknown keys and wrong types. A retired key
        (:data:`RETIRED`) is dropped from a ``saved`` config (an old run folder's ``config.json``:
        old runs keep loading) and refused, with its reason, anywhere a user wrote it."""
        written = [] if saved else [".".join(key) for key in retired_in(raw)]
        if written:
            raise ConfigError(f"{where}: {written[0]} was removed ({RETIRED[written[0]]}); drop it")
        cfg = build_dataclass(cls, without_retired(raw), where)
        validate(cfg)
        return cfg


def validate(cfg: Config) -> None:
    """Registered names and the range checks that types alone cannot express."""
    m, t, d = cfg.model, cfg.train, cfg.data
    for registry, name in ((SOURCES, d.source), (MODELS, m.name), (LIKELIHOODS, m.likelihood)):
        registry.check(name, registry.key)  # a config built in Python skipped build_dataclass's check
    checks = [
        (m.latent_dim >= 1, "model.latent_dim", "must be at least 1"),
        (m.beta >= 0, "model.beta", "must be >= 0"),
        (m.samples >= 1, "model.samples", "must be at least 1"),
        (m.sigma > 0, "model.sigma", "must be > 0"),
        (m.min_sigma > 0, "model.min_sigma", "must be > 0"),
        (m.kernel_size >= 1, "model.kernel_size", "must be at least 1"),
        (all(h >= 1 for h in m.hidden), "model.hidden", "sizes must be at least 1"),
        (all(c >= 1 for c in m.channels), "model.channels", "sizes must be at least 1"),
        (t.epochs >= 0, "train.epochs", "must be >= 0"),
        (t.batch_size >= 1, "train.batch_size", "must be at least 1"),
        (t.eval_batch_size >= 1, "train.eval_batch_size", "must be at least 1"),
        (t.lr > 0, "train.lr", "must be > 0"),
        (t.adam_eps > 0, "train.adam_eps", "must be > 0"),
        (t.weight_decay >= 0, "train.weight_decay", "must be >= 0"),
        (t.grad_clip is None or t.grad_clip > 0, "train.grad_clip", "must be > 0"),
        (t.threads is None or t.threads >= 1, "train.threads", "must be at least 1"),
        (t.plot_every >= 0, "train.plot_every", "must be >= 0 (0 = no progress pictures)"),
        (t.checkpoint_every >= 1, "train.checkpoint_every", "must be at least 1"),
        (t.checkpoint_every_steps is None or t.checkpoint_every_steps >= 1, "train.checkpoint_every_steps",
         "must be at least 1"),
        (t.snapshot_every >= 0, "train.snapshot_every", "must be >= 0 (0 = no snapshots)"),
        (t.max_bad_steps >= 1, "train.max_bad_steps", "must be at least 1"),
        (t.eval_every >= 0, "train.eval_every", "must be >= 0"),
        (0 <= d.val_size and (d.val_size < 1 or d.val_size == int(d.val_size)), "data.val_size",
         "must be a fraction in [0, 1) or a whole count"),
        (0 < d.threshold < 1, "data.threshold", "must be in (0, 1)"),
        (d.limit is None or d.limit >= 1, "data.limit", "must be at least 1"),
        (d.test_limit is None or d.test_limit >= 1, "data.test_limit", "must be at least 1"),
        (d.image_size is None or (len(d.image_size) == 2 and min(d.image_size) >= 1),
         "data.image_size", "must be [height, width] with positive sizes"),
    ]
    for ok, key, msg in checks:
        if not ok:
            raise ConfigError(f"{key}: {msg} (got {_get(cfg, key)!r})")
    if m.arch == "conv" and m.kernel_size % 2 == 0:
        raise ConfigError(
            f"model.kernel_size: conv layers need an odd kernel (got {m.kernel_size}) so that "
            "padding kernel//2 keeps the image size; use 3 or 5"
        )
    if m.strides is not None and len(m.strides) != len(m.channels):
        raise ConfigError(
            f"model.strides: needs one stride per conv layer ({len(m.channels)}), got {m.strides}"
        )
    # The preset names the default run folder: a stranger's config must not point it elsewhere.
    if cfg.preset is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", cfg.preset) or (
        cfg.preset is not None and ".." in cfg.preset
    ):
        raise ConfigError(f"preset: {cfg.preset!r} is not a preset name (letters, digits, '-', '_', '.')")
    if SOURCES.lookup(d.source).path and not d.path:
        raise ConfigError(f"data.path: the '{d.source}' source needs a path (--data-path PATH)")
    guard.check(cfg)  # last: the keys' own values are valid, now refuse those with no effect here


def _get(cfg: Config, dotted: str) -> Any:
    obj: Any = cfg
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


# --------------------------------------------------------------------------------------------
# Presets, files and overrides


def preset_names() -> list[str]:
    """Names of the presets shipped with vaekit."""
    files = resources.files("vaekit") / "presets"
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".toml"))


def preset_dict(name: str) -> dict[str, Any]:
    names = preset_names()
    if name not in names:
        raise ConfigError(f"preset '{name}' does not exist ({suggest(name, names)})")
    text = (resources.files("vaekit") / "presets" / f"{name}.toml").read_text()
    raw = tomllib.loads(text)
    raw.pop("description", None)
    return raw


def preset_description(name: str) -> str:
    text = (resources.files("vaekit") / "presets" / f"{name}.toml").read_text()
    return str(tomllib.loads(text).get("description", ""))


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML or YAML config file with safe parsers only."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    text = p.read_text(encoding="utf-8", errors="replace")
    try:
        if p.suffix == ".toml":
            raw = tomllib.loads(text)
        elif p.suffix in (".yaml", ".yml"):
            import yaml  # safe_load only: a config file must never construct objects

            raw = yaml.safe_load(text) or {}
        elif p.suffix == ".json":
            raw = json.loads(text)
        else:
            raise ConfigError(f"config file {p}: use .toml, .yaml/.yml or .json")
    except ConfigError:
        raise
    except Exception as err:  # parser errors carry line numbers; keep them on one line
        msg = " ".join(str(err).split())
        raise ConfigError(f"config file {p} cannot be parsed: {msg}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {p}: the top level must be a table of sections")
    return raw


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``over`` into a copy of ``base`` (tables merge, everything else replaces)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "options":
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_override(text: str) -> dict[str, Any]:
    """Turn ``model.beta=4`` into ``{"model": {"beta": 4}}``; the value is parsed as TOML."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected section.key=value, e.g. model.beta=4")
    dotted, value_text = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {value_text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = value_text.strip()  # a bare word such as conv or cosine
    parts = dotted.strip().split(".")
    out: dict[str, Any] = {}
    node = out
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def resolve(
    preset: str | None = None,
    file: str | Path | None = None,
    overrides: list[dict[str, Any]] | None = None,
) -> Config:
    """Defaults < preset < file < overrides, validated into a :class:`Config`."""
    raw: dict[str, Any] = {}
    if file is not None:
        from_file = read_config_file(file)
        preset = preset or from_file.pop("preset", None)
        from_file.pop("preset", None)
    else:
        from_file = {}
    if preset is not None:
        raw = merge(raw, preset_dict(preset))
        raw["preset"] = preset
    raw = merge(raw, from_file)
    for over in overrides or []:
        raw = merge(raw, over)
    return Config.from_dict(raw, where=str(file) if file else "config")


def load_json(path: str | Path) -> Config:
    """Read a saved ``config.json``."""
    p = Path(path)
    try:
        raw = json.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{p} is missing: is this a vaekit run folder?") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{p} is not valid JSON ({err.msg} at line {err.lineno})") from None
    return Config.from_dict(raw, where=str(p), saved=True)


__all__ = [
    "Config",
    "DataConfig",
    "ModelConfig",
    "TrainConfig",
    "load_json",
    "merge",
    "parse_override",
    "preset_names",
    "read_config_file",
    "resolve",
]
