"""Building typed dataclasses from plain data (TOML, YAML, JSON), with errors that name the key.

Unknown keys name the nearest valid one; values are checked against the annotations (``Literal``
choices, unions, lists, finite numbers) and converted only where lossless (int -> float).
``Annotated[T, check, ...]`` checks a value of type T further with each ``check(value, where)``,
which raises a :class:`ConfigError`: a name looked up in a registry (``REGISTRY.check``,
:mod:`vaekit.registry`), whose entries are not known when the dataclass is written.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from .errors import ConfigError


def suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    return f"did you mean '{close[0]}'?" if close else f"valid keys: {', '.join(valid)}"


def build_dataclass(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a table of keys, got {type(raw).__name__}")
    hints = get_type_hints(cls, include_extras=True)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in raw.items():
        if key not in hints:
            raise ConfigError(f"{where}: unknown key '{key}' ({suggest(str(key), names)})")
        kwargs[key] = coerce(value, hints[key], f"{where}.{key}")
    return cls(**kwargs)


def coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert lossless cases (int -> float)."""
    if dataclasses.is_dataclass(tp):
        return build_dataclass(tp, value, where)
    origin = get_origin(tp)
    if origin is Annotated:
        base, *checks = get_args(tp)
        value = coerce(value, base, where)
        for check in checks:
            check(value, where)
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} has the wrong type")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            hint = suggest(str(value), [str(c) for c in choices])
            raise ConfigError(f"{where}: {value!r} is not one of {list(choices)} ({hint})")
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item,) = get_args(tp)
        return [coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected a whole number, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"{where}: expected a finite number, got {value!r}")
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    raise ConfigError(f"{where}: unsupported type {tp}")  # pragma: no cover - a bug, not input
