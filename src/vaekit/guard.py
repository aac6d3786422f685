"""Where each config key has an effect, and the check that refuses a key set where it has none.

Every field of :class:`~vaekit.config.DataConfig`, :class:`~vaekit.config.ModelConfig`,
:class:`~vaekit.config.TrainConfig` and of every registered model's ``Options`` is declared with
:func:`key`, which records an :class:`Applies`: a predicate on the whole config and the words that
say where the key applies. :func:`check` (run by ``config.validate``) refuses a key whose value
differs from its default where its predicate is false, in one line naming the key, where it does
apply and what the config has instead. A run therefore never records a value it did not use.

The family-dependent model keys (``beta``, ``kl``, ``samples``) are read through the registered
class: a model family declares ``reads = {...}`` (and may say in ``hints`` what to use instead).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from .errors import ConfigError

Test = Callable[[Any, Any], bool]  # (config, the model family's built options or None) -> applies?


@dataclass(frozen=True)
class Applies:
    """A key applies where ``test(cfg, options)`` holds; ``where`` says so in words."""

    test: Test
    where: str | Callable[[], str]  # a callable when the answer depends on what is registered
    # what the config has instead, for the message ("here data.source = digits")
    here: Callable[[Any, Any], str] = lambda cfg, opts: ""


def words(a: Applies) -> str:
    """Where ``a`` applies, in words."""
    return a.where() if callable(a.where) else a.where


EVERYWHERE = Applies(lambda cfg, opts: True, "everywhere")


def get(cfg: Any, dotted: str) -> Any:
    obj = cfg
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _show(v: Any) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


def when(dotted: str, *values: Any) -> Applies:
    """Applies when config key ``dotted`` (e.g. ``data.source``) has one of ``values``."""
    shown = " or ".join(_show(v) for v in values)
    return Applies(lambda cfg, opts: get(cfg, dotted) in values, f"when {dotted} = {shown}",
                   lambda cfg, opts: f"{dotted} = {_show(get(cfg, dotted))}")


def when_in(dotted: str, values: Callable[[], list[str]]) -> Applies:
    """Applies when config key ``dotted`` has one of the names ``values()`` returns, asked when the
    config is checked: registered entries with a trait (``vaekit.registry``), so that an entry
    registered after this module was imported counts too."""
    return Applies(lambda cfg, opts: get(cfg, dotted) in values(), lambda: f"when {dotted} = {' or '.join(values())}",
                   lambda cfg, opts: f"{dotted} = {_show(get(cfg, dotted))}")


def when_option(name: str, *values: Any) -> Applies:
    """For a model option: applies when option ``name`` has one of ``values``."""
    shown = " or ".join(_show(v) for v in values)
    return Applies(lambda cfg, opts: getattr(opts, name) in values, f"when model.options.{name} = {shown}",
                   lambda cfg, opts: f"model.options.{name} = {_show(getattr(opts, name))}")


def any_of(*conds: Applies) -> Applies:
    return Applies(lambda cfg, opts: any(c.test(cfg, opts) for c in conds),
                   lambda: " or ".join(map(words, conds)),
                   lambda cfg, opts: ", ".join(dict.fromkeys(h for c in conds if (h := c.here(cfg, opts)))))


def all_of(*conds: Applies) -> Applies:
    def here(cfg: Any, opts: Any) -> str:
        return ", ".join(c.here(cfg, opts) for c in conds if not c.test(cfg, opts))

    return Applies(lambda cfg, opts: all(c.test(cfg, opts) for c in conds), lambda: " and ".join(map(words, conds)),
                   here)


def model_reads(name: str) -> Applies:
    """A family-dependent model key: applies to the registered families whose ``reads`` has it."""

    def test(cfg: Any, opts: Any) -> bool:
        cls = _family(cfg)
        return cls is None or name in cls.reads

    def where() -> str:  # computed when the message is written: models register on import
        from .registry import MODELS

        return "to the models " + ", ".join(sorted(MODELS.names(lambda c: name in c.reads)))

    def here(cfg: Any, opts: Any) -> str:
        cls = _family(cfg)
        hint = cls.hints.get(name) if cls is not None else None
        return f"model.name = {cfg.model.name}" + (f": {hint}" if hint else "")

    return Applies(test, where, here)


def key(default: Any = dataclasses.MISSING, applies: Applies = EVERYWHERE, *,
        factory: Callable[[], Any] | None = None) -> Any:
    """A dataclass field that records where it applies (``factory`` for mutable defaults)."""
    meta = {"applies": applies}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def default_of(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default  # type: ignore[misc]


def applies_of(f: dataclasses.Field) -> Applies | None:
    return f.metadata.get("applies")


def _family(cfg: Any) -> Any:
    from .registry import MODELS

    return MODELS.get(cfg.model.name) if cfg.model.name in MODELS.names() else None


def _refuse(name: str, value: Any, a: Applies, cfg: Any, opts: Any) -> None:
    here = a.here(cfg, opts)
    keys = [part.split(" = ")[0] for part in here.split(":")[0].split(", ") if " = " in part]
    raise ConfigError(f"{name}={_show(value)} has no effect here: it applies only {words(a)}"
                      + (f" (here {here})" if here else "") + "; remove it"
                      + (f" or change {' / '.join(keys)}" if keys else ""))


def check(cfg: Any) -> None:
    """Refuse every key (config sections and model options) set away from its default where it
    has no effect. Unknown model names are left to ``models.build``, which names them."""
    from .typed import build_dataclass

    cls = _family(cfg)
    opts = None
    if cls is not None:
        opts = build_dataclass(cls.Options, cfg.model.options, "model.options")
    for section in ("data", "model", "train"):
        obj = getattr(cfg, section)
        for f in dataclasses.fields(obj):
            a = applies_of(f)
            value = getattr(obj, f.name)
            if a is not None and value != default_of(f) and not a.test(cfg, opts):
                _refuse(f"{section}.{f.name}", value, a, cfg, opts)
    if opts is not None:
        for f in dataclasses.fields(opts):
            a = applies_of(f)
            value = getattr(opts, f.name)
            if a is not None and value != default_of(f) and not a.test(cfg, opts):
                _refuse(f"model.options.{f.name}", value, a, cfg, opts)


__all__ = ["EVERYWHERE", "Applies", "all_of", "any_of", "check", "key", "model_reads", "when", "when_in", "when_option"]
