"""A mixed likelihood for tables: Gaussian numeric columns, softmax-categorical column groups.

For a row x laid out by :mod:`vaekit.data.tabular` (standardised numerics, optional observed
indicators, one-hot groups) and decoder outputs ``out`` of the same width D:

    log p(x|z) = sum_numeric m_j * log N(x_j; out_j, sigma_j^2)
               + sum_groups  sum_k x_gk * log softmax(out_g)_k

``m_j`` is the observed indicator (1 when the column has none), so a masked gap contributes
nothing, and a missing categorical cell is an all-zero one-hot, which contributes nothing either.
``sigma_j = min_sigma + softplus(s_j)`` is one learned scale per numeric column (homoscedastic).
Indicator positions are inputs only: their decoder outputs are ignored.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import tabular
from ..errors import ConfigError
from ..registry import LIKELIHOODS
from .base import LOG_2PI, Likelihood

if TYPE_CHECKING:
    from ..config import ModelConfig


@LIKELIHOODS.register("mixed")
class MixedLikelihood(Likelihood):
    """p(x|z) for one encoded table row (D,); see the module docstring."""

    reads = frozenset({"min_sigma", "columns"})
    table = True

    def __init__(self, columns: list[dict[str, Any]], min_sigma: float = 0.01) -> None:
        super().__init__(event_dims=1)
        if not columns:
            raise ConfigError("model.likelihood=mixed needs a table: train on --data csv (model.columns is empty)")
        num, mask, groups = [], [], []
        for c, at in zip(columns, tabular.offsets(columns)):
            if c["type"] == "numeric":
                num.append(at)
                mask.append(at + 1 if c.get("masked") else -1)
            else:
                groups.append((at, len(c["levels"])))
        at = tabular.width(columns)
        self.width, self.groups, self.min_sigma = at, groups, min_sigma
        self.register_buffer("num", torch.tensor(num, dtype=torch.long), persistent=False)  # (Dn,)
        self.register_buffer("mask", torch.tensor(mask, dtype=torch.long), persistent=False)  # (Dn,)
        self.raw_sigma = nn.Parameter(torch.full((len(num),), math.log(math.e - 1)))  # sigma = 1 + floor

    @classmethod
    def from_config(cls, event_dims: int, cfg: ModelConfig) -> "MixedLikelihood":
        """The layout from ``model.columns``, which :func:`vaekit.data.resolve_for_data` fills in from
        the table before the model is built."""
        if event_dims != 1:
            raise ConfigError("model.likelihood=mixed models table rows (N, D); this data has images")
        return cls(list(cfg.columns), cfg.min_sigma)

    def sigma(self) -> Tensor:  # (Dn,)
        return self.min_sigma + F.softplus(self.raw_sigma)

    def log_prob(self, out: Tensor, x: Tensor) -> Tensor:
        """out (..., B, D), x (B, D) -> (..., B)."""
        total = out.new_zeros(out.shape[:-1])
        if len(self.num):
            mu, xn, s = out[..., self.num], x[..., self.num], self.sigma()  # (..., B, Dn), (B, Dn), (Dn,)
            ll = -0.5 * ((xn - mu) / s) ** 2 - torch.log(s) - 0.5 * LOG_2PI
            total = total + (ll * self._numeric_observed(x)).sum(-1)
        for start, k in self.groups:
            logp = torch.log_softmax(out[..., start : start + k], dim=-1)  # (..., B, k)
            total = total + (x[..., start : start + k] * logp).sum(-1)
        return total

    def observed(self, x: Tensor) -> Tensor:
        """Observed columns per row (B,) of the table (one per numeric or categorical column), for
        rows x (B, D): a masked numeric gap and an all-zero one-hot are the missing ones."""
        count = x.new_zeros(x.shape[0])
        if len(self.num):
            count = count + self._numeric_observed(x).sum(-1)
        for start, k in self.groups:
            count = count + x[:, start : start + k].sum(-1)
        return count

    def missing_cost(self, out: Tensor, x: Tensor) -> Tensor:
        """The expected -log p of each row's missing cells under p(x|z) itself, summed: (B,) for
        decoder outputs ``out`` (B, D) and rows x (B, D); 0 for a complete row.

        A missing numeric cell costs the entropy of N(out_j, sigma_j^2), log sigma_j + (log 2 pi + 1) / 2;
        a missing categorical cell the entropy of softmax(out_g). So a gap costs what a typical
        value would, given the rest of the row.
        """
        cost = out.new_zeros(x.shape[0])
        if len(self.num):
            entropy = torch.log(self.sigma()) + 0.5 * (LOG_2PI + 1)  # (Dn,)
            cost = cost + ((1 - self._numeric_observed(x)) * entropy).sum(-1)
        for start, k in self.groups:
            logp = torch.log_softmax(out[:, start : start + k], dim=-1)  # (B, k)
            gone = 1 - x[:, start : start + k].sum(-1)  # (B,): 1 when the one-hot is all zeros
            cost = cost + gone * -(logp.exp() * logp).sum(-1)
        return cost

    def _numeric_observed(self, x: Tensor) -> Tensor:
        """(B, Dn): the observed indicator of each numeric column (1 for columns without gaps)."""
        return torch.where(self.mask >= 0, x[..., self.mask.clamp(min=0)], torch.ones_like(x[..., self.num]))

    @property
    def columns(self) -> int:
        """Columns of the table (numeric + categorical), observed or not."""
        return len(self.num) + len(self.groups)

    def mean(self, out: Tensor) -> Tensor:
        """Numeric means, category probabilities, indicators set to 1 (observed)."""
        m = out.clone()
        if len(self.num):
            m[..., self.mask[self.mask >= 0]] = 1.0
        for start, k in self.groups:
            m[..., start : start + k] = torch.softmax(out[..., start : start + k], dim=-1)
        return m

    def sample(self, out: Tensor) -> Tensor:
        x = self.mean(out)
        if len(self.num):
            x[..., self.num] = out[..., self.num] + self.sigma() * torch.randn_like(out[..., self.num])
        for start, k in self.groups:
            probs = x[..., start : start + k].reshape(-1, k)
            pick = torch.multinomial(probs, 1).view(*out.shape[:-1])
            x[..., start : start + k] = F.one_hot(pick, k).to(out.dtype)
        return x

    @property
    def kind(self) -> str:
        return "density" if len(self.num) else "mass"


__all__ = ["MixedLikelihood"]
