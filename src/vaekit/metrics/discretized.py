"""The 8-bit discretized Gaussian likelihood (Salimans et al. 2017, PixelCNN++, sec. 2.1).

A Gaussian decoder gives a density over continuous pixels; images are 8-bit. Integrating the
Gaussian over each pixel's bin gives a probability mass, so -log p(x) becomes an NLL in nats
comparable across models, and bits/dim = nats / (D ln 2).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import Tensor, nn

from ..likelihoods import Gaussian, LearnedGaussian, Likelihood
from ..errors import VaekitError




def log_discretized_gaussian(x: Tensor, mu: Tensor, sigma: Tensor, bins: int = 256) -> Tensor:
    """log P(pixel bin of x) under N(mu, sigma^2), elementwise.

    Pixels are stored as j / (bins - 1), j = 0..bins-1 (uint8 / 255); the bin of j is
    [x - h, x + h] with h = 1 / (2 (bins - 1)) (PixelCNN++'s +-1/255 on its [-1, 1] scale), and the
    edge bins extend to -inf (j = 0) and +inf (j = bins - 1), so the masses sum to exactly 1.
    """
    h = 0.5 / (bins - 1)
    lo, hi = (x - h - mu) / sigma, (x + h - mu) / sigma  # standardised bin edges
    lo = torch.where(x < h, torch.full_like(lo, -math.inf), lo)  # first bin: (-inf, x + h]
    hi = torch.where(x > 1 - h, torch.full_like(hi, math.inf), hi)  # last bin: [x - h, +inf)
    # P = Phi(hi) - Phi(lo). log Phi is accurate only in the lower tail, so for bins right of the
    # mean use the mirror image Phi(-lo) - Phi(-hi) (an edge bin at -inf is never mirrored).
    flip = (lo + hi) > 0
    a, b = torch.where(flip, -hi, lo), torch.where(flip, -lo, hi)
    la, lb = torch.special.log_ndtr(a), torch.special.log_ndtr(b)
    # log(Phi(b) - Phi(a)) = log Phi(b) + log(1 - exp(log Phi(a) - log Phi(b)))
    return lb + torch.log(-torch.expm1((la - lb).clamp_max(-1e-30)))


class DiscretizedGaussian(Likelihood):
    """Wraps a Gaussian likelihood: log p(x|z) = sum over pixels of log P(8-bit bin of x | z)."""

    def __init__(self, base: Likelihood, bins: int = 256) -> None:
        super().__init__(base.event_dims)
        self.base, self.bins, self.channels = base, bins, base.channels

    def params(self, out: Tensor) -> tuple[Tensor, Tensor]:
        if isinstance(self.base, LearnedGaussian):
            return self.base._params(out)
        assert isinstance(self.base, Gaussian)
        return out, torch.full_like(out, math.exp(self.base.log_sigma))

    def log_prob(self, out: Tensor, x: Tensor) -> Tensor:
        mu, sigma = self.params(out)
        return self._sum(log_discretized_gaussian(x.expand_as(mu), mu, sigma, self.bins))

    def mean(self, out: Tensor) -> Tensor:
        return self.base.mean(out)

    @property
    def kind(self) -> str:
        return "mass"


@contextmanager
def discretized(model: nn.Module, bins: int = 256) -> Iterator[None]:
    """Temporarily replace a Gaussian ``model.likelihood`` by its 8-bit discretized version."""
    base = model.likelihood
    if not isinstance(base, (Gaussian, LearnedGaussian)):
        raise VaekitError(
            f"--discretized needs a Gaussian likelihood, but this model's is {type(base).__name__}; "
            "drop the flag"
        )
    model.likelihood = DiscretizedGaussian(base, bins)
    try:
        yield
    finally:
        model.likelihood = base


def check_quantized(x: Tensor, bins: int = 256) -> None:
    """The discretized likelihood is only meaningful for pixels j / (bins - 1)."""
    j = x * (bins - 1)
    if not torch.allclose(j, j.round(), atol=1e-3):
        raise VaekitError(
            f"--discretized: the data are not {bins}-level pixels (x * {bins - 1} is not whole); "
            "evaluate the continuous density instead"
        )


__all__ = ["DiscretizedGaussian", "check_quantized", "discretized", "log_discretized_gaussian"]
