"""The VampPrior (Tomczak & Welling 2018, "VAE with a VampPrior", eq. 9): the prior is the mixture
of the variational posteriors of K learned pseudo-inputs u_k,

    p(z) = (1/K) sum_k q(z | u_k),

which overrides only ``make_prior``. For images the pseudo-inputs are u_k = sigmoid(r_k) with free
parameters r_k ~ N(0, 1) at initialisation, so they stay inside the data range [0, 1]; for tables
(standardised numerics, unbounded) they are the free parameters themselves, u_k = r_k. The KL has no closed
form: it is estimated by Monte Carlo, mean_l [log q(z_l|x) - log p(z_l)] (the VAE's estimator A).
``sample()`` draws from the VampPrior: a uniformly chosen component k, then z ~ q(z|u_k).

Tomczak & Welling train every model with a linear KL warm-up (their experimental set-up: warm-up
for the first 100 epochs), so ``vamp`` inherits :class:`~vaekit.models.warmup.WarmupVAE`'s schedule
and options (linear over ``steps`` optimiser steps by default; ``steps = 1`` switches it off) and
overrides only ``make_prior``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from ..distributions import LOG_2PI, DiagonalGaussian, Prior
from ..errors import ConfigError
from .base import register
from .warmup import WarmupOptions, WarmupVAE


class VampPrior(Prior):
    """(1/K) sum_k q(z|u_k) with K pseudo-inputs u_k = sigmoid(raw_k) (``unit=True``: data in
    [0, 1]) or u_k = raw_k (unbounded data) of the data's shape."""

    def __init__(self, k: int, shape: tuple[int, ...], posterior: Callable[[Tensor], DiagonalGaussian],
                 unit: bool = True) -> None:
        super().__init__()
        self.raw = nn.Parameter(torch.randn(k, *shape))  # (K, *S)
        self.unit = unit
        # A plain attribute, not a submodule: the encoder belongs to the VAE, and registering it
        # twice would store shared tensors in the checkpoint.
        self._posterior = posterior

    @property
    def pseudo_inputs(self) -> Tensor:
        """u_k (K, *S): in [0, 1] for unit data."""
        return torch.sigmoid(self.raw) if self.unit else self.raw

    def components(self) -> DiagonalGaussian:
        """q(z|u_k) for every pseudo-input: mu, logvar (K, D)."""
        return self._posterior(self.pseudo_inputs)

    def log_prob(self, z: Tensor) -> Tensor:
        """log p(z) (...) for z (..., D): logsumexp_k log N(z; mu_k, var_k) - log K.

        The Gaussian exponent is expanded as z^2 @ (1/var)^T - 2 z @ (mu/var)^T + sum mu^2/var, two
        matrix products, so memory is (..., K) rather than (..., K, D).
        """
        c = self.components()
        prec = torch.exp(-c.logvar)  # (K, D)
        const = (LOG_2PI + c.logvar + c.mu**2 * prec).sum(-1)  # (K,)
        quad = (z**2) @ prec.T - 2 * z @ (c.mu * prec).T  # (..., K)
        log_comp = -0.5 * (const + quad)  # (..., K): log q(z|u_k)
        return torch.logsumexp(log_comp, dim=-1) - math.log(prec.shape[0])

    def sample(self, n: int, dim: int, device: torch.device | None = None) -> Tensor:
        """n draws (n, D): k ~ Uniform{1..K}, then z ~ q(z|u_k)."""
        c = self.components()
        idx = torch.randint(c.mu.shape[0], (n,), device=c.mu.device)  # (n,)
        eps = torch.randn(n, dim, device=c.mu.device, dtype=c.mu.dtype)
        return c.mu[idx] + c.std[idx] * eps


@dataclass
class VampOptions(WarmupOptions):
    """``pseudo_inputs``: K, the number of mixture components (Tomczak & Welling use 500 on MNIST),
    plus the KL warm-up options of ``warmup-vae``."""

    pseudo_inputs: int = 500


@register("vamp")
class VampVAE(WarmupVAE):
    """A VAE with the VampPrior, trained with a KL warm-up; the KL is the Monte-Carlo estimate."""

    Options = VampOptions
    options: VampOptions
    reads = frozenset({"beta", "samples"})  # no closed-form KL to the VampPrior: always Monte Carlo
    hints = {"kl": "the KL to the VampPrior is always the Monte-Carlo estimate"}

    def make_prior(self) -> Prior:
        """The VampPrior over K pseudo-inputs of the data's shape, read through this VAE's encoder."""
        if self.options.pseudo_inputs < 1:
            raise ConfigError(f"model.options.pseudo_inputs: vamp needs at least 1 (got {self.options.pseudo_inputs})")
        # Pixels lie in [0, 1]; the rows a table likelihood models are standardised (unbounded).
        return VampPrior(self.options.pseudo_inputs, self.shape, self.posterior, unit=not self.likelihood.table)
