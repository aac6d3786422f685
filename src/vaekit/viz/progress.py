"""Pictures written while and after training: progress snapshots every N epochs, and the final set.

Both run inside the trainer, so they fork and seed the RNG (the same prior draws every epoch, so
the snapshots show one set of codes getting sharper, and training's own random stream untouched).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..data import Data
from ..models import Model
from .catalog import Outcome, PlotContext, PlotOptions, make_plots
from .latent import has_standard_prior


def progress_pictures(model: Model, data: Data, out_dir: Path, epoch: int, seed: int = 0) -> list[Outcome]:
    """``out_dir/{samples,reconstructions[,manifold]}_epochNNN.png`` for the model as it is now.

    Samples are drawn only under a N(0, I) prior: other models (the plain autoencoder) fit their
    sampling density after training, so mid-training samples would show nothing meaningful.
    """
    names = ["reconstructions"]
    if has_standard_prior(model):
        names.insert(0, "samples")
    if model.latent_dim == 2:
        names.append("manifold")
    ctx = PlotContext(model, data)
    return make_plots(ctx, names, out_dir, PlotOptions(seed=seed), suffix=f"_epoch{epoch:03d}")


def final_pictures(model: Model, data: Data, metrics: list[dict[str, Any]], out_dir: Path,
                   seed: int = 0) -> list[Outcome]:
    """The end-of-training plots besides the run's samples.png and reconstructions.png:
    ``out_dir/curves.png``, and ``out_dir/manifold.png`` when the latent space is 2-D."""
    names = ["curves"] + (["manifold"] if model.latent_dim == 2 else [])
    return make_plots(PlotContext(model, data, metrics), names, out_dir, PlotOptions(seed=seed))
