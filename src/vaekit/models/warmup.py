"""Cures for posterior collapse that reshape the KL term: KL warm-up and free bits.

* ``warmup-vae`` overrides ``kl_weight(step)``. ``linear``: the deterministic warm-up of Bowman et
  al. (2016) and Sønderby et al. (2016), beta * min(1, step / steps). ``cyclical``: Fu et al. (2019,
  "Cyclical annealing schedule", sec. 3, linear f): with tau = (step mod steps) / steps, the weight is
  beta * min(1, tau / ratio), repeated ``cycles`` times (0 = forever) and beta afterwards.
  ``step`` is the trainer's global optimiser step, counted from 0; ``steps`` is the ramp length
  (linear) or the cycle length (cyclical), in optimiser steps. In eval mode the weight is beta
  whatever the step, so held-out losses are those of the objective the schedule ends at.
* ``freebits-vae`` overrides ``kl_penalty``: the free-bits objective of Kingma et al. (2016,
  "Improved variational inference with inverse autoregressive flow", appendix C.8):
  sum_g max(lambda, E_x[KL_g]) over groups g of latent dimensions (``groups = 0``: one group per
  dimension), the expectation being the batch mean. A group whose batch-mean KL is below the floor
  contributes the constant lambda, so it gets no gradient; the reported ``kl`` stays the true KL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from ..config import ModelConfig
from ..distributed import global_batch_mean
from ..distributions import LOG_2PI, DiagonalGaussian
from ..errors import ConfigError
from ..guard import key, when_option
from .base import register
from .vae import VAE


@dataclass
class WarmupOptions:
    """The KL-weight schedule, in optimiser steps (see the module docstring)."""

    schedule: Literal["linear", "cyclical"] = "linear"
    steps: int = 10_000  # linear: steps to reach beta; cyclical: the length of one cycle
    ratio: float = key(0.5, when_option("schedule", "cyclical"))  # fraction R of each cycle spent rising
    cycles: int = key(4, when_option("schedule", "cyclical"))  # number of cycles M, then beta (0 = forever)


def linear_ramp(step: int, steps: int) -> float:
    """The linear warm-up's value in [0, 1] at optimiser step ``step``: step / steps, then 1 (no
    warm-up when steps <= 0). Shared by ``warmup-vae`` and the hierarchical VAE (LVAE sec. 2.3)."""
    return min(1.0, step / steps) if steps > 0 else 1.0


@register("warmup-vae")
class WarmupVAE(VAE):
    """A VAE whose KL weight is annealed from 0 to ``model.beta`` (linearly or cyclically)."""

    Options = WarmupOptions
    options: WarmupOptions

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...]) -> None:
        super().__init__(cfg, shape)
        o = self.options
        if o.steps < 1 or not 0 < o.ratio <= 1 or o.cycles < 0:
            raise ConfigError(f"model.options: warmup-vae needs steps >= 1, 0 < ratio <= 1, cycles >= 0 (got {o})")

    def kl_weight(self, step: int) -> float:
        """beta times the schedule's value in [0, 1] at optimiser step ``step``."""
        o, beta = self.options, self.cfg.beta
        if not self.training:  # evaluation: the end point of the schedule
            return beta
        if o.schedule == "linear":
            return beta * linear_ramp(step, o.steps)
        if o.cycles and step >= o.cycles * o.steps:
            return beta
        tau = (step % o.steps) / o.steps
        return beta * min(1.0, tau / o.ratio)


@dataclass
class FreeBitsOptions:
    """``floor``: lambda in nats per group; ``groups``: 0 = per dimension, else G equal groups."""

    floor: float = 0.25
    groups: int = 0


@register("freebits-vae")
class FreeBitsVAE(VAE):
    """A VAE trained with a per-group KL floor (free bits); needs the N(0, I) prior."""

    Options = FreeBitsOptions
    options: FreeBitsOptions

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...]) -> None:
        super().__init__(cfg, shape)
        o, d = self.options, cfg.latent_dim
        if o.floor < 0 or o.groups < 0 or (o.groups and d % o.groups):
            raise ConfigError(
                f"model.options: freebits-vae needs floor >= 0 and groups = 0 or a divisor of latent_dim={d} (got {o})"
            )

    def kl_per_group(self, q: DiagonalGaussian, z: Tensor) -> Tensor:
        """KL per example and group (B, G): analytic (estimator B) or Monte Carlo over z (L, B, D)."""
        assert self.prior.standard
        if self.cfg.kl == "analytic":
            per_dim = q.kl_standard_normal_per_dim()  # (B, D)
        else:  # log q(z_d|x) - log N(z_d; 0, 1), averaged over the L samples
            log_q = -0.5 * (LOG_2PI + q.logvar + (z - q.mu) ** 2 * torch.exp(-q.logvar))
            per_dim = (log_q + 0.5 * (LOG_2PI + z**2)).mean(0)  # (B, D)
        g = self.options.groups or per_dim.shape[-1]
        return per_dim.view(per_dim.shape[0], g, -1).sum(-1)  # (B, G)

    def kl_penalty(self, kl: Tensor, q: DiagonalGaussian, z: Tensor, step: int) -> Tensor:
        """Per example (B,): sum_g KL_g where the batch-mean KL_g is above the floor, lambda elsewhere.

        Its batch mean is exactly sum_g max(lambda, mean_i KL_ig) (Kingma et al. 2016, appendix C.8).
        """
        per_group = self.kl_per_group(q, z)  # (B, G)
        batch_kl = per_group.mean(0).detach()  # (G,)
        if self.training:  # under DDP: the global batch's mean, as one process would see it
            batch_kl = global_batch_mean(batch_kl)
        above = batch_kl > self.options.floor  # (G,)
        floored = torch.where(above, per_group, torch.full_like(per_group, self.options.floor))
        return self.kl_weight(step) * floored.sum(-1)
