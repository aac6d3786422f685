"""A two-stochastic-layer hierarchical VAE with Ladder-VAE inference (Sønderby et al. 2016,
"Ladder Variational Autoencoders", NeurIPS; LVAE).

Generative model (top-down): p(z2) = N(0, I), p(z1|z2) = N(mu_p(z2), sigma_p^2(z2)), p(x|z1).

Inference: a deterministic bottom-up pass x -> d1 -> d2 gives Gaussian estimates
(mu^_1, sigma^_1) from d1 and (mu^_2, sigma^_2) from d2. Top-down, q(z2|x) = N(mu^_2, sigma^_2^2)
(the top layer is the bottom-up estimate) and, with z2 ~ q(z2|x), the posterior of z1 combines the
bottom-up estimate with the prior p(z1|z2) by precision weighting (LVAE eq. 17-19):

    sigma_q^2 = 1 / (sigma^^-2 + sigma_p^-2),   mu_q = (mu^ sigma^^-2 + mu_p sigma_p^-2) sigma_q^2.

The bound is E_q[log p(x|z1)] - KL(q(z2|x) || p(z2)) - E_q(z2|x)[KL(q(z1|z2,x) || p(z1|z2))]; both
KLs are analytic given z2 (``model.kl = "mc"``: log q - log p at the samples instead). ``kl`` is
their sum; ``extra`` holds ``kl_z1`` and ``kl_z2``. ``latent_dim`` is the size of z1 (what
``encode`` returns and the decoder reads); z2 has ``options.top_dim`` dimensions.
KL warm-up (LVAE sec. 2.3) is ``options.warmup_steps``; batch normalisation is not implemented.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..distributions import DiagonalGaussian, StandardNormal, kl_diagonal
from ..likelihoods import build_likelihood
from ..nn import activation, build_decoder, build_encoder
from .base import Model, Terms, register
from .warmup import linear_ramp


def precision_weighted(mu_hat: Tensor, logvar_hat: Tensor, mu_p: Tensor, logvar_p: Tensor) -> tuple[Tensor, Tensor]:
    """LVAE eq. 17-19: the product of two Gaussians, in log-variance form (broadcasting).

    sigma_q^2 = 1/(sigma^^-2 + sigma_p^-2), i.e. logvar_q = -logaddexp(-logvar^, -logvar_p); and
    mu_q = w mu^ + (1 - w) mu_p with w = sigma_q^2 / sigma^^2 = sigmoid(logvar_p - logvar^).
    """
    logvar_q = -torch.logaddexp(-logvar_hat, -logvar_p)
    w = torch.sigmoid(logvar_p - logvar_hat)
    return w * mu_hat + (1 - w) * mu_p, logvar_q


@dataclass
class HVAEOptions:
    """``model.options`` of the hierarchical VAE."""

    top_dim: int = 0  # size of z2; 0 = max(1, latent_dim // 2)
    features: int = 256  # width of the bottom-up feature d1 (the encoder network's output)
    top_hidden: int = 128  # width of the d1 -> d2 layer and of the top-down network z2 -> p(z1|z2)
    warmup_steps: int = 0  # LVAE sec. 2.3 warm-up: the KL weight rises linearly 0 -> beta over these steps


@register("hvae")
class HVAE(Model):
    """Two stochastic layers z2 -> z1 -> x, trained on the ELBO with LVAE top-down inference."""

    has_posterior = True
    has_density = True

    Options = HVAEOptions
    reads = frozenset({"beta", "kl", "samples"})

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...]) -> None:
        super().__init__(cfg, shape)
        o, d1 = self.options, cfg.latent_dim
        self.top_dim = d2 = o.top_dim or max(1, d1 // 2)
        self.likelihood = build_likelihood(cfg.likelihood, len(shape), cfg)
        self.encoder = nn.Sequential(build_encoder(cfg, shape, o.features), activation(cfg.activation))  # x -> d1
        self.head1 = nn.Linear(o.features, 2 * d1)  # d1 -> (mu^_1, logvar^_1)
        self.up2 = nn.Sequential(nn.Linear(o.features, o.top_hidden), activation(cfg.activation))  # d1 -> d2
        self.head2 = nn.Linear(o.top_hidden, 2 * d2)  # d2 -> (mu^_2, logvar^_2)
        self.topdown = nn.Sequential(  # z2 -> (mu_p, logvar_p) of p(z1|z2)
            nn.Linear(d2, o.top_hidden), activation(cfg.activation), nn.Linear(o.top_hidden, 2 * d1)
        )
        self.decoder = build_decoder(cfg, shape, d1, self.likelihood.channels)

    def kl_weight(self, step: int) -> float:
        """beta, ramped linearly from 0 over ``options.warmup_steps`` optimiser steps (LVAE sec. 2.3)."""
        if not self.training:  # held-out numbers always report the full bound
            return self.cfg.beta
        return self.cfg.beta * linear_ramp(step, self.options.warmup_steps)

    def bottom_up(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(mu^_1, logvar^_1) (B, D1) and (mu^_2, logvar^_2) (B, D2) from the deterministic pass."""
        d1 = self.encoder(x)  # (B, F)
        mu1, lv1 = self.head1(d1).chunk(2, -1)
        mu2, lv2 = self.head2(self.up2(d1)).chunk(2, -1)
        return mu1, lv1, mu2, lv2

    def prior1(self, z2: Tensor) -> tuple[Tensor, Tensor]:
        """p(z1|z2): mean and log-variance (..., D1) for z2 (..., D2)."""
        mu, lv = self.topdown(z2).chunk(2, -1)
        return mu, lv

    def infer(self, x: Tensor, samples: int) -> dict[str, Tensor]:
        """Top-down inference with ``samples`` draws: every mean/log-variance and z2 (L, B, D2), z1 (L, B, D1)."""
        mu1, lv1, mu2, lv2 = self.bottom_up(x)
        z2 = mu2 + torch.exp(0.5 * lv2) * torch.randn((samples, *mu2.shape), dtype=mu2.dtype, device=mu2.device)
        mu_p, lv_p = self.prior1(z2)  # (L, B, D1)
        mu_q, lv_q = precision_weighted(mu1, lv1, mu_p, lv_p)  # (L, B, D1)
        z1 = mu_q + torch.exp(0.5 * lv_q) * torch.randn_like(mu_q)
        return {"mu2": mu2, "lv2": lv2, "z2": z2, "mu_p": mu_p, "lv_p": lv_p, "mu_q": mu_q, "lv_q": lv_q, "z1": z1}

    @property
    def default_samples(self) -> int:
        """L, the (z2, z1) draws per example: ``model.samples``, in training and in the trainer's
        held-out evaluation alike (so train_ and test_ terms are one objective)."""
        return self.cfg.samples

    def forward(
        self, x: Tensor, y: Tensor | None = None, *, samples: int | None = None, step: int = 0, reduce: bool = True
    ) -> Terms:
        """The negative two-layer ELBO for a batch x (B, *S), with L samples of (z2, z1)."""
        s = self.infer(x, samples or self.default_samples)
        recon = -self.likelihood.log_prob(self.decode_params(s["z1"]), x).mean(0)  # (B,)
        if self.cfg.kl == "mc":
            q2, q1, p1 = DiagonalGaussian(s["mu2"], s["lv2"]), DiagonalGaussian(s["mu_q"], s["lv_q"]), DiagonalGaussian(s["mu_p"], s["lv_p"])
            kl2 = (q2.log_prob(s["z2"]) - StandardNormal().log_prob(s["z2"])).mean(0)
            kl1 = (q1.log_prob(s["z1"]) - p1.log_prob(s["z1"])).mean(0)
        else:
            kl2 = DiagonalGaussian(s["mu2"], s["lv2"]).kl_standard_normal()
            kl1 = kl_diagonal(s["mu_q"], s["lv_q"], s["mu_p"], s["lv_p"]).sum(-1).mean(0)
        kl = kl1 + kl2  # (B,)
        terms = Terms(loss=recon + self.kl_weight(step) * kl, recon=recon, kl=kl, extra={"kl_z1": kl1, "kl_z2": kl2})
        return terms.mean() if reduce else terms

    @torch.no_grad()
    def log_weights(self, x: Tensor, y: Tensor | None = None, k: int = 1) -> Tensor:
        """log p(x, z1, z2) - log q(z1, z2 | x) for k draws from q: (k, B), for importance sampling."""
        s = self.infer(x, k)
        z1, z2 = s["z1"], s["z2"]
        log_px = self.likelihood.log_prob(self.decode_params(z1), x)  # (k, B)
        log_pz = StandardNormal().log_prob(z2) + DiagonalGaussian(s["mu_p"], s["lv_p"]).log_prob(z1)
        log_qz = DiagonalGaussian(s["mu2"], s["lv2"]).log_prob(z2) + DiagonalGaussian(s["mu_q"], s["lv_q"]).log_prob(z1)
        return log_px + log_pz - log_qz

    def posterior(self, x: Tensor) -> DiagonalGaussian:
        """q(z1 | z2 = E_q[z2|x], x) (B, D1): the z1 posterior at the mean of z2, for diagnostics
        such as active units (the true q(z1|x) mixes over z2 and is not Gaussian)."""
        mu1, lv1, mu2, _ = self.bottom_up(x)
        return self._z1_at_mean_z2(mu1, lv1, mu2)

    def _z1_at_mean_z2(self, mu1: Tensor, lv1: Tensor, mu2: Tensor) -> DiagonalGaussian:
        """q(z1 | z2 = mu^_2, x) from the bottom-up pass's outputs."""
        mu_p, lv_p = self.prior1(mu2)
        return DiagonalGaussian(*precision_weighted(mu1, lv1, mu_p, lv_p))

    @property
    def latent_layers(self) -> dict[str, int]:
        """``{"z1": latent_dim, "z2": top_dim}``: the two stochastic layers, bottom first."""
        return {"z1": self.latent_dim, "z2": self.top_dim}

    def latent_means(self, x: Tensor) -> dict[str, Tensor]:
        """The posterior mean of each layer, for active units per layer (Burda et al. 2015, sec. 5.2,
        count them per stochastic layer of their two-layer models), from one bottom-up pass:

        * ``"z2"`` (B, D2): E_{q(z2|x)}[z2] = mu^_2, exactly (LVAE's top posterior is the bottom-up
          estimate itself);
        * ``"z1"`` (B, D1): the mean of :meth:`posterior`, i.e. of q(z1 | z2 = E_q[z2|x], x), the
          precision-weighted mean at z2's mean. It is not E_{q(z1|x)}[z1], which averages that mean
          over z2 ~ q(z2|x) and has no closed form; it is what ``active_units`` has always counted.
        """
        mu1, lv1, mu2, _ = self.bottom_up(x)
        return {"z1": self._z1_at_mean_z2(mu1, lv1, mu2).mu, "z2": mu2}

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """E_q[z1 | z2 = E_q[z2|x], x] (B, D1): the deterministic code the decoder reads."""
        return self.posterior(self.as_batch(x)).mu

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        """Ancestral samples: z2 ~ N(0, T^2 I), z1 ~ N(mu_p(z2), T^2 sigma_p^2(z2)), E[x|z1]."""
        device = next(self.parameters()).device
        z2 = temperature * torch.randn(n, self.top_dim, device=device)
        mu_p, lv_p = self.prior1(z2)
        return self.decode(mu_p + temperature * torch.exp(0.5 * lv_p) * torch.randn_like(mu_p))

