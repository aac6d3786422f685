"""A VAE whose posterior is a full-covariance Gaussian q(z|x) = N(mu(x), L(x) L(x)^T).

The encoder outputs, per example, the mean (D), the log of the Cholesky diagonal (D) and the
D(D-1)/2 strictly-lower entries of L, so Sigma = L L^T is positive definite by construction and
log det Sigma = 2 sum_i log L_ii exactly. Sampling is the reparameterisation z = mu + L eps
(Kingma & Welling 2014, sec. 2.4, "location-scale" family), and the KL to N(0, I) is analytic:

    KL(N(mu, Sigma) || N(0, I)) = 1/2 (tr Sigma + mu^T mu - D - log det Sigma),  tr Sigma = ||L||_F^2.

Everything else (likelihood, bound, hooks) is the VAE's: only ``posterior`` and the encoder width change.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..distributions import LOG_2PI
from ..nn import build_encoder
from .base import register
from .vae import VAE


class FullCovGaussian:
    """N(mu, L L^T) with a lower-triangular L of positive diagonal; mu (B, D), L (B, D, D)."""

    def __init__(self, mu: Tensor, scale_tril: Tensor) -> None:
        self.mu = mu  # (B, D)
        self.scale_tril = scale_tril  # (B, D, D)

    @property
    def std(self) -> Tensor:
        """Marginal standard deviations sqrt(diag Sigma) (B, D): the row norms of L."""
        return self.scale_tril.pow(2).sum(-1).sqrt()

    def params(self) -> dict[str, Tensor]:
        """The parameters by name, for code outside Python (ONNX export): mu (B, D), scale_tril (B, D, D)."""
        return {"mu": self.mu, "scale_tril": self.scale_tril}

    @property
    def marginal_var(self) -> Tensor:
        """Var(z_d | x) = (L L^T)_dd = sum_j L_dj^2 per dimension (B, D)."""
        return self.scale_tril.pow(2).sum(-1)

    @property
    def covariance(self) -> Tensor:
        return self.scale_tril @ self.scale_tril.transpose(-1, -2)  # (B, D, D)

    def log_det(self) -> Tensor:
        """log det Sigma = 2 sum_i log L_ii: (B,)."""
        return 2 * torch.log(torch.diagonal(self.scale_tril, dim1=-2, dim2=-1)).sum(-1)

    def rsample(self, n: int = 1) -> Tensor:
        """``n`` reparameterised draws z = mu + L eps, eps ~ N(0, I): (n, B, D)."""
        eps = torch.randn((n, *self.mu.shape), dtype=self.mu.dtype, device=self.mu.device)  # (n, B, D)
        return self.mu + (self.scale_tril @ eps.unsqueeze(-1)).squeeze(-1)

    def log_prob(self, z: Tensor) -> Tensor:
        """log q(z|x) for z (..., B, D) -> (..., B), via one triangular solve u = L^{-1} (z - mu)."""
        diff = (z - self.mu).unsqueeze(-1)  # (..., B, D, 1)
        tril = self.scale_tril.expand(*diff.shape[:-2], *self.scale_tril.shape[-2:])
        u = torch.linalg.solve_triangular(tril, diff, upper=False).squeeze(-1)  # (..., B, D)
        d = self.mu.shape[-1]
        return -0.5 * (d * LOG_2PI + self.log_det() + u.pow(2).sum(-1))

    def kl_standard_normal_per_dim(self) -> None:
        """None: with correlated dimensions the KL does not split into per-dimension terms."""
        return None

    def kl_standard_normal(self) -> Tensor:
        """Analytic KL(q || N(0, I)) = 1/2 (tr Sigma + mu^T mu - D - log det Sigma): (B,)."""
        tr = self.scale_tril.pow(2).sum((-1, -2))  # tr(L L^T) = ||L||_F^2
        d = self.mu.shape[-1]
        return 0.5 * (tr + self.mu.pow(2).sum(-1) - d - self.log_det())


def tril_from_features(h: Tensor, dim: int) -> Tensor:
    """L (B, D, D) from features h (B, D + D(D-1)/2): exp on the diagonal, the rest below it."""
    log_diag, off = h[:, :dim], h[:, dim:]  # (B, D), (B, D(D-1)/2)
    # One scatter of [diagonal, strictly-lower] into zeros (diag_embed has no ONNX export).
    lower = torch.tril_indices(dim, dim, offset=-1, device=h.device)  # (2, D(D-1)/2)
    diag = torch.arange(dim, device=h.device)
    rows, cols = torch.cat([diag, lower[0]]), torch.cat([diag, lower[1]])  # (D(D+1)/2,) each
    values = torch.cat([torch.exp(log_diag), off], 1)  # (B, D(D+1)/2)
    zeros = h.new_zeros(h.shape[0], dim, dim)
    return zeros.index_put((torch.arange(h.shape[0], device=h.device)[:, None], rows, cols), values)


@register("fullcov-vae")
class FullCovVAE(VAE):
    """The VAE with q(z|x) = N(mu(x), L(x) L(x)^T): correlated posterior dimensions."""

    def make_encoder(self) -> nn.Module:
        d = self.cfg.latent_dim
        # mu (D) + log diag L (D) + strictly-lower entries (D(D-1)/2) = D(D+3)/2 outputs.
        return build_encoder(self.cfg, self.shape, d * (d + 3) // 2)

    def posterior(self, x: Tensor, y: Tensor | int | None = None) -> FullCovGaussian:  # type: ignore[override]
        """q(z|x) for a batch x (B, *S) (no labels: y is ignored)."""
        h = self.encoder(x)  # (B, D(D+3)/2)
        d = self.latent_dim
        return FullCovGaussian(h[:, :d], tril_from_features(h[:, d:], d))

