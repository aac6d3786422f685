"""Posterior, likelihoods and priors.

Shapes: ``B`` batch, ``L`` posterior samples per datapoint, ``D`` latent size, ``*S`` the data
shape, ``(C, H, W)`` or ``(D_x,)``. Everything is written in log space and on logits so that no
``log(sigmoid(.))`` or ``exp`` of a large number ever appears in the loss.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LOG_2PI = math.log(2 * math.pi)


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


# ---------------------------------------------------------------------------------------------
# Priors


class Prior(nn.Module):
    """p(z). Subclasses may hold parameters (VampPrior, mixtures)."""

    def log_prob(self, z: Tensor) -> Tensor:  # (..., D) -> (...)
        raise NotImplementedError

    def sample(self, n: int, dim: int, device: torch.device | None = None) -> Tensor:  # (n, D)
        raise NotImplementedError


class StandardNormal(Prior):
    """p(z) = N(0, I)."""

    def log_prob(self, z: Tensor) -> Tensor:
        return -0.5 * (LOG_2PI + z**2).sum(-1)

    def sample(self, n: int, dim: int, device: torch.device | None = None) -> Tensor:
        return torch.randn(n, dim, device=device)


# ---------------------------------------------------------------------------------------------
# Likelihoods p(x|z), given the decoder output


class Likelihood(nn.Module):
    """p(x|z) parameterised by the decoder output.

    ``channels`` is how many decoder outputs there are per data channel (2 for a learned variance);
    parameters are stacked along the channel axis, dimension ``-len(shape)``.
    """

    channels: int = 1

    def __init__(self, event_dims: int) -> None:
        super().__init__()
        self.event_dims = event_dims  # 3 for (C, H, W), 1 for (D,)

    def _sum(self, t: Tensor) -> Tensor:
        return t.flatten(-self.event_dims).sum(-1)

    def _split(self, out: Tensor) -> tuple[Tensor, ...]:
        return out.chunk(self.channels, dim=-self.event_dims)

    def log_prob(self, out: Tensor, x: Tensor) -> Tensor:
        """log p(x|z) summed over data dimensions: out (..., B, k*C, ...) and x (B, C, ...) -> (..., B)."""
        raise NotImplementedError

    def mean(self, out: Tensor) -> Tensor:
        """E[x|z], for pictures and reconstructions."""
        raise NotImplementedError

    def sample(self, out: Tensor) -> Tensor:
        raise NotImplementedError

    def params(self, out: Tensor) -> dict[str, Tensor]:
        """The distribution's parameters by name, for code outside Python (ONNX export)."""
        raise NotImplementedError

    @property
    def kind(self) -> str:
        """What ``-log p(x|z)`` means, for reports: a probability mass or a density."""
        return "density"


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


class Gaussian(Likelihood):
    """N(x; f(z), sigma^2 I) with fixed sigma: -log p = ||x - f(z)||^2 / (2 sigma^2) + const."""

    def __init__(self, event_dims: int, sigma: float = 1.0) -> None:
        super().__init__(event_dims)
        self.log_sigma = math.log(sigma)

    def log_prob(self, out: Tensor, x: Tensor) -> Tensor:
        sq = (x - out) ** 2
        return -self._sum(0.5 * sq * math.exp(-2 * self.log_sigma) + self.log_sigma + 0.5 * LOG_2PI)

    def mean(self, out: Tensor) -> Tensor:
        return out

    def sample(self, out: Tensor) -> Tensor:
        return out + math.exp(self.log_sigma) * torch.randn_like(out)

    def params(self, out: Tensor) -> dict[str, Tensor]:
        return {"mean": out}  # sigma is fixed: model.sigma in the config


class LearnedGaussian(Likelihood):
    """N(x; mu(z), sigma(z)^2) per pixel; sigma = min_sigma + softplus(raw).

    The floor keeps the density bounded on pixels that are exactly constant (MNIST's background),
    where an unconstrained variance would shrink to zero and the likelihood diverge.
    """

    channels = 2

    def __init__(self, event_dims: int, min_sigma: float = 0.01) -> None:
        super().__init__(event_dims)
        self.min_sigma = min_sigma

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


LIKELIHOODS: dict[str, Callable[..., Likelihood]] = {
    "bernoulli": lambda event_dims, cfg: Bernoulli(event_dims),
    "gaussian": lambda event_dims, cfg: Gaussian(event_dims, cfg.sigma),
    "gaussian-learned": lambda event_dims, cfg: LearnedGaussian(event_dims, cfg.min_sigma),
    "mixed": lambda event_dims, cfg: __import__("vaekit.mixed", fromlist=["build"]).build(event_dims, cfg),  # tables
}


def build_likelihood(name: str, event_dims: int, cfg: object) -> Likelihood:
    """The likelihood named in the model config (``bernoulli``, ``gaussian``, ``gaussian-learned``)."""
    return LIKELIHOODS[name](event_dims, cfg)
