"""The data-source registry: ``data.source`` names a loader ``DataConfig -> RawData`` and its traits.

Sources return raw NumPy arrays; :func:`vaekit.data.open_data` turns them into tensors, splits,
subsets and binarizes them the same way for every source. A new source is a function registered
with :func:`register_source`, declaring what the config guard needs to know about it (``kind``,
``path``, ``test_split``) and, for tables, the likelihood its rows imply; :mod:`vaekit.config`
needs no edit (the registry pattern of :mod:`vaekit.registry`, shared with models and likelihoods).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Literal

import numpy as np

from ..registry import SOURCES

if TYPE_CHECKING:
    from ..config import DataConfig


@dataclass
class RawData:
    """Arrays as a source delivers them: ``x`` is (N, C, H, W) or (N, D), uint8 or float in [0, 1]."""

    x_train: np.ndarray
    y_train: np.ndarray | None = None
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    classes: list[str] | None = None
    # tables (vaekit.data.tabular): the column layout; x is then standardised, not in [0, 1]
    columns: list[dict] | None = None
    notes: list[str] = field(default_factory=list)  # log lines of the source (ignored files, ...)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why) of files left out


@dataclass(frozen=True)
class Source:
    """A registered data source: its loader and its declared traits.

    ``kind``: "images" (pixels in [0, 1]; the image keys binarize, image_size, grayscale apply) or
    "table" (standardised rows with a column layout); ``path``: reads ``data.path``;
    ``test_split``: can deliver a test split (``data.split``, ``data.test_limit`` apply);
    ``likelihood``: for a table, the likelihood its rows are modelled with unless the config
    names another table likelihood (:func:`vaekit.data.resolve_for_data`).
    """

    name: str
    load: Callable[[DataConfig], RawData]
    kind: Literal["images", "table"] = "images"
    path: bool = False
    test_split: bool = False
    likelihood: str | None = None

    def __call__(self, cfg: DataConfig) -> RawData:
        return self.load(cfg)


Loader = Callable[["DataConfig"], RawData]


def register_source(name: str, *, kind: Literal["images", "table"] = "images", path: bool = False,
                    test_split: bool = False, likelihood: str | None = None) -> Callable[[Loader], Loader]:
    """Decorator: make the loader available as ``data.source = name``, with its traits (see :class:`Source`)."""
    if (kind == "table") != (likelihood is not None):
        raise ValueError(f"source '{name}': a table source names the likelihood of its rows, an image source none")

    def deco(fn: Loader) -> Loader:
        SOURCES.register(name)(Source(name, fn, kind, path, test_split, likelihood))
        return fn

    return deco


def get_source(name: str) -> Source:
    """The source registered as ``name``; a :class:`~vaekit.errors.ConfigError` naming the nearest if none is."""
    return SOURCES.lookup(name)


__all__ = ["SOURCES", "RawData", "Source", "get_source", "register_source"]
