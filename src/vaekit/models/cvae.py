"""The conditional VAE (Sohn, Lee & Yan 2015, "Learning Structured Output Representation using
Deep Conditional Generative Models"; Kingma et al. 2014, "Semi-supervised learning with deep
generative models", M2 with observed labels): q(z|x, y), p(z) = N(0, I), p(x|z, y).

The label enters as a one-hot vector y (B, K): concatenated to the flattened input (MLP) or as K
constant extra input channels (conv) for the encoder, and concatenated to z for the decoder.
Training maximises the conditional ELBO  log p(x|y) >= E_q[log p(x|z,y)] - KL(q(z|x,y) || p(z)).

Without labels (evaluation of unlabelled data, the registry's ``model(x)``) the model is scored
as an unconditional one with a uniform p(y): log p(x) >= sum_y q(y|x) ELBO(x, y) - KL(q(y|x) || p(y)),
with q(y|x) the softmax over labels of the bound at z = E_q[z|x,y] (``unlabelled_terms`` says why
not of the sampled ELBOs); ``extra["kl_y"]`` = KL(q(y|x) || p(y)).
Training without labels is an error. ``encode``/``reconstruct`` without labels use the label whose
bound (at z = posterior mean) is highest; ``sample(n)`` without a label cycles through 0..K-1.

It has no ``forward`` of its own: the VAE's forward passes y to the label-aware hooks
(``posterior``, ``decode_params``, ``bound``) and, without labels, calls ``unlabelled_terms``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..distributions import DiagonalGaussian
from ..errors import ConfigError, DataError, VaekitError
from ..nn import build_decoder, build_encoder
from .base import Terms, register
from .vae import VAE


@dataclass
class CVAEOptions:
    """``model.options`` of the conditional VAE."""

    classes: int = 10  # K, the number of labels (0 .. K-1)


@register("cvae")
class CVAE(VAE):
    """q(z|x, y) and p(x|z, y) with one-hot labels; the conditional ELBO."""

    Options = CVAEOptions
    conditional = True

    @property
    def num_classes(self) -> int:
        """K, the number of labels (``model.options.classes``, checked when the nets are built)."""
        return self.options.classes

    def make_encoder(self) -> nn.Module:
        """[x, one-hot y] -> [mu, logvar]: y as K extra channels (conv) or K extra inputs (mlp)."""
        k, shape = self.num_classes, self.shape
        if k < 2:  # the first hook that sizes a net by K (make_decoder comes after it)
            raise ConfigError(f"model.options.classes: a cvae needs at least 2 classes (got {k})")
        enc_shape = (shape[0] + k, *shape[1:]) if self.cfg.arch == "conv" else (math.prod(shape) + k,)
        return build_encoder(self.cfg, enc_shape, 2 * self.cfg.latent_dim)

    def make_decoder(self) -> nn.Module:
        """[z, one-hot y] -> the likelihood's parameters."""
        return build_decoder(self.cfg, self.shape, self.cfg.latent_dim + self.num_classes, self.likelihood.channels)

    # ---- labels -----------------------------------------------------------------------------

    def check_data(self, data: Any) -> None:
        """Refuse training data without labels, or with labels outside 0..K-1."""
        y = data.train.y
        if y is None:
            raise DataError(f"cvae needs class labels, but the '{data.name}' data has none; use a labelled source")
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
            raise DataError(
                f"cvae: labels run {int(y.min())}..{int(y.max())} but model.options.classes is "
                f"{self.num_classes}; set model.options.classes={int(y.max()) + 1}"
            )

    def one_hot(self, y: Tensor | int, n: int, device: torch.device) -> Tensor:
        """Labels (B,) or one int, broadcast to n rows -> one-hot (n, K), float."""
        y = torch.as_tensor(y, device=device).long().expand(n) if not isinstance(y, Tensor) or y.dim() == 0 else y.long()
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
            raise VaekitError(f"cvae: labels must lie in 0..{self.num_classes - 1}, got {int(y.min())}..{int(y.max())}")
        return F.one_hot(y, self.num_classes).to(torch.get_default_dtype())

    def _encoder_input(self, x: Tensor, oh: Tensor) -> Tensor:
        if self.cfg.arch == "conv":  # K constant channels: (B, C + K, H, W)
            return torch.cat([x, oh[:, :, None, None].expand(-1, -1, *x.shape[2:])], 1)
        return torch.cat([x.flatten(1), oh], 1)  # (B, prod S + K)

    def posterior_y(self, x: Tensor, oh: Tensor) -> DiagonalGaussian:
        """q(z|x, y) for x (B, *S) and one-hot y (B, K)."""
        mu, logvar = self.encoder(self._encoder_input(x, oh)).chunk(2, dim=-1)  # (B, D) each
        return DiagonalGaussian(mu, logvar)

    # ---- the hooks of the VAE, with labels ------------------------------------------------

    def posterior(self, x: Tensor, y: Tensor | int | None = None) -> DiagonalGaussian:
        """q(z|x, y); without y, y is the label :meth:`infer_label` picks."""
        y = self.infer_label(x) if y is None else y
        return self.posterior_y(x, self.one_hot(y, len(x), x.device))

    def decode_params_y(self, z: Tensor, oh: Tensor) -> Tensor:
        """Decoder output for codes z (..., B, D) and one-hot y (B, K)."""
        return super().decode_params(torch.cat([z, oh.expand(*z.shape[:-1], oh.shape[-1])], -1))

    def decode_params(self, z: Tensor, y: Tensor | int | None = None) -> Tensor:
        """Decoder output for codes z (..., B, D) and labels y (B,) or one int."""
        if y is None:
            raise VaekitError("cvae: decoding needs labels y (the decoder is p(x|z, y))")
        return self.decode_params_y(z, self.one_hot(y, z.shape[-2], z.device))

    @torch.no_grad()
    def decode(self, z: Tensor, y: Tensor | int | None = None) -> Tensor:
        """E[x|z, y] for codes z (N, D) and labels y (N,) or one int. Without y, E[x|z] of the model
        with y marginalised: sum_y p(y) E[x|z, y], p(y) uniform (y and z are independent a priori)."""
        if y is None:
            return torch.stack([self.likelihood.mean(self.decode_params(z, c)) for c in range(self.num_classes)]).mean(0)
        return self.likelihood.mean(self.decode_params(z, y))

    # ---- the bound without labels -----------------------------------------------------------

    def unlabelled_terms(self, x: Tensor, samples: int, step: int) -> Terms:
        """The label-marginal bound (eval only): per-example terms (B,) with y summed out under a
        uniform p(y); with labels, ``forward`` is the VAE's with y passed to the hooks.

        -log p(x) <= sum_y q(y|x) loss_y + KL(q(y|x) || p(y)), loss_y the conditional bound of
        label y, for any q(y|x). q(y|x) is the softmax of :meth:`label_scores` (the bound at
        z = E_q[z|x,y]), deterministic. The softmax of the sampled loss_y would be the optimal
        q(y|x) for exact loss_y, but with estimated ones it leans towards the labels whose draws came
        out lucky, and the estimate then overstates log p(x) (by ~0.3 nats with one sample per
        label on a small digits model); with q(y|x) fixed before the draws it is an unbiased
        estimate of a valid bound.
        """
        if self.training:
            raise DataError("cvae: training needs class labels y with every batch; this data has none")
        qs = [self.posterior(x, c) for c in range(self.num_classes)]
        w = torch.softmax(self.label_scores(x, qs), 0)  # q(y|x): (K, B), fixed before any z is drawn
        per = [self.bound(x, q, q.rsample(samples), step, c) for c, q in enumerate(qs)]  # z: (L, B, D)
        loss_k = torch.stack([t.loss for t in per])  # (K, B)
        kl_y = (w * torch.log(w * self.num_classes + 1e-30)).sum(0)  # KL(q(y|x) || uniform)
        recon = (w * torch.stack([t.recon for t in per])).sum(0)
        kl_z = (w * torch.stack([t.kl for t in per])).sum(0)
        return Terms(loss=(w * loss_k).sum(0) + kl_y, recon=recon, kl=kl_z + kl_y, extra={"kl_y": kl_y})

    @torch.no_grad()
    def label_scores(self, x: Tensor, qs: list[DiagonalGaussian] | None = None) -> Tensor:
        """log p(x | z = E_q[z|x,y], y) - KL(q(z|x,y) || p(z)) for every label y: (K, B), no
        sampling. ``qs``: the posteriors q(z|x, y) of the K labels, if already computed."""
        eye = torch.eye(self.num_classes, device=x.device, dtype=x.dtype)
        if qs is None:
            qs = [self.posterior_y(x, eye[c].expand(len(x), -1)) for c in range(self.num_classes)]
        return torch.stack([self.likelihood.log_prob(self.decode_params_y(q.mu, eye[c].expand(len(x), -1)), x)
                            - q.kl_standard_normal() for c, q in enumerate(qs)])

    @torch.no_grad()
    def log_weights(self, x: Tensor, y: Tensor | None = None, k: int = 1) -> Tensor:
        """Importance log-weights of k draws per example: (k, B); see :meth:`importance_sampler`."""
        return self.importance_sampler(x, y)(k)

    @torch.no_grad()
    def importance_sampler(self, x: Tensor, y: Tensor | None = None) -> Callable[[int], Tensor]:
        """k -> importance log-weights (k, B) of the batch x (B, *S).

        Given y: log p(x|z,y) + log p(z) - log q(z|x,y), z ~ q(z|x,y), the weights of log p(x|y).

        Without y, the weights of the label-marginal log p(x) = log sum_y p(y) p(x|y), p(y) = 1/K,
        with y drawn too: log p(x|z,y) + log p(z) + log p(y) - log q(z|x,y) - log r(y|x). The label
        proposal r (:meth:`label_proposal`) puts its mass on the labels that explain x, where a
        uniform one spends (K-1)/K of the samples on labels whose weights are negligible. r and the
        K posteriors are computed once per batch, here (K encoder and decoder passes: as costly as
        the few samples of one of the estimator's chunks). Each call draws every example's k labels
        from r by systematic sampling (one uniform offset per example and call), so the k labels
        follow r stratified: the mean of the k weights is unbiased for p(x) in any chunking of k,
        with less variance than independent draws.
        """
        if y is not None:
            oh = self.one_hot(y, len(x), x.device)  # (B, K)
            q = self.posterior_y(x, oh)

            def given(k: int) -> Tensor:
                z = q.rsample(k)  # (k, B, D)
                log_px = self.likelihood.log_prob(self.decode_params_y(z, oh), x)  # (k, B)
                return log_px + self.prior.log_prob(z) - q.log_prob(z)

            return given
        n, classes = len(x), self.num_classes
        eye = torch.eye(classes, device=x.device, dtype=x.dtype)
        qs = [self.posterior_y(x, eye[c].expand(n, classes)) for c in range(classes)]
        mu, logvar = torch.stack([q.mu for q in qs]), torch.stack([q.logvar for q in qs])  # (K, B, D)
        log_r = self.label_proposal(x, qs)  # (K, B)
        cdf = torch.cumsum(log_r.exp(), 0).T.contiguous()  # (B, K)
        cols = torch.arange(n, device=x.device)

        def marginal(k: int) -> Tensor:
            # Systematic sampling per example: u_i = (i + o) / k, label = the r-quantile of u_i.
            u = (torch.arange(k, device=x.device, dtype=cdf.dtype)[:, None]
                 + torch.rand(n, device=x.device, dtype=cdf.dtype)) / k  # (k, B)
            labels = torch.searchsorted(cdf, u.T.contiguous()).clamp_max(classes - 1).T  # (k, B)
            q = DiagonalGaussian(mu[labels, cols], logvar[labels, cols])  # q(z|x, y_ib): (k, B, D)
            z = q.mu + q.std * torch.randn_like(q.mu)  # (k, B, D), reparameterised
            log_px = self.likelihood.log_prob(self.decode_params_y(z, eye[labels]), x)  # (k, B)
            return log_px + self.prior.log_prob(z) - math.log(classes) - q.log_prob(z) - log_r.gather(0, labels)

        return marginal

    def label_proposal(self, x: Tensor, qs: list[DiagonalGaussian]) -> Tensor:
        """log r(y|x) (K, B): half the softmax of :meth:`label_scores`, half uniform. The uniform
        half keeps every label's probability >= 1/(2K), so no weight exceeds twice its value under
        a uniform proposal (defensive importance sampling, Hesterberg 1995); r depends on x alone,
        never on the z drawn."""
        half = math.log(0.5)
        scores = self.label_scores(x, qs)
        return torch.logaddexp(half + torch.log_softmax(scores, 0), torch.full_like(scores, half - math.log(len(qs))))

    # ---- using it ---------------------------------------------------------------------------

    @torch.no_grad()
    def infer_label(self, x: Tensor) -> Tensor:
        """argmax_y [log p(x | z = E_q[z|x,y], y) - KL(q(z|x,y) || p(z))], deterministic: (B,)."""
        return self.label_scores(x).argmax(0)

    @torch.no_grad()
    def reconstruct(self, x: Tensor, y: Tensor | int | None = None) -> Tensor:
        """E[x | z = E_q[z|x, y], y]; without y, for the label :meth:`infer_label` picks."""
        y = self.infer_label(x) if y is None else y
        return self.decode(self.encode(x, y), y)

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, label: int | None = None) -> Tensor:
        """``n`` draws z ~ N(0, T^2 I) decoded with ``label`` (all n), or labels 0, 1, ..., K-1, 0, ..."""
        device = next(self.parameters()).device
        if label is not None and not 0 <= int(label) < self.num_classes:
            raise VaekitError(f"--label {label}: this cvae has labels 0..{self.num_classes - 1}")
        y = torch.arange(n, device=device) % self.num_classes if label is None else int(label)
        return self.decode(temperature * self.prior.sample(n, self.latent_dim, device), y)
