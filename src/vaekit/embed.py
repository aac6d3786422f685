"""Codes of a run's data: ``vaekit embed RUN`` writes them to an ``.npz`` for use outside vaekit.

For a model with a posterior q(z|x) the codes are its means ``mu`` (N, D) and marginal
log-variances ``logvar`` (N, D); for an autoencoder its deterministic codes ``mu`` (N, D); labels
``y`` (N,) and class names ``classes`` when the data have them. No pickles: ``np.load`` with
``allow_pickle=False`` reads the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from .data import Split


@torch.no_grad()
def batched(fn: Callable[[Tensor], Tensor], x: Tensor, batch_size: int = 2048) -> Tensor:
    """fn applied to x in batches on the CPU, concatenated."""
    return torch.cat([fn(x[i : i + batch_size]).cpu() for i in range(0, len(x), batch_size)])


@torch.no_grad()
def embeddings(model: Any, split: Split, batch_size: int = 2048) -> dict[str, np.ndarray]:
    """Codes of a split: ``mu`` (N, D), ``logvar`` (N, D) for models with a posterior q(z|x), ``y`` (N,)."""
    out: dict[str, np.ndarray] = {}
    if model.has_posterior:
        qs = [model.posterior(split.x[i : i + batch_size]) for i in range(0, len(split), batch_size)]
        out["mu"] = torch.cat([q.mu for q in qs]).cpu().numpy()
        # the marginal log-variances (for a full covariance L L^T, of its diagonal)
        out["logvar"] = torch.cat([q.marginal_var.log() for q in qs]).cpu().numpy()
    else:
        out["mu"] = batched(model.encode, split.x, batch_size).numpy()
    if split.y is not None:
        out["y"] = split.y.cpu().numpy()
    return out


def save_embeddings(run_dir: str | Path, path: str | Path, split: str | None = None) -> dict[str, tuple[int, ...]]:
    """Write the codes of a run's ``split`` (default: test, else val, else train) to an ``.npz`` (no
    pickles), with the class names when the labels have them; return the array shapes."""
    from .data import open_data
    from .run import load_run

    run = load_run(run_dir)
    data = open_data(run.config.data)
    _, chosen = data.pick_split(split)
    arrays = embeddings(run.model, chosen)
    if data.classes is not None and "y" in arrays:  # label i is classes[i]: y maps back to names
        arrays["classes"] = np.asarray(data.classes, dtype=str)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return {k: tuple(v.shape) for k, v in arrays.items()}


__all__ = ["batched", "embeddings", "save_embeddings"]
