"""The contractive autoencoder (Rifai et al. 2011, "Contractive auto-encoders", sec. 2): the loss adds
``weight * ||J_f(x)||_F^2``, the squared Frobenius norm of the encoder's Jacobian dz/dx (Dz x P).

Two ways to compute the penalty (``model.options.jacobian``):

* ``exact``: for an MLP encoder z = W_L s(... s(W_1 x)), J = W_L S_{L-1} W_{L-1} ... S_1 W_1 with
  S_l = diag(s'(a_l)); the product is formed from the code side down to the first hidden layer and
  the last factor uses the Gram matrix G = W_1 W_1^T: ||J||_F^2 = <(M S_1)^T (M S_1), G>. With one
  hidden layer this is s'^T (G_1 o G_2) s' with G_2 = W_2^T W_2 (Rifai et al.'s sigmoid closed form,
  generalised), O(h^2) per example. Other encoders (conv) get the exact Jacobian from
  ``torch.func.vmap(torch.func.jacrev(...))``: exact but Dz backward passes per example.
* ``stochastic``: Hutchinson's estimator ||J||_F^2 = tr(J J^T) = E_v[||J^T v||^2] for Rademacher
  v in code space (E[v v^T] = I), each ``J^T v`` one vector-Jacobian product by autograd; unbiased,
  ``projections`` draws averaged. Its cost does not grow with Dz or the input size.
* ``auto`` (default): ``exact`` for MLP encoders (cheap closed form), ``stochastic`` for conv.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..errors import ConfigError
from ..guard import all_of, any_of, key, when, when_option
from ..nn import MLPEncoder
from .ae import Autoencoder
from .base import register


def _slope(act: nn.Module, a: Tensor) -> Tensor:
    """s'(a) elementwise (B, h) for an elementwise activation: a JVP with an all-ones tangent."""
    return torch.func.jvp(act, (a,), (torch.ones_like(a),))[1]


def mlp_jacobian_sqnorm(net: nn.Sequential, x: Tensor) -> Tensor:
    """||dz/dx||_F^2 per example (B,) for an MLP ``[Linear, act, ..., Linear]`` and inputs x (B, P)."""
    linears = [m for m in net if isinstance(m, nn.Linear)]
    acts = [m for m in net if not isinstance(m, nn.Linear)]
    w1 = linears[0].weight  # (h1, P)
    if len(linears) == 1:  # a linear encoder: J = W_1 for every x
        return (w1**2).sum().expand(x.shape[0])
    slopes = []  # s'(a_l), (B, h_l) for l = 1 .. L-1
    h = x
    for lin, act in zip(linears[:-1], acts):
        a = lin(h)  # (B, h_l)
        slopes.append(_slope(act, a))
        h = act(a)
    gram = w1 @ w1.T  # G_1 = W_1 W_1^T, (h1, h1)
    w_last = linears[-1].weight  # (Dz, h_{L-1})
    if len(slopes) == 1:  # J = W_2 S_1 W_1: ||J||^2 = s^T (G_1 o W_2^T W_2) s
        s = slopes[0]  # (B, h1)
        return ((s @ (gram * (w_last.T @ w_last))) * s).sum(-1)
    m = w_last.expand(x.shape[0], *w_last.shape)  # (B, Dz, h_{L-1})
    for l in range(len(slopes) - 1, 0, -1):
        m = (m * slopes[l][:, None, :]) @ linears[l].weight  # (B, Dz, h_l)
    m = m * slopes[0][:, None, :]  # M S_1, (B, Dz, h1)
    return ((m @ gram) * m).sum((1, 2))


def jacrev_sqnorm(encoder: nn.Module, x: Tensor) -> Tensor:
    """||dz/dx||_F^2 per example (B,) for any encoder, from the full per-example Jacobian."""

    def one(xi: Tensor) -> Tensor:  # (*S) -> (Dz,)
        return encoder(xi.unsqueeze(0)).squeeze(0)

    jac = torch.func.vmap(torch.func.jacrev(one))(x)  # (B, Dz, *S)
    return jac.flatten(1).pow(2).sum(-1)


def hutchinson_sqnorm(encoder: nn.Module, x: Tensor, projections: int = 1) -> Tensor:
    """An unbiased estimate (B,) of ||dz/dx||_F^2: the mean of ||J^T v||^2 over Rademacher v."""
    create = torch.is_grad_enabled()  # differentiable (for training) unless under no_grad
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        z = encoder(xg)  # (B, Dz)
        total = torch.zeros(x.shape[0], dtype=z.dtype, device=z.device)
        for i in range(projections):
            v = torch.randint(0, 2, z.shape, device=z.device).to(z.dtype) * 2 - 1  # (B, Dz), +-1
            (vjp,) = torch.autograd.grad(z, xg, v, create_graph=create, retain_graph=i < projections - 1 or create)
            total = total + vjp.flatten(1).pow(2).sum(-1)  # ||J^T v||^2 per example
    return total / projections


@dataclass
class ContractiveOptions:
    """``weight``: Rifai et al.'s lambda; ``jacobian``: how ||J||_F^2 is computed."""

    weight: float = 0.1
    jacobian: Literal["auto", "exact", "stochastic"] = "auto"
    # Rademacher vectors per example: read by the stochastic estimator only (auto picks it for conv)
    projections: int = key(1, any_of(when_option("jacobian", "stochastic"),
                                     all_of(when_option("jacobian", "auto"), when("model.arch", "conv"))))


@register("cae")
class ContractiveAutoencoder(Autoencoder):
    """An autoencoder penalised by the squared Frobenius norm of its encoder Jacobian."""

    Options = ContractiveOptions
    options: ContractiveOptions

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...]) -> None:
        super().__init__(cfg, shape)
        o = self.options
        if o.weight < 0 or o.projections < 1:
            raise ConfigError(f"model.options: cae needs weight >= 0 and projections >= 1 (got {o.weight}, {o.projections})")

    @property
    def jacobian_method(self) -> str:
        """``closed-form``, ``jacrev`` or ``stochastic``: what the penalty is computed with."""
        kind = self.options.jacobian
        mlp = isinstance(self.encoder, MLPEncoder)
        if kind == "stochastic" or (kind == "auto" and not mlp):
            return "stochastic"
        return "closed-form" if mlp else "jacrev"

    def jacobian_sqnorm(self, x: Tensor) -> Tensor:
        """||dz/dx||_F^2 per example (B,) by :attr:`jacobian_method`."""
        method = self.jacobian_method
        if method == "stochastic":
            return hutchinson_sqnorm(self.encoder, x, self.options.projections)
        if method == "jacrev":
            return jacrev_sqnorm(self.encoder, x)
        return mlp_jacobian_sqnorm(self.encoder.net, x.flatten(1))

    def penalties(self, x: Tensor, z: Tensor) -> dict[str, Tensor]:
        """``{"contractive": weight * ||J(x)||_F^2}`` per example (B,)."""
        return {"contractive": self.options.weight * self.jacobian_sqnorm(x)}
