"""Capacity-controlled beta-VAE (Burgess et al. 2018, "Understanding disentangling in beta-VAE",
sec. 5): loss = recon + gamma * |KL(q(z|x) || p(z)) - C|, with the target capacity C raised linearly
from 0 to ``c_max`` nats over ``steps`` optimiser steps (the trainer's global step, counted from 0).
In eval mode C = ``c_max`` whatever the step: held-out losses are those of the final objective.

The penalty is applied per example, as the paper writes it; implementations that apply it to the
batch-mean KL (|mean_i KL_i - C|) let individual examples spread around C, this one does not.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from ..config import ModelConfig
from ..distributions import DiagonalGaussian
from ..errors import ConfigError
from .base import register
from .vae import VAE


@dataclass
class CapacityOptions:
    """``gamma``: weight of |KL - C|; C goes from 0 to ``c_max`` nats in ``steps`` optimiser steps."""

    gamma: float = 100.0
    c_max: float = 25.0
    steps: int = 10_000


@register("capacity-vae")
class CapacityVAE(VAE):
    """A VAE whose KL is held near a target capacity C(step) that grows during training."""

    Options = CapacityOptions
    options: CapacityOptions
    reads = frozenset({"kl", "samples"})  # gamma * |KL - C| replaces beta * KL
    hints = {"beta": "its KL weight is model.options.gamma"}

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...]) -> None:
        super().__init__(cfg, shape)
        o = self.options
        if o.gamma < 0 or o.c_max < 0 or o.steps < 1:
            raise ConfigError(f"model.options: capacity-vae needs gamma >= 0, c_max >= 0, steps >= 1 (got {o})")

    def capacity(self, step: int) -> float:
        """C(step) = c_max * min(1, step / steps), in nats (``c_max`` in eval mode)."""
        if not self.training:
            return self.options.c_max
        return self.options.c_max * min(1.0, step / self.options.steps)

    def kl_penalty(self, kl: Tensor, q: DiagonalGaussian, z: Tensor, step: int) -> Tensor:
        """gamma * |KL - C(step)| per example (B,)."""
        return self.options.gamma * (kl - self.capacity(step)).abs()
