"""Posterior diagnostics: KL per latent dimension, active units, mutual information, collapse.

* KL per dimension: the analytic KL(q(z_d|x) || N(0, 1)) (Kingma & Welling, appendix B),
  averaged over the data; only for a diagonal Gaussian posterior and a N(0, I) prior.
* Active units (Burda et al. 2015, sec. 5.2): unit u is active when A_u = Cov_x(E_q[z_u]) > 0.01,
  i.e. the variance over the data of the posterior mean of z_u. ``active_units`` counts the units of
  ``model.posterior``; a model with more than one stochastic layer (``model.latent_layers``, e.g.
  the hvae's z1 and z2) is also counted per layer from ``model.latent_means``, as Burda et al.
  count them per layer for their two-layer models (``active_units_by_layer``).
* Mutual information I(x; z) under the aggregate posterior q(z) = (1/N) sum_n q(z|x_n) of the N
  evaluated points (Hoffman & Johnson 2016, "ELBO surgery", eq. 3):

      I = E_x[KL(q(z|x) || p(z))] - KL(q(z) || p(z)) = E_n E_{z ~ q(z|x_n)} [log q(z|x_n) - log q(z)],

  estimated with one z per point and the exact mixture log q(z) over all N points. It lies in
  [0, log N]: values near log N mean the codes identify each datapoint.
* Collapse: a warning when no unit is active or the total KL is below 0.1 nats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..data import Split
from ..distributions import DiagonalGaussian, Posterior

ACTIVE_THRESHOLD = 0.01  # Burda et al. 2015, sec. 5.2
COLLAPSE_KL = 0.1  # nats


@dataclass
class Diagnostics:
    kl_per_dim: list[float] | None  # (D,) nats, averaged over the data; None when not analytic
    activity: list[float]  # (D,) Cov_x(E_q[z_u])
    active_units: int
    mi: float | None  # nats
    mi_max: float  # log N, the largest value the estimator can take
    warning: str | None
    # Only for a model with more than one stochastic layer (None otherwise), keyed by layer name
    # (model.latent_layers): Cov_x(E_q[u]) of each layer's units and how many exceed the threshold.
    activity_by_layer: dict[str, list[float]] | None = None
    active_units_by_layer: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kl_per_dim": self.kl_per_dim,
            "activity": self.activity,
            "active_units": self.active_units,
            "active_threshold": ACTIVE_THRESHOLD,
            "latent_dim": len(self.activity),
            "mi": self.mi,
            "mi_max": self.mi_max,
            "mi_method": "Hoffman & Johnson 2016: E_x KL(q(z|x)||p(z)) - KL(q(z)||p(z)), q(z) the "
            "mixture of the evaluated posteriors, one z per point",
            "warning": self.warning,
        }
        if self.activity_by_layer is not None:  # absent, not null, for a one-layer model
            out["activity_by_layer"] = self.activity_by_layer
            out["active_units_by_layer"] = self.active_units_by_layer
            out["latent_dim_by_layer"] = {k: len(v) for k, v in self.activity_by_layer.items()}
        return out


def mixture_log_prob(z: Tensor, mu: Tensor, logvar: Tensor, chunk: int = 512) -> Tensor:
    """log (1/N) sum_n N(z_m; mu_n, diag exp(logvar_n)) for z (M, D), mu/logvar (N, D): (M,).

    (z - mu)^2 / var expands to z^2 . (1/var) - 2 z . (mu/var) + mu^2/var: two matmuls per chunk
    of z instead of an (M, N, D) tensor. In float64 the cancellation costs ~1e-16 * max z^2/var
    nats: negligible for VAE codes (|mu| of a few units, std >= 1e-3).
    """
    inv = torch.exp(-logvar)  # (N, D)
    const = -0.5 * (logvar.shape[1] * math.log(2 * math.pi) + logvar.sum(1) + (mu * mu * inv).sum(1))  # (N,)
    out = []
    for zc in z.split(chunk):
        quad = (zc * zc) @ inv.T - 2 * zc @ (mu * inv).T  # (m, N)
        out.append(torch.logsumexp(const - 0.5 * quad, dim=1))
    return torch.cat(out) - math.log(mu.shape[0])


def mutual_information(mu: Tensor, logvar: Tensor, seed: int = 0) -> float:
    """I(x; z) under the aggregate posterior of the N points with posteriors N(mu_n, exp(logvar_n))."""
    g = torch.Generator(device=mu.device).manual_seed(seed)
    mu, logvar = mu.double(), logvar.double()
    eps = torch.randn(mu.shape, generator=g, device=mu.device, dtype=mu.dtype)
    z = mu + torch.exp(0.5 * logvar) * eps  # (N, D)
    log_q_own = DiagonalGaussian(mu, logvar).log_prob(z)  # (N,)
    return float((log_q_own - mixture_log_prob(z, mu, logvar)).mean())


def activity_of(mu: Tensor) -> Tensor:
    """A_u = Cov_x(E_q[u]) of posterior means mu (N, D): the (biased, 1/N) variance over the data
    (Burda et al. sec. 5.2); zeros for a single point, where nothing varies."""
    return mu.var(0, unbiased=False) if mu.shape[0] > 1 else torch.zeros(mu.shape[1], dtype=mu.dtype)


def collapse_warning(active: int, total_kl: float | None) -> str | None:
    """The posterior-collapse warning, or None."""
    if active == 0:
        return ("posterior collapse: no active latent unit (Cov_x E_q[z_u] <= 0.01 for every u); "
                "the decoder ignores z")
    if total_kl is not None and total_kl < COLLAPSE_KL:
        return f"posterior collapse: total KL {total_kl:.3f} < {COLLAPSE_KL} nats; q(z|x) ~= p(z)"
    return None


@torch.no_grad()
def posterior_diagnostics(
    model: nn.Module, split: Split, *, batch_size: int = 2048, seed: int = 0, mi_points: int = 10000
) -> Diagnostics:
    """KL per dimension, active units (per stochastic layer too, when the model has more than one),
    I(x; z) (on the first ``mi_points`` points) and collapse."""
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    mus, logvars, kls = [], [], []
    diag = True
    # One layer: its means are posterior(x).mu, already collected; no second pass for them.
    layers: dict[str, list[Tensor]] | None = (
        {name: [] for name in model.latent_layers} if len(model.latent_layers) > 1 else None
    )
    try:
        for start in range(0, len(split), batch_size):
            x = split.x[start : start + batch_size].to(device)
            q: Posterior = model.posterior(x)
            mus.append(q.mu.double())  # (B, D)
            per_dim = q.kl_standard_normal_per_dim()  # None for a posterior with correlated dimensions
            diag = diag and per_dim is not None
            if diag:
                logvars.append(torch.log(q.marginal_var).double())  # (B, D)
                kls.append(per_dim.double().sum(0))  # (D,)
            if layers is not None:
                for name, m in model.latent_means(x).items():
                    layers[name].append(m.double())  # (B, D_layer)
    finally:
        model.train(was)
    mu = torch.cat(mus)  # (N, D)
    n = mu.shape[0]
    activity = activity_of(mu)
    active = int((activity > ACTIVE_THRESHOLD).sum())
    by_layer = None if layers is None else {name: activity_of(torch.cat(ms)) for name, ms in layers.items()}
    analytic = diag and model.standard_prior
    kl_dim = (torch.stack(kls).sum(0) / n).tolist() if analytic else None
    mi = None
    if diag:
        m = min(n, mi_points)
        mi = mutual_information(mu[:m], torch.cat(logvars)[:m], seed)
    total = None if kl_dim is None else sum(kl_dim)
    # Activity is a variance over the data: with one datapoint there is nothing to judge collapse by.
    warning = collapse_warning(active, total) if n > 1 else None
    if warning is None and by_layer is not None and n > 1:  # a whole layer unused (e.g. the hvae's z2)
        idle = [name for name, a in by_layer.items() if not (a > ACTIVE_THRESHOLD).any()]
        if idle:
            warning = (f"posterior collapse in layer {', '.join(idle)}: no active unit there "
                       "(Cov_x E_q[u] <= 0.01 for every u); the model does not use that layer")
    return Diagnostics(
        kl_dim, activity.tolist(), active, mi, math.log(min(n, mi_points)), warning,
        activity_by_layer=None if by_layer is None else {k: a.tolist() for k, a in by_layer.items()},
        active_units_by_layer=None if by_layer is None else {
            k: int((a > ACTIVE_THRESHOLD).sum()) for k, a in by_layer.items()},
    )


__all__ = [
    "ACTIVE_THRESHOLD",
    "COLLAPSE_KL",
    "Diagnostics",
    "activity_of",
    "collapse_warning",
    "mixture_log_prob",
    "mutual_information",
    "posterior_diagnostics",
]
