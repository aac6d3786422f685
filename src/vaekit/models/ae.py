"""The plain (undercomplete) autoencoder: the same networks as the VAE, a deterministic code, no KL.

It is the baseline the classic write-ups compare the VAE with. Variants (denoising, sparse,
contractive) override ``corrupt`` (the encoder's input) or ``penalties`` (terms added to the loss).
To generate, it samples codes from a Gaussian fitted to the training codes after training.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..config import ModelConfig
from ..likelihoods import build_likelihood
from ..nn import build_decoder, build_encoder
from .base import Model, Terms, register


@register("ae")
class Autoencoder(Model):
    """x -> z = f(x) -> p(x|z); trained on -log p(x|f(x)) (BCE or squared error) plus penalties."""

    hints = {"beta": "an autoencoder has no KL term", "kl": "an autoencoder has no KL term",
             "samples": "an autoencoder's code is deterministic"}

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...]) -> None:
        super().__init__(cfg, shape)
        self.likelihood = build_likelihood(cfg.likelihood, len(shape), cfg)
        self.encoder = build_encoder(cfg, shape, cfg.latent_dim)
        self.decoder = build_decoder(cfg, shape, cfg.latent_dim, self.likelihood.channels)
        # A Gaussian over the training codes, fitted by after_fit: what sample() draws from.
        self.register_buffer("code_mean", torch.zeros(cfg.latent_dim))
        self.register_buffer("code_scale_tril", torch.eye(cfg.latent_dim))

    # ---- hooks ------------------------------------------------------------------------------

    def corrupt(self, x: Tensor) -> Tensor:
        """The encoder's input during training (denoising autoencoders add noise here)."""
        return x

    def penalties(self, x: Tensor, z: Tensor) -> dict[str, Tensor]:
        """Named per-example terms (B,) added to the loss (sparse and contractive penalties)."""
        return {}

    # ---- the model --------------------------------------------------------------------------

    def forward(
        self, x: Tensor, y: Tensor | None = None, *, samples: int | None = None, step: int = 0, reduce: bool = True
    ) -> Terms:
        z = self.encoder(self.corrupt(x) if self.training else x)  # (B, D)
        recon = -self.likelihood.log_prob(self.decode_params(z), x)  # (B,)
        extra = self.penalties(x, z)
        loss = recon + sum(extra.values()) if extra else recon
        terms = Terms(loss=loss, recon=recon, kl=torch.zeros_like(recon), extra=extra)
        return terms.mean() if reduce else terms

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(self.as_batch(x))

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        eps = torch.randn(n, self.latent_dim, device=self.code_mean.device)
        return self.decode(self.code_mean + temperature * eps @ self.code_scale_tril.T)

    def latent_prior(self) -> dict[str, Tensor]:
        """The Gaussian fitted to the training codes, which ``sample`` draws from."""
        return {"mean": self.code_mean.detach().cpu(), "scale_tril": self.code_scale_tril.detach().cpu()}

    @torch.no_grad()
    def after_fit(self, train, batch_size: int = 4096) -> None:  # noqa: ANN001 - a data Split
        """Fit N(mean, cov) to the codes of the training data, for sampling.

        Sums in float64 batch by batch (shifted by the first batch's mean, so the variance does not
        cancel), so memory stays (D, D) however many rows stream past.
        """
        was = self.training
        self.eval()
        device = self.code_mean.device
        d = self.latent_dim
        n, shift = 0, None
        s1 = torch.zeros(d, dtype=torch.float64, device=device)  # sum of (c - shift)
        s2 = torch.zeros(d, d, dtype=torch.float64, device=device)  # sum of (c - shift)(c - shift)^T
        for i in range(0, len(train), batch_size):
            c = self.encode(train.x[i : i + batch_size].to(device)).double()  # (B, D)
            shift = c.mean(0) if shift is None else shift
            c = c - shift
            n, s1, s2 = n + len(c), s1 + c.sum(0), s2 + c.T @ c
        self.train(was)
        mean = s1 / n
        cov = (s2 - n * torch.outer(mean, mean)) / max(n - 1, 1)  # the unbiased sample covariance
        cov = cov + 1e-6 * cov.diagonal().mean().clamp_min(1e-12) * torch.eye(d, dtype=cov.dtype, device=device)
        self.code_mean.copy_(mean + shift)
        self.code_scale_tril.copy_(torch.linalg.cholesky(cov))
