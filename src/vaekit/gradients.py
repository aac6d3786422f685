"""Gradient estimators for E_q(z|x)[f(z)] and their variance (Kingma & Welling 2014, sec. 2.3).

Two unbiased estimators of the gradient w.r.t. the parameters phi of q_phi(z|x), one draw z each:

* ``score`` (REINFORCE, the likelihood-ratio estimator; Williams 1992; AEVB sec. 2.3):
  grad E_q[f(z)] = E_q[f(z) grad log q(z|x)]; the surrogate is f(z) log q(z|x) with z and f(z)
  held constant. ``score-baseline`` subtracts a baseline b(x) that does not depend on z, which
  keeps it unbiased (E_q[grad log q] = 0) and lowers the variance when b(x) ~ E_q[f].
* ``reparam`` (SGVB, AEVB eq. 10): z = g_phi(eps, x) with eps ~ p(eps); grad E_q[f] = E_eps[grad f(g(eps))].

:func:`gradient_variance` applies them to a VAE's ELBO: the estimators differ only on the
reconstruction term E_q[log p(x|z)]; the KL(q || N(0, I)) term is analytic, so its (identical,
deterministic) gradient adds no variance to either.
"""

from __future__ import annotations

from typing import Any, Callable, Literal

import torch
from torch import Tensor

from .distributions import Posterior
from .errors import VaekitError

Estimator = Literal["reparam", "score", "score-baseline"]
ESTIMATORS: tuple[Estimator, ...] = ("reparam", "score", "score-baseline")


def surrogate(kind: Estimator, q: Posterior, f: Callable[[Tensor], Tensor], baseline: Tensor | None = None) -> Tensor:
    """Per-example values (B,) whose gradient w.r.t. q's parameters is a one-draw estimate of
    grad E_q[f(z)]; f maps codes (B, D) to (B,). (Its value is not E_q[f]; only its gradient counts.)"""
    if kind == "reparam":
        return f(q.rsample(1)[0])  # the gradient flows through z = mu + sigma * eps
    if kind not in ("score", "score-baseline"):
        raise VaekitError(f"unknown gradient estimator '{kind}' (use one of {', '.join(ESTIMATORS)})")
    z = q.rsample(1)[0].detach()  # (B, D): no pathwise gradient
    weight = f(z).detach()  # (B,)
    if kind == "score-baseline":
        if baseline is None:
            raise VaekitError("the score-baseline estimator needs a baseline b(x)")
        weight = weight - baseline.detach()
    return weight * q.log_prob(z)  # grad = (f(z) - b) grad log q(z|x)


def _check_model(model: Any) -> None:
    # The declared capabilities, not the class: q(z|x) with no label y, and p(z) = N(0, I) for the
    # analytic KL of elbo_surrogate.
    if not model.has_posterior or model.conditional:
        raise VaekitError(
            f"gradvar: '{model.name}' has no single unconditional posterior q(z|x); "
            "use a vae-family model (vae, fullcov-vae, avae, ...)"
        )
    if not model.standard_prior:
        raise VaekitError(f"gradvar: '{model.name}' has a learned prior; gradvar needs p(z) = N(0, I)")


def elbo_surrogate(model: Any, x: Tensor, kind: Estimator) -> Tensor:
    """A scalar whose gradient w.r.t. the encoder is a one-draw estimate of grad mean_b ELBO(x_b).

    f(z) = log p(x|z) (the reconstruction term), baseline b(x) = log p(x | z = E_q[z]) (no z draw,
    so it keeps the estimator unbiased), plus the analytic -KL(q || N(0, I)).
    """
    q = model.posterior(x)

    def log_lik(z: Tensor) -> Tensor:  # (B, D) -> (B,)
        return model.likelihood.log_prob(model.decode_params(z), x)

    baseline = log_lik(q.mu).detach() if kind == "score-baseline" else None
    return (surrogate(kind, q, log_lik, baseline) - q.kl_standard_normal()).mean()


def gradient_variance(
    model: Any, x: Tensor, *, draws: int = 100, seed: int = 0, estimators: tuple[Estimator, ...] = ESTIMATORS
) -> dict[str, Any]:
    """Variance over ``draws`` one-draw gradients of the batch-mean ELBO w.r.t. the encoder's parameters.

    For each estimator: ``variance`` is the per-parameter variance across draws averaged over the
    P encoder parameters, ``mean_norm`` the norm of the mean gradient (P,), ``mean_sq_norm`` the
    mean squared norm of one draw. ``ratio`` is variance(score) / variance(reparam), and likewise
    with the baseline. Same model, same batch, same seeds for every estimator.
    """
    _check_model(model)
    if draws < 2:
        raise VaekitError(f"--draws must be at least 2 to estimate a variance (got {draws})")
    params = [p for p in model.encoder.parameters()]
    was = model.training
    model.eval()  # no dropout / batch-norm updates: every draw sees the same function
    out: dict[str, Any] = {"batch": int(x.shape[0]), "draws": draws, "parameters": sum(p.numel() for p in params)}
    for kind in estimators:
        torch.manual_seed(seed)
        mean = torch.zeros(out["parameters"], dtype=torch.float64)
        m2 = torch.zeros_like(mean)
        sq_norm = 0.0
        for i in range(draws):  # Welford's running mean and sum of squared deviations
            grads = torch.autograd.grad(elbo_surrogate(model, x, kind), params)
            g = torch.cat([gr.reshape(-1) for gr in grads]).double()  # (P,)
            delta = g - mean
            mean += delta / (i + 1)
            m2 += delta * (g - mean)
            sq_norm += float(g.pow(2).sum())
        var = m2 / (draws - 1)  # (P,) unbiased per-parameter variance
        out[kind] = {"variance": float(var.mean()), "mean_norm": float(mean.norm()), "mean_sq_norm": sq_norm / draws}
    model.train(was)
    if "reparam" in out:
        for kind in ("score", "score-baseline"):
            if kind in out:
                out[f"ratio_{kind}"] = out[kind]["variance"] / out["reparam"]["variance"]
    return out
