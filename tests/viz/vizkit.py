"""Small models and data sets shared by the viz tests (a helper module, not a conftest: the root
conftest is imported as ``conftest`` and a second one would shadow it)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from vaekit.config import DataConfig, ModelConfig
from vaekit.data import Data, open_data
from vaekit.models import Model, build


@functools.lru_cache(maxsize=None)
def digits() -> Data:
    """scikit-learn's 8x8 digits: 1,497 train / 300 test, labelled, grey."""
    return open_data(DataConfig(source="digits"))


def rgb_npz(folder: Path, n_train: int = 240, n_test: int = 80) -> Path:
    """16x16 RGB images: a coloured square on a dark background, its colour and place set by the label."""
    rng = np.random.default_rng(0)
    palette = np.array([[230, 40, 40], [40, 200, 60], [50, 80, 240]], dtype=np.uint8)

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 3, n)
        x = rng.integers(0, 30, (n, 16, 16, 3)).astype(np.uint8)
        for i, label in enumerate(y):
            r, c = rng.integers(0, 9, 2)
            x[i, r : r + 7, c : c + 7] = palette[label]
        return x, y

    (xt, yt), (xs, ys) = make(n_train), make(n_test)
    path = folder / "rgb.npz"
    np.savez(path, x_train=xt, y_train=yt, x_test=xs, y_test=ys)
    return path


def model_for(data: Data, name: str = "vae", latent_dim: int = 2, arch: str = "mlp", seed: int = 0) -> Model:
    """An untrained (seeded) model for ``data``: its decoder is a fixed non-trivial function of z."""
    torch.manual_seed(seed)
    cfg = ModelConfig(name=name, latent_dim=latent_dim, arch=arch, hidden=[32], channels=[4, 8])
    model = build(cfg, data.shape).eval()
    model.after_fit(data.train)
    return model
