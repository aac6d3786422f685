"""The importance-weighted autoencoder (Burda, Grosse & Salakhutdinov 2015, eq. 8):

    L_k(x) = E_{z_1..z_k ~ q(z|x)} [ log (1/k) sum_i p(x, z_i) / q(z_i|x) ],

trained directly (same networks as the VAE; overrides only the ``bound`` hook). L_1 is the ELBO,
L_k <= L_{k+1} <= log p(x) (Burda et al. Theorem 1).

Terms, per example (B,): ``loss`` = -L_k, the negative k-sample bound; ``recon`` and ``kl`` are the
VAE's terms averaged over the same k samples, -mean_i log p(x|z_i) and mean_i [log q(z_i|x) -
log p(z_i)] (the Monte-Carlo KL, estimator A), so ``recon + kl`` is the k-sample estimate of the
negative ELBO and ``recon + kl - loss`` >= 0 is how much tighter the IWAE bound is.

k is ``model.options.k``; an explicit ``samples=`` (e.g. ``vaekit evaluate --samples``) overrides it,
and per-epoch evaluation with ``samples=1`` therefore reports the negative ELBO.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..config import ModelConfig
from ..distributions import DiagonalGaussian
from ..errors import ConfigError
from .base import Terms, register
from .vae import VAE


def log_weights_from(
    model: VAE, x: Tensor, q: DiagonalGaussian, z: Tensor, y: Tensor | int | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """log p(x|z_i, y), log p(z_i), log q(z_i|x, y) for samples z (k, B, D): each (k, B)."""
    log_px = model.likelihood.log_prob(model.decode_params(z, y), x)  # (k, B)
    return log_px, model.prior.log_prob(z), q.log_prob(z)


@dataclass
class IWAEOptions:
    """``k``: importance samples per datapoint in the training bound (Burda et al. use 5 and 50)."""

    k: int = 5


@register("iwae")
class IWAE(VAE):
    """A VAE trained on the k-sample importance-weighted bound instead of the ELBO."""

    Options = IWAEOptions
    options: IWAEOptions
    # k is the option; the bound has no KL weight and its log-weights are always Monte Carlo.
    reads = frozenset()
    hints = {"samples": "its k is model.options.k, e.g. --set 'model.options={k=10}'",
             "beta": "the IWAE bound has no KL weight", "kl": "the IWAE bound never uses the analytic KL"}

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...]) -> None:
        super().__init__(cfg, shape)
        if self.options.k < 1:
            raise ConfigError(f"model.options.k: iwae needs k >= 1 (got {self.options.k})")
        if cfg.beta != 1.0:
            raise ConfigError(f"model.beta: the IWAE bound has no KL weight; leave beta at 1 (got {cfg.beta})")

    @property
    def default_samples(self) -> int:
        """k, the number of importance samples."""
        return self.options.k

    def bound(self, x: Tensor, q: DiagonalGaussian, z: Tensor, step: int, y: Tensor | int | None = None) -> Terms:
        """-L_k and the negative-ELBO terms from the same k samples z (k, B, D)."""
        log_px, log_pz, log_qz = log_weights_from(self, x, q, z, y)  # (k, B) each
        log_w = log_px + log_pz - log_qz  # (k, B): log p(x, z_i) / q(z_i|x)
        # log (1/k) sum_i w_i, stably; its gradient weights each sample by its normalised w_i (eq. 14)
        bound = torch.logsumexp(log_w, dim=0) - math.log(z.shape[0])  # (B,)
        return Terms(loss=-bound, recon=-log_px.mean(0), kl=(log_qz - log_pz).mean(0))
