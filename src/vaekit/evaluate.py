"""Evaluation: the negative ELBO and its parts over a whole split, batched, reproducible."""

from __future__ import annotations

import torch

from .data import Split
from .models import Model


@torch.no_grad()
def elbo(
    model: Model,
    split: Split,
    *,
    samples: int = 1,
    batch_size: int = 2048,
    seed: int = 0,
) -> dict[str, float]:
    """Per-datapoint averages of every term (``loss``, ``recon``, ``kl``, extras) over ``split``.

    z is sampled, as the reference tutorials do when they report a test loss. The RNG is forked
    and seeded, so evaluation gives the same numbers every time and never disturbs training.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    totals: dict[str, torch.Tensor] = {}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for start in range(0, len(split), batch_size):
            x = split.x[start : start + batch_size].to(device, non_blocking=True)
            y = None if split.y is None else split.y[start : start + batch_size].to(device)
            terms = model(x, y, samples=samples, reduce=False)
            for name, value in terms.items().items():
                totals[name] = totals.get(name, 0) + value.double().sum()
    model.train(was_training)
    return {name: float(v) / len(split) for name, v in totals.items()}
