"""Importance-sampled log-likelihood log p(x), and what the number means.

The estimator (Burda et al. 2015, "Importance weighted autoencoders", eq. 8; Rezende et al. 2014,
appendix E) with the encoder's posterior as the proposal:

    log p(x) ~= log (1/k) sum_i w_i,   w_i = p(x|z_i) p(z_i) / q(z_i|x),   z_i ~ q(z|x).

It is a stochastic lower bound whose bias shrinks as k grows (the ELBO is k = 1). The model supplies
the log-weights through ``importance_sampler(x, y)``, a function k -> (k, B) per batch (by default
its ``log_weights(x, y, k)``), so variants with other priors, posteriors or conditioning plug in
without touching this file. Images and samples are
batched together: a batch of B images takes k samples in chunks of ``kc`` (at most ``max_elements``
decoder outputs per chunk, bounding memory), and the logsumexp is accumulated across chunks in
float64, so the result does not depend on the chunking.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import Split
from ..likelihoods import Bernoulli, Gaussian, LearnedGaussian, Likelihood
from ..errors import VaekitError


@dataclass
class NLLResult:
    """The importance-sampled negative log-likelihood of a split, in nats per datapoint."""

    nll: float  # -mean_n log p^(x_n)
    se: float  # std_n(log p^(x_n)) / sqrt(N): the standard error over the test images
    mc_se: float  # delta-method Monte-Carlo SE of the mean: sqrt(sum_n Var(w_n)/(k mean(w_n)^2)) / N
    ess: float  # mean effective sample size (sum w)^2 / sum w^2, out of k
    k: int
    n: int
    per_example: Tensor = field(repr=False)  # (N,) float64 log p^(x_n)


def logmeanexp_chunks(chunks: Iterator[Tensor], k: int) -> tuple[Tensor, Tensor, Tensor]:
    """Stream (kc, B) log-weight chunks; return log mean w, log mean w^2 and the ESS, each (B,)."""
    acc = acc2 = None
    for lw in chunks:
        lw = lw.double()
        s1, s2 = torch.logsumexp(lw, 0), torch.logsumexp(2 * lw, 0)  # (B,)
        acc = s1 if acc is None else torch.logaddexp(acc, s1)
        acc2 = s2 if acc2 is None else torch.logaddexp(acc2, s2)
    assert acc is not None and acc2 is not None, "k must be at least 1"
    ess = torch.exp(2 * acc - acc2)  # (sum w)^2 / sum w^2
    return acc - math.log(k), acc2 - math.log(k), ess


@torch.no_grad()
def importance_sampled_nll(
    model: nn.Module,
    split: Split,
    *,
    k: int = 1000,
    batch_size: int = 100,
    max_elements: int = 1 << 20,
    seed: int = 0,
    progress: bool = True,
    labels: bool = False,
) -> NLLResult:
    """-log p(x) estimated with k importance samples per datapoint, averaged over ``split``.

    A conditional model is scored on the label-marginal -log p(x) (its ``log_weights`` draw y);
    with ``labels`` it is given the split's labels and the estimate is -log p(x|y) instead (an
    error for an unconditional model or a split without labels).

    ``batch_size`` images share each decoder call with ``kc = max_elements // (B * D_x)`` of their
    samples (at least 1), so memory stays bounded whatever k is. The RNG is forked and seeded.
    """
    if not model.has_density:
        raise VaekitError(
            f"model '{model.name}' has no density p(x): the importance-sampled NLL needs a VAE-like "
            "model; use --k 0"
        )
    if k < 1 or batch_size < 1:
        raise VaekitError(f"--k and --batch-size must be at least 1 (got k={k}, batch size={batch_size})")
    if labels and not getattr(model, "conditional", False):
        raise VaekitError(f"model '{model.name}' is not conditional: -log p(x|y) needs a conditional model "
                          "(cvae)")
    if labels and split.y is None:
        raise VaekitError("-log p(x|y) needs labels, but this split has none")
    from ..progress import progress as make_progress

    device = next(model.parameters()).device
    was = model.training
    model.eval()
    n, per_elem = len(split), max(1, math.prod(split.x.shape[1:]))  # streamed rows index by slice only
    logp, logm2, ess = [], [], []
    what = f"IS NLL of p(x|y) (k={k})" if labels else f"IS NLL (k={k})"  # two bars for a cvae: say which
    bar = make_progress(n * k, what, enabled=progress, unit="x*z")
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), fast_bernoulli(model):
            torch.manual_seed(seed)
            for start in range(0, n, batch_size):
                x = split.x[start : start + batch_size].to(device)  # (B, *S)
                # y=None by default: a conditional model then reports the label-marginal -log p(x),
                # the number papers publish; with labels, -log p(x|y). The other models ignore y.
                y = split.y[start : start + batch_size].to(device) if labels else None
                b = x.shape[0]
                kc = max(1, min(k, max_elements // (b * per_elem)))

                draw = model.importance_sampler(x, y)  # the proposal's per-batch work, once

                def chunks() -> Iterator[Tensor]:
                    for c in range(0, k, kc):
                        lw = draw(min(kc, k - c))  # (kc, B)
                        bar.update(lw.shape[0] * b)
                        yield lw

                lp, lm2, e = logmeanexp_chunks(chunks(), k)
                logp.append(lp.cpu())
                logm2.append(lm2.cpu())
                ess.append(e.cpu())
    finally:
        bar.close()
        model.train(was)
    lp, lm2 = torch.cat(logp), torch.cat(logm2)  # (N,)
    # The delta method: Var(log mean w) ~= Var(w) / (k E[w]^2) = (E[w^2]/E[w]^2 - 1) / k per image.
    rel_var = torch.expm1(lm2 - 2 * lp).clamp_min(0) / k  # (N,)
    se = float(lp.std(unbiased=True) / math.sqrt(n)) if n > 1 else float("nan")
    return NLLResult(
        nll=float(-lp.mean()),
        se=se,
        mc_se=float(rel_var.sum().sqrt() / n),
        ess=float(torch.cat(ess).mean()),
        k=k,
        n=n,
        per_example=lp,
    )


class FastBernoulli(Bernoulli):
    """The same log p(x|z) as :class:`Bernoulli`, for evaluation without gradients.

    BCE-with-logits evaluates softplus(l) - x l through log-sigmoid with two exps and a log per
    pixel, a large share of the IS-NLL time of an MLP decoder; x l - softplus(l) computes the same
    value (softplus is stable; threshold 20 errs by < 3e-9 per pixel) with less work per pixel.
    """

    def log_prob(self, out: Tensor, x: Tensor) -> Tensor:
        return self._sum(out * x) - self._sum(F.softplus(out))  # (..., B)


@contextmanager
def fast_bernoulli(model: nn.Module) -> Iterator[None]:
    """Temporarily give a model with exactly a :class:`Bernoulli` likelihood the faster form."""
    base = getattr(model, "likelihood", None)
    if type(base) is not Bernoulli:  # subclasses (other Bernoulli-like likelihoods) keep their own
        yield
        return
    model.likelihood = FastBernoulli(base.event_dims)
    try:
        yield
    finally:
        model.likelihood = base


def is_binary(x: Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all())


def meaning(likelihood: Likelihood, x: Tensor, discretize: bool = False) -> dict[str, Any]:
    """What -log p(x) means for this likelihood and these data: a kind and a one-line label."""
    if isinstance(likelihood, Bernoulli):
        if is_binary(x):
            return {"kind": "nll", "label": "NLL in nats (binary data, Bernoulli): comparable to papers"}
        return {"kind": "bce", "label": "BCE loss on continuous pixels, not a likelihood; "
                "not comparable to published NLLs (binarize the data for that)"}
    if discretize:
        return {"kind": "discretized", "label": "NLL in nats of 8-bit pixels (discretized Gaussian); "
                "bits/dim = nats / (D ln 2)"}
    if not isinstance(likelihood, (Gaussian, LearnedGaussian)):  # a variant's own likelihood
        what = "probability (mass)" if likelihood.kind == "mass" else "density (or mixed mass/density)"
        name = type(likelihood).__name__
        return {"kind": likelihood.kind, "label": f"negative log-{what} in nats under {name}"}
    return {"kind": "density", "label": "negative log-density in nats (continuous data): depends on the "
            "pixel scale, not comparable to discrete NLLs; use --discretized for bits/dim"}


__all__ = [
    "FastBernoulli",
    "NLLResult",
    "fast_bernoulli",
    "importance_sampled_nll",
    "is_binary",
    "logmeanexp_chunks",
    "meaning",
]
