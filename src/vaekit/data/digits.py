"""scikit-learn's 8x8 digits: a small image source that needs no download."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .sources import RawData, register_source

if TYPE_CHECKING:
    from ..config import DataConfig


@register_source("digits", test_split=True)
def load_digits(cfg: DataConfig) -> RawData:
    """scikit-learn's 8x8 digits (1,797 images, 0..16 grey levels), split 1,497 / 300 by ``data.seed``."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8) in [0, 1]
    y = bunch.target.astype(np.int64)
    perm = np.random.default_rng(cfg.seed).permutation(len(x))
    test, train = perm[:300], perm[300:]
    return RawData(x[train], y[train], x[test], y[test], [str(i) for i in range(10)])
