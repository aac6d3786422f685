"""Regularised autoencoders that change one hook of :class:`~vaekit.models.ae.Autoencoder`.

* ``dae``: the denoising autoencoder (Vincent et al. 2008, sec. 2.3; Vincent et al. 2010 sec. 4.1)
  overrides ``corrupt``: the encoder sees x~ ~ q_D(x~|x) (additive Gaussian noise with std ``std``
  and/or masking noise that zeroes a fraction ``drop`` of the inputs) in training mode only, and
  the loss reconstructs the clean x.
* ``sparse-ae``: overrides ``penalties``: either an L1 penalty ``weight * ||z||_1`` on the code or
  the sparse autoencoder of Ng (CS294A notes, "Sparse autoencoder", sec. 3): a sigmoid code, the
  mean activation rho_hat_j over the batch and ``weight * sum_j KL(rho || rho_hat_j)``. (An L1
  penalty on the unbounded linear code can be dodged by shrinking the code and growing the
  decoder's first weights; the bounded sigmoid code of the KL form cannot.)

The contractive autoencoder lives in :mod:`vaekit.models.contractive`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from ..config import ModelConfig
from ..distributed import global_batch_mean
from ..errors import ConfigError
from ..guard import key, when_option
from .ae import Autoencoder
from .base import register


@dataclass
class DenoisingOptions:
    """``noise``: which corruption; ``std``: Gaussian noise std; ``drop``: fraction of inputs zeroed."""

    noise: Literal["gaussian", "mask", "both"] = "mask"
    std: float = key(0.3, when_option("noise", "gaussian", "both"))
    drop: float = key(0.25, when_option("noise", "mask", "both"))


@register("dae")
class DenoisingAutoencoder(Autoencoder):
    """Reconstruct the clean x from a corrupted copy (training mode only; eval encodes x itself)."""

    Options = DenoisingOptions
    options: DenoisingOptions

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...]) -> None:
        super().__init__(cfg, shape)
        o = self.options
        if o.std < 0 or not 0 <= o.drop < 1:
            raise ConfigError(f"model.options: dae needs std >= 0 and 0 <= drop < 1 (got std={o.std}, drop={o.drop})")

    def corrupt(self, x: Tensor) -> Tensor:
        """x~ for x (B, *S): masking noise (each input zeroed with probability ``drop``, Vincent et
        al. 2008 sec. 2.3) then additive isotropic Gaussian noise N(0, std^2) (Vincent et al. 2010
        sec. 4.1). Values are not clipped, so the noise statistics are exactly the stated ones."""
        o = self.options
        if o.noise in ("mask", "both") and o.drop > 0:
            keep = torch.rand_like(x) >= o.drop  # (B, *S) True with probability 1 - drop
            x = x * keep
        if o.noise in ("gaussian", "both") and o.std > 0:
            x = x + o.std * torch.randn_like(x)
        return x


@dataclass
class SparseOptions:
    """``penalty``: ``l1`` on the code or Ng's ``kl`` to a target activation ``rho`` (sigmoid code)."""

    penalty: Literal["l1", "kl"] = "l1"
    weight: float = 1e-3  # the L1 coefficient lambda, or Ng's beta
    rho: float = key(0.05, when_option("penalty", "kl"))  # the target mean activation of a sigmoid code unit


@register("sparse-ae")
class SparseAutoencoder(Autoencoder):
    """An autoencoder whose code is pushed to be sparse by a penalty added to the loss."""

    Options = SparseOptions
    options: SparseOptions

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...]) -> None:
        super().__init__(cfg, shape)
        o = self.options
        if o.weight < 0 or not 0 < o.rho < 1:
            raise ConfigError(f"model.options: sparse-ae needs weight >= 0 and 0 < rho < 1 (got {o.weight}, {o.rho})")
        if o.penalty == "kl":
            # Ng's code units are sigmoid activations in (0, 1), read as firing probabilities.
            self.encoder = nn.Sequential(self.encoder, nn.Sigmoid())

    def penalties(self, x: Tensor, z: Tensor) -> dict[str, Tensor]:
        """``{"sparsity": (B,)}`` from the code z (B, D)."""
        o = self.options
        if o.penalty == "l1":
            return {"sparsity": o.weight * z.abs().sum(-1)}  # (B,)
        # rho_hat_j = (1/B) sum_i a_j(x_i) is a batch statistic, so every example carries the same
        # batch penalty: its mean over the batch is exactly Ng's beta * sum_j KL(rho || rho_hat_j).
        rho_hat = z.mean(0)  # (D,)
        if self.training:  # under DDP: the global batch's mean activation (gradient through this shard's)
            rho_hat = global_batch_mean(rho_hat)
        rho_hat = rho_hat.clamp(1e-6, 1 - 1e-6)
        rho = o.rho
        kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))  # (D,)
        return {"sparsity": (o.weight * kl.sum()).expand(z.shape[0])}
