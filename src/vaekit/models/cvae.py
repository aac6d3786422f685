"""The conditional VAE (Sohn, Lee & Yan 2015, "Learning Structured Output Representation using
Deep Conditional Generative Models"; Kingma et al. 2014, "Semi-supervised learning with deep
generative models", M2 with observed labels): q(z|x, y), p(z) = N(0, I), p(x|z, y).

The label enters as a one-hot vector y (B, K): concatenated to the flattened input (MLP) or as K
constant extra input channels (conv) for the encoder, and concatenated to z for the decoder.
Training maximises the conditional ELBO  log p(x|y) >= E_q[log p(x|z,y)] - KL(q(z|x,y) || p(z)).

Without labels (evaluation of unlabelled data, the registry's ``model(x)``) the model is scored
as an unconditional one with a uniform p(y): log p(x) >= log sum_y p(y) exp(ELBO(x, y)), i.e. the
ELBO with the optimal q(y|x) = softmax_y ELBO(x, y); ``extra["kl_y"]`` = KL(q(y|x) || p(y)).
Training without labels is an error. ``encode``/``reconstruct`` without labels use the label whose
bound (at z = posterior mean) is highest; ``sample(n)`` without a label cycles through 0..K-1.

It has no ``forward`` of its own: the VAE's forward passes y to the label-aware hooks
(``posterior``, ``decode_params``, ``bound``) and, without labels, calls ``unlabelled_terms``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

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
        uniform p(y); with labels, ``forward`` is the VAE's with y passed to the hooks."""
        if self.training:
            raise DataError("cvae: training needs class labels y with every batch; this data has none")
        per = []
        for c in range(self.num_classes):  # the conditional bound -log p(x|y=c) for every label
            q = self.posterior(x, c)
            per.append(self.bound(x, q, q.rsample(samples), step, c))  # z: (L, B, D)
        loss_k = torch.stack([t.loss for t in per])  # (K, B)
        w = torch.softmax(-loss_k, 0)  # q(y|x), optimal for the bound
        kl_y = (w * torch.log(w * self.num_classes + 1e-30)).sum(0)  # KL(q(y|x) || uniform)
        recon = (w * torch.stack([t.recon for t in per])).sum(0)
        kl_z = (w * torch.stack([t.kl for t in per])).sum(0)
        # sum_y w (loss_y) + KL(w || U) = -log sum_y p(y) exp(-loss_y): the marginal bound.
        return Terms(loss=(w * loss_k).sum(0) + kl_y, recon=recon, kl=kl_z + kl_y, extra={"kl_y": kl_y})

    @torch.no_grad()
    def log_weights(self, x: Tensor, y: Tensor | None = None, k: int = 1) -> Tensor:
        """Importance log-weights log p(x|z,y) + log p(z) - log q(z|x,y), z ~ q(z|x,y): (k, B).

        Without y the proposal is q(y, z|x) = U(y) q(z|x, y) with p(y) = U(y), so the weights are
        the same expression with y drawn too: row i uses label (o + i) mod K for a random offset o,
        i.e. every row's label is uniform (unbiased for log p(x) in any chunking) and the labels are
        balanced within the k rows (stratified: lower variance than independent draws).
        """
        if y is not None:
            counts = {None: k}
        else:
            offset = int(torch.randint(self.num_classes, ()))
            labels = (offset + torch.arange(k)) % self.num_classes  # (k,)
            counts = {c: int((labels == c).sum()) for c in range(self.num_classes)}
        out = []
        for c, n_c in counts.items():
            if n_c == 0:
                continue
            oh = self.one_hot(y if c is None else c, len(x), x.device)  # (B, K)
            q = self.posterior_y(x, oh)
            z = q.rsample(n_c)  # (n_c, B, D)
            log_px = self.likelihood.log_prob(self.decode_params_y(z, oh), x)  # (n_c, B)
            out.append(log_px + self.prior.log_prob(z) - q.log_prob(z))
        return torch.cat(out)  # (k, B)

    # ---- using it ---------------------------------------------------------------------------

    @torch.no_grad()
    def infer_label(self, x: Tensor) -> Tensor:
        """argmax_y [log p(x | z = E_q[z|x,y], y) - KL(q(z|x,y) || p(z))], deterministic: (B,)."""
        scores = []
        for c in range(self.num_classes):
            oh = self.one_hot(c, len(x), x.device)
            q = self.posterior_y(x, oh)
            scores.append(self.likelihood.log_prob(self.decode_params_y(q.mu, oh), x) - q.kl_standard_normal())
        return torch.stack(scores).argmax(0)

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
