"""Likelihoods p(x|z), registered by name: ``model.likelihood`` selects one.

======================  ==========================================================  ==================
name                    p(x|z)                                                      module
======================  ==========================================================  ==================
``bernoulli``           Bernoulli on logits (binary or [0, 1] pixels)                :mod:`.pixels`
``gaussian``            Gaussian, fixed ``model.sigma``                              :mod:`.pixels`
``gaussian-learned``    Gaussian, learned variance floored at ``model.min_sigma``    :mod:`.pixels`
``mixed``               a table: Gaussian numeric columns, categorical groups        :mod:`.mixed`
======================  ==========================================================  ==================

A new one is a :class:`Likelihood` subclass registered with :func:`register_likelihood`; it
declares the model-config keys it reads (``reads``) and whether it models table rows (``table``),
and overrides :meth:`Likelihood.from_config` when it reads any. Nothing else changes: the config
accepts the name, the guard the keys it reads, and every model family builds it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..registry import LIKELIHOODS
from .base import LOG_2PI, Likelihood
from .pixels import Bernoulli, Gaussian, LearnedGaussian
from .mixed import MixedLikelihood

if TYPE_CHECKING:
    from ..config import ModelConfig

register_likelihood = LIKELIHOODS.register


def build_likelihood(name: str, event_dims: int, cfg: ModelConfig) -> Likelihood:
    """The likelihood registered as ``name`` (``cfg.likelihood``) for data of ``event_dims``
    dimensions per example (3 for images, 1 for vectors), configured from the model config."""
    return LIKELIHOODS.lookup(name).from_config(event_dims, cfg)


__all__ = ["LIKELIHOODS", "LOG_2PI", "Bernoulli", "Gaussian", "LearnedGaussian", "Likelihood", "MixedLikelihood",
           "build_likelihood", "register_likelihood"]
