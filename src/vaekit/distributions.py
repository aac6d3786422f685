"""The posterior q(z|x) and the priors p(z); the likelihoods p(x|z) are in :mod:`vaekit.likelihoods`.

Shapes: ``B`` batch, ``L`` posterior samples per datapoint, ``D`` latent size. Everything is
written in log space.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor, nn

# Imports go one way only: vaekit.likelihoods imports nothing from this module.
from .likelihoods.base import LOG_2PI


class Posterior(Protocol):
    """What every q(z|x) provides; callers use this, never the concrete type.

    Implemented by :class:`DiagonalGaussian` and ``vaekit.models.fullcov.FullCovGaussian``.
    """

    mu: Tensor  # E_q[z] (B, D)

    @property
    def marginal_var(self) -> Tensor: ...  # Var_q(z_d) per dimension (B, D)

    def rsample(self, n: int = 1) -> Tensor: ...  # (n, B, D), reparameterised

    def log_prob(self, z: Tensor) -> Tensor: ...  # (..., B, D) -> (..., B)

    def kl_standard_normal(self) -> Tensor: ...  # KL(q || N(0, I)) (B,)

    def kl_standard_normal_per_dim(self) -> Tensor | None: ...  # (B, D); None when it does not split by dimension

    def params(self) -> dict[str, Tensor]: ...  # by name, for code outside Python (ONNX)


class DiagonalGaussian:
    """q(z|x) = N(mu, diag(exp(logvar))), the usual VAE posterior."""

    def __init__(self, mu: Tensor, logvar: Tensor) -> None:
        self.mu = mu  # (B, D)
        self.logvar = logvar  # (B, D)

    @property
    def std(self) -> Tensor:
        return torch.exp(0.5 * self.logvar)

    @property
    def marginal_var(self) -> Tensor:
        """Var(z_d | x) per dimension (B, D): the spread every posterior type reports."""
        return torch.exp(self.logvar)

    def params(self) -> dict[str, Tensor]:
        """The parameters by name, for code outside Python (ONNX export): mu, logvar (B, D)."""
        return {"mu": self.mu, "logvar": self.logvar}

    def rsample(self, n: int = 1) -> Tensor:
        """``n`` reparameterised draws z = mu + sigma * eps (Kingma & Welling §2.4): (n, B, D)."""
        eps = torch.randn((n, *self.mu.shape), dtype=self.mu.dtype, device=self.mu.device)
        return self.mu + self.std * eps

    def log_prob(self, z: Tensor) -> Tensor:
        """log q(z|x) summed over latent dimensions: (..., B, D) -> (..., B)."""
        return -0.5 * (LOG_2PI + self.logvar + (z - self.mu) ** 2 * torch.exp(-self.logvar)).sum(-1)

    def kl_standard_normal_per_dim(self) -> Tensor:
        """KL(q || N(0, I)) per dimension, Kingma & Welling Appendix B: (B, D)."""
        return -0.5 * (1 + self.logvar - self.mu**2 - torch.exp(self.logvar))

    def kl_standard_normal(self) -> Tensor:
        """Analytic KL(q || N(0, I)) summed over dimensions: (B,)."""
        return self.kl_standard_normal_per_dim().sum(-1)


def kl_diagonal(mu1: Tensor, logvar1: Tensor, mu2: Tensor, logvar2: Tensor) -> Tensor:
    """KL(N(mu1, e^logvar1) || N(mu2, e^logvar2)) per dimension (elementwise, broadcasting):
    1/2 (logvar2 - logvar1 + (e^logvar1 + (mu1 - mu2)^2) / e^logvar2 - 1). Used where the second
    Gaussian is not N(0, I): the hierarchical VAE's p(z1|z2), the AVAE's r(z~|z)."""
    return 0.5 * (logvar2 - logvar1 + (torch.exp(logvar1) + (mu1 - mu2) ** 2) * torch.exp(-logvar2) - 1)


# ---------------------------------------------------------------------------------------------
# Priors


class Prior(nn.Module):
    """p(z). Subclasses may hold parameters (VampPrior, mixtures).

    ``standard`` (declared, never probed by type): p(z) is N(0, I), so codes live on its scale and
    KL(q || p) has the closed form per dimension."""

    standard: bool = False

    def log_prob(self, z: Tensor) -> Tensor:  # (..., D) -> (...)
        raise NotImplementedError

    def sample(self, n: int, dim: int, device: torch.device | None = None) -> Tensor:  # (n, D)
        raise NotImplementedError


class StandardNormal(Prior):
    """p(z) = N(0, I)."""

    standard = True

    def log_prob(self, z: Tensor) -> Tensor:
        return -0.5 * (LOG_2PI + z**2).sum(-1)

    def sample(self, n: int, dim: int, device: torch.device | None = None) -> Tensor:
        return torch.randn(n, dim, device=device)


__all__ = ["LOG_2PI", "DiagonalGaussian", "Posterior", "Prior", "StandardNormal", "kl_diagonal"]
