"""What the data imply for the run config, settled before the model is built.

The flow is one way: config -> data -> model -> trainer -> run folder. Most data imply nothing the
config does not already say; a table (``kind = "table"`` in its source's registration) implies the
model's input layout. :func:`resolve_for_data` is the one step that writes such facts into the
config, before a model exists; nothing later changes a config or a model's config, so the model,
``config.json`` and ``vaekit score`` all read the same resolved config.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..registry import LIKELIHOODS, SOURCES

if TYPE_CHECKING:
    from ..config import Config
    from .core import Data


def resolve_for_data(cfg: Config, data: Data) -> Config:
    """``cfg`` with what ``data`` implies filled in (a new config; ``cfg`` is not changed).

    A table fills in ``model.columns`` (its column layout: names, types, mean/std, levels) and,
    unless the config already names a table likelihood, ``model.likelihood`` (its source's, e.g.
    ``mixed`` for csv). Images change nothing. Resolving a resolved config returns it unchanged, so
    a resumed run and a loaded one resolve to the config they were saved with.
    """
    m = cfg.model
    if m.columns and m.columns != data.columns:
        raise ConfigError("model.columns: is written by training from the table's layout and differs from "
                          f"{cfg.data.path}'s; remove it (or the table changed since this run started)")
    if data.columns is None:
        return cfg
    likelihood = m.likelihood if LIKELIHOODS.lookup(m.likelihood).table else SOURCES.lookup(cfg.data.source).likelihood
    return dataclasses.replace(cfg, model=dataclasses.replace(m, columns=data.columns, likelihood=likelihood))


__all__ = ["resolve_for_data"]
