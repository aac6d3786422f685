"""The VAE of Kingma & Welling (2014): Gaussian encoder, any likelihood, a prior, the SGVB bound.

Variants override one hook — ``kl_term`` (estimator), ``kl_weight`` (beta, warm-up),
``kl_penalty`` (capacity, free bits), ``make_prior`` (VampPrior, mixtures), ``bound`` (IWAE),
``make_encoder`` + ``posterior`` (full covariance), ``make_decoder`` — and never ``forward``.

A conditional variant (the cvae: q(z|x, y), p(x|z, y)) plugs in through the same hooks. Every
label-aware hook takes the batch's labels as an optional last argument ``y`` (B,), which the
unconditional families ignore: ``posterior(x, y)``, ``decode_params(z, y)``, ``bound(x, q, z, step,
y)``, and the public ``encode``/``decode``/``reconstruct`` (``sample`` takes ``label``). The variant
sets ``conditional = True``, reads y in ``posterior`` and ``decode_params``, and implements
``unlabelled_terms``: what ``forward`` returns for a batch without labels (the base raises).

It also provides the label-level interface that code outside training (ONNX export) calls when
``model.conditional``, declared here so that callers never probe the concrete type:
``num_classes`` (K: labels are 0..K-1), ``posterior_y(x, onehot)`` (q(z|x, y) for x (B, *S) and a
float one-hot y (B, K)) and ``decode_params_y(z, onehot)`` (the decoder output for z (..., B, D) and
y (B, K)). Both take y as floats, so a soft label (a probability vector over the K classes) goes
through the same computation. On an unconditional model all three are a one-line error.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..distributions import DiagonalGaussian, Prior, StandardNormal
from ..errors import VaekitError
from ..likelihoods import build_likelihood
from ..nn import build_decoder, build_encoder
from .base import Model, Terms, register


@register("vae")
class VAE(Model):
    """Encoder -> q(z|x) -> z -> decoder -> p(x|z), trained on the (beta-weighted) negative ELBO."""

    has_posterior = True
    has_density = True
    reads = frozenset({"beta", "kl", "samples"})

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...]) -> None:
        super().__init__(cfg, shape)
        self.likelihood = build_likelihood(cfg.likelihood, len(shape), cfg)
        self.encoder = self.make_encoder()
        self.decoder = self.make_decoder()
        self.prior = self.make_prior()

    # ---- hooks ------------------------------------------------------------------------------

    def make_encoder(self) -> nn.Module:
        """x (B, *S) -> the posterior's parameters: [mu, logvar] (B, 2D) here."""
        return build_encoder(self.cfg, self.shape, 2 * self.cfg.latent_dim)

    def make_decoder(self) -> nn.Module:
        """z (..., B, D) -> the likelihood's parameters (..., B, *S)."""
        return build_decoder(self.cfg, self.shape, self.cfg.latent_dim, self.likelihood.channels)

    def make_prior(self) -> Prior:
        """p(z); N(0, I) here."""
        return StandardNormal()

    def kl_weight(self, step: int) -> float:
        """The weight of the KL term at optimiser step ``step``: beta (Higgins et al. 2017)."""
        return self.cfg.beta

    def kl_term(self, q: DiagonalGaussian, z: Tensor) -> Tensor:
        """KL(q(z|x) || p(z)) per example, (B,), from the posterior and its samples z (L, B, D).

        Estimator B (Kingma & Welling eq. 7, KL from Appendix B) uses the analytic KL when the prior
        is N(0, I); estimator A (eq. 6) averages log q(z|x) - log p(z) over the L samples.
        """
        if self.cfg.kl == "analytic" and self.prior.standard:
            return q.kl_standard_normal()
        return (q.log_prob(z) - self.prior.log_prob(z)).mean(0)

    # ---- the model --------------------------------------------------------------------------

    def posterior(self, x: Tensor, y: Tensor | int | None = None) -> DiagonalGaussian:
        """q(z|x) for a batch x (B, *S); labels y (B,) or one int are for conditional variants
        (ignored here)."""
        mu, logvar = self.encoder(x).chunk(2, dim=-1)  # (B, D) each
        return DiagonalGaussian(mu, logvar)

    def decode_params(self, z: Tensor, y: Tensor | int | None = None) -> Tensor:
        """Decoder output for codes (..., B, D); labels y (B,) or one int are for conditional
        variants (ignored here)."""
        return super().decode_params(z)

    def forward(
        self, x: Tensor, y: Tensor | None = None, *, samples: int | None = None, step: int = 0, reduce: bool = True
    ) -> Terms:
        """The negative ELBO and its parts for a batch x (B, *S) with labels y (B,) or None, with L
        posterior samples; a conditional variant without labels answers with ``unlabelled_terms``."""
        L = samples or self.default_samples
        if y is None and self.conditional:
            terms = self.unlabelled_terms(x, L, step)
        else:
            q = self.posterior(x, y)
            z = q.rsample(L)  # (L, B, D)
            terms = self.bound(x, q, z, step, y)
        return terms.mean() if reduce else terms

    @property
    def default_samples(self) -> int:
        """L when the caller gives none: ``model.samples`` (IWAE: its k)."""
        return self.cfg.samples

    def bound(self, x: Tensor, q: DiagonalGaussian, z: Tensor, step: int, y: Tensor | int | None = None) -> Terms:
        """Per-example terms (B,) of the objective from x (B, *S), q(z|x) and its samples z (L, B, D),
        and the labels y (B,) of a conditional variant (None otherwise).

        The (beta-weighted) negative ELBO here; IWAE overrides it with the k-sample bound.
        """
        recon = -self.likelihood.log_prob(self.decode_params(z, y), x).mean(0)  # (B,)
        kl = self.kl_term(q, z)  # (B,)
        return Terms(loss=recon + self.kl_penalty(kl, q, z, step), recon=recon, kl=kl)

    def unlabelled_terms(self, x: Tensor, samples: int, step: int) -> Terms:
        """Per-example terms (B,) for a batch without labels, of a ``conditional`` variant: the
        bound with y marginalised, or a one-line error where there is none (e.g. in training)."""
        raise VaekitError(f"model '{self.name}' is conditional on labels but defines no bound without them")

    def kl_penalty(self, kl: Tensor, q: DiagonalGaussian, z: Tensor, step: int) -> Tensor:
        """The KL part of the loss per example (B,): ``kl_weight(step) * kl`` here; capacity
        control and free bits replace it, so ``kl`` itself always reports the true KL."""
        return self.kl_weight(step) * kl

    def log_weights(self, x: Tensor, y: Tensor | None, k: int) -> Tensor:
        """Importance log-weights log p(x, z_i) - log q(z_i|x), z_i ~ q(z|x), i = 1..k: (k, B).

        What ``vaekit.evaluate`` turns into the importance-sampled log p(x) (Burda et al. 2015,
        eq. 8). Variants with another prior, posterior or conditioning override this one method.
        """
        q = self.posterior(x)
        z = q.rsample(k)  # (k, B, D)
        log_px_z = self.likelihood.log_prob(self.decode_params(z), x)  # (k, B)
        return log_px_z + self.prior.log_prob(z) - q.log_prob(z)

    # ---- the conditional variant's label-level interface (see the module docstring) -----------

    def _not_conditional(self, what: str) -> VaekitError:
        return VaekitError(f"{what}: a '{self.name}' model is not conditional on labels (train a cvae)")

    @property
    def num_classes(self) -> int:
        """K, the number of labels 0..K-1 of a conditional variant; an error here."""
        raise self._not_conditional("num_classes")

    def posterior_y(self, x: Tensor, onehot: Tensor) -> DiagonalGaussian:
        """q(z|x, y) for x (B, *S) and a float one-hot (or soft) y (B, K), of a conditional variant;
        an error here."""
        raise self._not_conditional("posterior_y")

    def decode_params_y(self, z: Tensor, onehot: Tensor) -> Tensor:
        """Decoder output for codes z (..., B, D) and a float one-hot (or soft) y (B, K), of a
        conditional variant; an error here."""
        raise self._not_conditional("decode_params_y")

    # ---- using it ---------------------------------------------------------------------------

    @torch.no_grad()
    def encode(self, x: Tensor, y: Tensor | int | None = None) -> Tensor:
        """The posterior mean E_q[z|x] (B, D): a deterministic code (labels y: see ``posterior``)."""
        return self.posterior(self.as_batch(x), y).mu

    @torch.no_grad()
    def decode(self, z: Tensor, y: Tensor | int | None = None) -> Tensor:
        """E[x|z] for codes (N, D); labels y (N,) or one int are for conditional variants."""
        return self.likelihood.mean(self.decode_params(z, y))

    @torch.no_grad()
    def reconstruct(self, x: Tensor, y: Tensor | int | None = None) -> Tensor:
        """E[x | z = encode(x, y), y], shaped (B, *S); labels y (B,) are for conditional variants."""
        return self.decode(self.encode(x, y), y)

    @property
    def standard_prior(self) -> bool:
        return self.prior.standard

    def latent_prior(self) -> dict[str, Tensor] | None:
        """N(0, I) as mean and Cholesky factor; None for any other prior (e.g. the VampPrior)."""
        if not self.prior.standard:
            return None
        return {"mean": torch.zeros(self.latent_dim), "scale_tril": torch.eye(self.latent_dim)}

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, label: int | None = None) -> Tensor:
        """``n`` draws z ~ p(z), scaled by ``temperature``, decoded to E[x|z]; ``label`` is for
        conditional variants, an error here."""
        if label is not None:
            raise VaekitError(f"label={label}: a '{self.name}' model is not conditional on labels")
        device = next(self.parameters()).device
        return self.decode(temperature * self.prior.sample(n, self.latent_dim, device))
