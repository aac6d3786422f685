"""What plots are drawn from (a model, its data, a run's metrics) and the knobs they take."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from torch import Tensor

from ..data import Data, Split
from ..models import Model
from . import latent as L


@dataclass
class PlotOptions:
    """Knobs of ``vaekit plot``; the defaults make every plot sensible for MNIST-sized data."""

    temperature: float = 1.0  # samples: scale of the prior draws
    n: int = 64  # samples: how many
    steps: int | None = None  # manifold: tiles per axis (default 20); interpolation/traversal: steps (10)
    range: float = 2.0  # manifold/traversal span [-range, range] (prior scale, or code std for AEs)
    dims: tuple[int, int] | None = None  # manifold plane: two latent dims; None = z itself or PCA
    traverse: list[int] | None = None  # traversal: which dims (default: up to 10 most informative)
    method: Literal["pca", "tsne"] = "pca"  # scatter for d > 2
    pair: tuple[int, int] = (0, 1)  # interpolation: indices of the two images in the split
    index: int = 0  # traversal: the image whose code is held fixed
    max_points: int = 5000  # scatter/histogram: at most this many examples (t-SNE: 2000)
    seed: int = 0


@dataclass
class PlotContext:
    """What plots are drawn from: a model in eval mode, its data, and the run's metrics rows."""

    model: Model
    data: Data
    metrics: list[dict[str, Any]] = field(default_factory=list)
    _codes: Tensor | None = None

    @property
    def split(self) -> tuple[str, Split]:
        """The test split when there is one, else validation, else training data."""
        return self.data.pick_split()

    def codes(self, limit: int) -> Tensor:
        """Codes of the first ``limit`` examples of :attr:`split` (cached)."""
        if self._codes is None or len(self._codes) < min(limit, len(self.split[1])):
            self._codes = L.encode_all(self.model, self.split[1].x[:limit])
        return self._codes[:limit]


class Skip(Exception):
    """This plot does not apply to this model or data; the message says why."""


def open_context(run_dir: str | Path, device: str = "cpu") -> PlotContext:
    """Load a run folder's model, metrics and data (as its config describes them) for plotting."""
    from ..data.fingerprint import open_run_data  # warns if the data changed since training
    from ..run import load_run

    run = load_run(run_dir, device)
    return PlotContext(run.model, open_run_data(run), run.metrics)


__all__ = ["PlotContext", "PlotOptions", "Skip", "open_context"]
