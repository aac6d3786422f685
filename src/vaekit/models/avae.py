"""AVAE: the VAE with an autoencoding self-consistency term (Cemgil et al. 2020, "The Autoencoding
Variational Autoencoder", NeurIPS; arXiv:2012.03715).

A VAE need not encode its own samples consistently: decode a code z to x~ ~ p(x|z), encode x~,
and q(z~|x~) may land far from z. The AVAE adds a term that asks q(.|x~) to agree with a coupling
r(z~|z) = N(z~; rho z, (1 - rho^2) I), which leaves the prior N(0, I) invariant (if z ~ N(0, I)
then z~ ~ N(0, I) too), so rho -> 1 demands exact self-consistency and rho = 0 none at all.

What is implemented here (a documented simplification of the paper's full bound): per example,

    loss = -ELBO(x) + lambda * KL( q(z~ | x~) || r(z~ | z) ),   z ~ q(z|x),  x~ ~ p(x|z) (or E[x|z])

with the KL between the two diagonal Gaussians in closed form (the paper's Monte-Carlo estimate
E_q(z~|x~)[log q(z~|x~) - log r(z~|z)] has the same expectation). x~ carries no gradient (the
decoder is not trained by this term, only the encoder is, through q(z~|x~) and through z). One z
per datapoint: the first of the L posterior samples. ``kl`` stays the ELBO's KL; the new term is
reported as ``extra["consistency"]``.

``code_sensitivity`` measures what the term is for: how far codes move under small input noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from ..config import ModelConfig
from ..distributions import DiagonalGaussian, kl_diagonal
from ..errors import ConfigError
from .base import Model, Terms, register
from .vae import VAE


@dataclass
class AVAEOptions:
    """``model.options`` of the AVAE."""

    rho: float = 0.9  # the coupling r(z~|z) = N(rho z, (1 - rho^2) I); in [0, 1)
    weight: float = 1.0  # lambda, the weight of the self-consistency term
    decoded: Literal["sample", "mean"] = "sample"  # x~ ~ p(x|z) (the paper) or x~ = E[x|z]


@register("avae")
class AVAE(VAE):
    """VAE + the self-consistency term KL(q(z~|x~) || N(rho z, (1 - rho^2) I))."""

    Options = AVAEOptions

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...]) -> None:
        super().__init__(cfg, shape)
        o = self.options
        if not 0 <= o.rho < 1 or o.weight < 0:
            raise ConfigError(f"model.options: avae needs 0 <= rho < 1 and weight >= 0 (got {o.rho}, {o.weight})")

    def consistency(self, z: Tensor) -> Tensor:
        """KL(q(z~|x~) || r(z~|z)) per example (B,) for codes z (B, D), x~ decoded from z."""
        with torch.no_grad():  # x~ is data for this term: no gradient to the decoder
            out = self.decode_params(z)  # (B, k*C, H, W)
            x_tilde = self.likelihood.sample(out) if self.options.decoded == "sample" else self.likelihood.mean(out)
        q_tilde = self.posterior(x_tilde)  # q(z~|x~): (B, D) each
        rho = self.options.rho
        r_logvar = torch.full_like(z, math.log(1 - rho**2))  # (B, D)
        return kl_diagonal(q_tilde.mu, q_tilde.logvar, rho * z, r_logvar).sum(-1)

    def bound(self, x: Tensor, q: DiagonalGaussian, z: Tensor, step: int, y: Tensor | int | None = None) -> Terms:
        """The VAE's terms plus lambda * consistency, from the first posterior sample z[0] (B, D)."""
        terms = super().bound(x, q, z, step, y)
        cons = self.consistency(z[0])  # (B,)
        extra = {**terms.extra, "consistency": cons}
        return Terms(loss=terms.loss + self.options.weight * cons, recon=terms.recon, kl=terms.kl, extra=extra)


@torch.no_grad()
def code_sensitivity(model: Model, x: Tensor, *, noise: float = 0.1, seed: int = 0, batch_size: int = 1000) -> dict[str, float]:
    """How far deterministic codes move under small input noise, relative to how far apart codes are.

    With delta ~ N(0, noise^2 I) and x + delta clipped to [0, 1]:
    ``shift`` = mean ||enc(x + delta) - enc(x)||, ``spread`` = mean ||enc(x) - enc(x')|| over
    random pairs of inputs, ``relative`` = shift / spread (0: codes ignore the noise; ~1: the noise
    moves a code as far as a different image would).
    """
    was = model.training
    model.eval()
    g = torch.Generator().manual_seed(seed)
    shifts, codes = [], []
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size]
        delta = noise * torch.randn(xb.shape, generator=g)
        c = model.encode(xb)  # (b, D)
        shifts.append((model.encode((xb + delta).clamp(0, 1)) - c).norm(dim=-1))
        codes.append(c)
    model.train(was)
    c = torch.cat(codes)  # (N, D)
    perm = torch.randperm(len(c), generator=g)
    shift = float(torch.cat(shifts).mean())
    spread = float((c - c[perm]).norm(dim=-1).mean())
    return {"shift": shift, "spread": spread, "relative": shift / spread, "noise": noise, "n": len(c)}
