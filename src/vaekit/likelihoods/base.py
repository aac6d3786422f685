"""The likelihood protocol p(x|z): what every registered likelihood provides and declares.

Shapes: ``B`` batch, ``L`` posterior samples per datapoint (a leading ``...``), ``*S`` the data
shape, ``(C, H, W)`` or ``(D_x,)``. Everything is written in log space and on logits so that no
``log(sigmoid(.))`` or ``exp`` of a large number ever appears in the loss.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from torch import Tensor, nn

if TYPE_CHECKING:
    from ..config import ModelConfig

LOG_2PI = math.log(2 * math.pi)  # the Gaussian normaliser, log(2 pi); vaekit.distributions uses it too

class Likelihood(nn.Module):
    """p(x|z) parameterised by the decoder output.

    ``channels`` is how many decoder outputs there are per data channel (2 for a learned variance);
    parameters are stacked along the channel axis, dimension ``-len(shape)``.

    Declared traits, read by the config guard and by models (never probed on concrete types):
    ``reads`` the ModelConfig keys :meth:`from_config` uses (``sigma``, ``min_sigma``, ``columns``),
    refused by :mod:`vaekit.guard` for likelihoods that do not read them; ``table`` whether it models
    rows of a table (standardised numerics, one-hot groups; the likelihood a table source implies)
    rather than pixels in [0, 1]. A table likelihood also provides :meth:`observed` and
    :meth:`missing_cost`, which ``vaekit score`` ranks rows by.
    """

    name: str = ""  # set by register_likelihood
    channels: int = 1
    reads: frozenset[str] = frozenset()
    table: bool = False

    def __init__(self, event_dims: int) -> None:
        super().__init__()
        self.event_dims = event_dims  # 3 for (C, H, W), 1 for (D,)

    @classmethod
    def from_config(cls, event_dims: int, cfg: ModelConfig) -> "Likelihood":
        """The likelihood for data with ``event_dims`` dimensions per example, from the model config."""
        return cls(event_dims)

    def _sum(self, t: Tensor) -> Tensor:
        return t.flatten(-self.event_dims).sum(-1)

    def _split(self, out: Tensor) -> tuple[Tensor, ...]:
        return out.chunk(self.channels, dim=-self.event_dims)

    def log_prob(self, out: Tensor, x: Tensor) -> Tensor:
        """log p(x|z) summed over data dimensions: out (..., B, k*C, ...) and x (B, C, ...) -> (..., B)."""
        raise NotImplementedError

    def mean(self, out: Tensor) -> Tensor:
        """E[x|z], for pictures and reconstructions."""
        raise NotImplementedError

    def sample(self, out: Tensor) -> Tensor:
        raise NotImplementedError

    def params(self, out: Tensor) -> dict[str, Tensor]:
        """The distribution's parameters by name, for code outside Python (ONNX export)."""
        raise NotImplementedError

    def observed(self, x: Tensor) -> Tensor:
        """Table likelihoods: the columns present in each row x (B, D) -> (B,), for ``vaekit score``."""
        raise NotImplementedError(f"likelihood '{self.name}' does not count observed columns (a table likelihood does)")

    def missing_cost(self, out: Tensor, x: Tensor) -> Tensor:
        """Table likelihoods: the expected -log p of each row's missing cells, decoder outputs ``out``
        (B, D) and rows x (B, D) -> (B,); 0 for a complete row. ``vaekit score`` adds it to the bound
        so a row with gaps is not ranked as less anomalous for having fewer terms."""
        raise NotImplementedError(f"likelihood '{self.name}' does not price missing cells (a table likelihood does)")

    @property
    def kind(self) -> str:
        """What ``-log p(x|z)`` means, for reports: a probability mass or a density."""
        return "density"


__all__ = ["LOG_2PI", "Likelihood"]
