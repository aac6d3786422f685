"""The data-source registry: a name maps to a function ``DataConfig -> RawData``.

Sources return raw NumPy arrays; :func:`vaekit.data.open_data` turns them into tensors, splits,
subsets and binarizes them the same way for every source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import ConfigError


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


SOURCES: dict[str, Callable[..., RawData]] = {}


def register_source(name: str) -> Callable[[Callable[..., RawData]], Callable[..., RawData]]:
    def deco(fn: Callable[..., RawData]) -> Callable[..., RawData]:
        SOURCES[name] = fn
        return fn

    return deco


def get_source(name: str) -> Callable[..., RawData]:
    if name not in SOURCES:
        raise ConfigError(f"data.source: unknown source '{name}' (known: {', '.join(sorted(SOURCES))})")
    return SOURCES[name]


@register_source("digits")
def load_digits(cfg) -> RawData:  # noqa: ANN001
    """scikit-learn's 8x8 digits (1,797 images, 0..16 grey levels), split 1,497 / 300 by seed."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8) in [0, 1]
    y = bunch.target.astype(np.int64)
    perm = np.random.default_rng(cfg.seed).permutation(len(x))
    test, train = perm[:300], perm[300:]
    return RawData(x[train], y[train], x[test], y[test], [str(i) for i in range(10)])
