"""Registries: a name in the config maps to what it builds. One pattern for all three kinds.

======================  ====================  =========================================
config key              registry              entries (registered with)
======================  ====================  =========================================
``model.name``          :data:`MODELS`        Model classes (``vaekit.models.register``)
``model.likelihood``    :data:`LIKELIHOODS`   Likelihood classes (``vaekit.likelihoods.register_likelihood``)
``data.source``         :data:`SOURCES`       loaders (``vaekit.data.register_source``)
======================  ====================  =========================================

A registry is a ``dict`` (name -> entry, in registration order) that knows where its built-in
entries live (``home``, imported on first lookup), so the config checks a name against every
entry vaekit ships plus whatever user code registered before; an unknown name is one line naming
the nearest valid one. Entries declare their traits as attributes (a model's ``reads``, a
likelihood's ``table``, a source's ``kind``); the config guard reads them, so registering a new
entry never needs an edit of :mod:`vaekit.config`.

This module imports nothing of vaekit but its errors: the config, the data, the models and the
likelihoods all import it, and it imports them back only lazily, by name (``home``).
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any, Callable, TypeVar

from .errors import ConfigError

T = TypeVar("T")
E = TypeVar("E")


class Registry(dict[str, T]):
    """Entries by name. ``what`` names the kind in messages ("model"), ``key`` the config key that
    selects an entry ("model.name"), ``home`` the module whose import registers the built-ins."""

    def __init__(self, what: str, key: str, home: str) -> None:
        super().__init__()
        self.what, self.key, self.home = what, key, home

    def register(self, name: str) -> Callable[[E], E]:
        """Decorator: make ``entry`` available as ``name``; a class entry also gets ``entry.name``."""

        def deco(entry: E) -> E:
            if name in self:
                raise ValueError(f"{self.what} '{name}' is registered twice")
            if isinstance(entry, type):
                entry.name = name  # type: ignore[attr-defined]
            self[name] = entry  # type: ignore[assignment]
            return entry

        return deco

    def _load(self) -> None:
        importlib.import_module(self.home)  # registers the built-ins (a no-op once imported)

    def names(self, test: Callable[[T], bool] | None = None) -> list[str]:
        """Registered names in registration order; with ``test``, those whose entry passes it."""
        self._load()
        return [n for n, e in self.items() if test is None or test(e)]

    def lookup(self, name: str) -> T:
        """The entry registered as ``name``; a :class:`ConfigError` naming the nearest one if none is."""
        self.check(name, self.key)
        return self[name]

    def check(self, name: Any, where: str) -> None:
        """Refuse a name that is not registered (``where``: the key it was read from, for the message).

        The signature of a check in ``Annotated[str, REGISTRY.check]`` (:mod:`vaekit.typed`)."""
        self._load()
        if name in self:
            return
        close = difflib.get_close_matches(str(name), list(self), n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(self)}"
        raise ConfigError(f"{where}: unknown {self.what} '{name}' ({hint})")


MODELS: Registry[Any] = Registry("model", "model.name", "vaekit.models")
LIKELIHOODS: Registry[Any] = Registry("likelihood", "model.likelihood", "vaekit.likelihoods")
SOURCES: Registry[Any] = Registry("source", "data.source", "vaekit.data")

__all__ = ["LIKELIHOODS", "MODELS", "SOURCES", "Registry"]
