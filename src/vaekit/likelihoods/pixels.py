"""Likelihoods of pixels in [0, 1]: Bernoulli on logits, Gaussian with a fixed or a learned variance.

Shapes as in :mod:`vaekit.likelihoods.base`: decoder outputs ``out`` (..., B, k*C, H, W) or
(..., B, k*D), data ``x`` (B, C, H, W) or (B, D); ``log_prob`` sums over the data dimensions.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from ..registry import LIKELIHOODS
from .base import LOG_2PI, Likelihood

if TYPE_CHECKING:
    from ..config import ModelConfig


@LIKELIHOODS.register("bernoulli")
class Bernoulli(Likelihood):
    """Bernoulli on logits: -log p(x|z) = BCE(sigmoid(l), x), computed stably from the logits.

    On continuous pixels in [0, 1] this is the classic tutorials' BCE loss (not a normalised
    likelihood); on binarized pixels it is an exact log-probability in nats.
    """

    def log_prob(self, out: Tensor, x: Tensor) -> Tensor:
        # log p = x*l - softplus(l); BCE-with-logits fuses this without forming sigmoid(l).
        bce = F.binary_cross_entropy_with_logits(out, x.expand_as(out), reduction="none")
        return -self._sum(bce)

    def mean(self, out: Tensor) -> Tensor:
        return torch.sigmoid(out)

    def sample(self, out: Tensor) -> Tensor:
        return torch.bernoulli(torch.sigmoid(out))

    def params(self, out: Tensor) -> dict[str, Tensor]:
        return {"logits": out}

    @property
    def kind(self) -> str:
        return "mass"


@LIKELIHOODS.register("gaussian")
class Gaussian(Likelihood):
    """N(x; f(z), sigma^2 I) with fixed sigma: -log p = ||x - f(z)||^2 / (2 sigma^2) + const."""

    reads = frozenset({"sigma"})

    def __init__(self, event_dims: int, sigma: float = 1.0) -> None:
        super().__init__(event_dims)
        self.log_sigma = math.log(sigma)

    @classmethod
    def from_config(cls, event_dims: int, cfg: ModelConfig) -> "Gaussian":
        return cls(event_dims, cfg.sigma)

    def log_prob(self, out: Tensor, x: Tensor) -> Tensor:
        sq = (x - out) ** 2
        return -self._sum(0.5 * sq * math.exp(-2 * self.log_sigma) + self.log_sigma + 0.5 * LOG_2PI)

    def mean(self, out: Tensor) -> Tensor:
        return out

    def sample(self, out: Tensor) -> Tensor:
        return out + math.exp(self.log_sigma) * torch.randn_like(out)

    def params(self, out: Tensor) -> dict[str, Tensor]:
        return {"mean": out}  # sigma is fixed: model.sigma in the config


@LIKELIHOODS.register("gaussian-learned")
class LearnedGaussian(Likelihood):
    """N(x; mu(z), sigma(z)^2) per pixel; sigma = min_sigma + softplus(raw).

    The floor keeps the density bounded on pixels that are exactly constant (MNIST's background),
    where an unconstrained variance would shrink to zero and the likelihood diverge.
    """

    channels = 2
    reads = frozenset({"min_sigma"})

    def __init__(self, event_dims: int, min_sigma: float = 0.01) -> None:
        super().__init__(event_dims)
        self.min_sigma = min_sigma

    @classmethod
    def from_config(cls, event_dims: int, cfg: ModelConfig) -> "LearnedGaussian":
        return cls(event_dims, cfg.min_sigma)

    def _params(self, out: Tensor) -> tuple[Tensor, Tensor]:
        mu, raw = self._split(out)
        return mu, self.min_sigma + F.softplus(raw)

    def log_prob(self, out: Tensor, x: Tensor) -> Tensor:
        mu, sigma = self._params(out)
        return -self._sum(0.5 * ((x - mu) / sigma) ** 2 + torch.log(sigma) + 0.5 * LOG_2PI)

    def mean(self, out: Tensor) -> Tensor:
        return self._params(out)[0]

    def sample(self, out: Tensor) -> Tensor:
        mu, sigma = self._params(out)
        return mu + sigma * torch.randn_like(mu)

    def params(self, out: Tensor) -> dict[str, Tensor]:
        mu, sigma = self._params(out)
        return {"mean": mu, "sigma": sigma}


__all__ = ["Bernoulli", "Gaussian", "LearnedGaussian"]
