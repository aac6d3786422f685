"""What every model shares: the named loss terms and the registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

import torch
from torch import Tensor, nn

from ..config import Config, ModelConfig
from ..errors import ConfigError
from ..likelihoods import Likelihood
from ..registry import MODELS
from ..typed import build_dataclass


@dataclass
class Terms:
    """The named terms of a forward pass; per example ``(B,)`` or batch means (scalars).

    ``loss`` is what the optimiser minimises, ``recon`` is -E_q[log p(x|z)], ``kl`` the KL term
    (analytic or its Monte-Carlo estimate, before any weight), ``extra`` whatever a variant adds.
    """

    loss: Tensor
    recon: Tensor
    kl: Tensor
    extra: dict[str, Tensor] = field(default_factory=dict)

    def mean(self) -> "Terms":
        return Terms(
            self.loss.mean(), self.recon.mean(), self.kl.mean(), {k: v.mean() for k, v in self.extra.items()}
        )

    def items(self) -> dict[str, Tensor]:
        """All terms by name, for logging: loss, recon, kl, then the extras."""
        return {"loss": self.loss, "recon": self.recon, "kl": self.kl, **self.extra}


@dataclass
class NoOptions:
    """A model family without options of its own."""


class Model(nn.Module):
    """Base of every registered model: an encoder, a decoder and a likelihood p(x|z).

    Subclasses build ``encoder``, ``decoder`` and ``likelihood``, implement ``forward`` (returning
    :class:`Terms`), ``encode`` and ``sample``, and may set ``Options`` to a dataclass of their own
    options (read from ``model.options`` in the config).
    """

    name: str = ""
    Options: type = NoOptions
    # Capabilities, declared so that callers (evaluate, viz, export, explore) never probe concrete
    # types: a posterior q(z|x) (``posterior(x)``), a density p(x) (``log_weights``), labels y.
    has_posterior: bool = False
    has_density: bool = False
    conditional: bool = False
    # Which family-dependent keys of ModelConfig (beta, kl, samples) this family reads; the config
    # guard (vaekit.guard) refuses the others when set, with the family's hint on what to use.
    reads: frozenset[str] = frozenset()
    hints: dict[str, str] = {}
    likelihood: Likelihood
    decoder: nn.Module
    # The whole run config (data, model, train) the model was built for, when built from one
    # (training, vaekit.load): what a library user reads to find the run's data and settings.
    config: Config | None = None

    def __init__(self, cfg: ModelConfig, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.cfg = cfg
        self.shape = tuple(shape)
        self.latent_dim = cfg.latent_dim
        self.options = build_dataclass(self.Options, cfg.options, "model.options")

    def decode_params(self, z: Tensor) -> Tensor:
        """Decoder output for codes (..., D): the likelihood's parameters (..., k*C, H, W)."""
        lead = z.shape[:-1]
        out = self.decoder(z.reshape(-1, z.shape[-1]))
        return out.view(*lead, *out.shape[1:])

    @torch.no_grad()
    def decode(self, z: Tensor) -> Tensor:
        """E[x|z] for codes (N, D): images (N, C, H, W) or vectors (N, D_x)."""
        return self.likelihood.mean(self.decode_params(z))

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """Decode the deterministic code of x: E[x | z = encode(x)], shaped (B, *S)."""
        return self.decode(self.encode(x))

    def importance_sampler(self, x: Tensor, y: Tensor | None = None) -> Callable[[int], Tensor]:
        """k -> importance log-weights (k, B) of the batch x, for a model with a density
        (``has_density``): what the IS estimator (vaekit.metrics.likelihood) calls once per chunk
        of samples. ``log_weights(x, y, k)`` each time; a model whose proposal needs work per batch
        (the cvae's label proposal) does that work once, in its override."""
        return lambda k: self.log_weights(x, y, k)  # type: ignore[attr-defined]

    def encode(self, x: Tensor) -> Tensor:
        """A deterministic code (B, D) for a batch x (B, *S); see :meth:`as_batch` for what x may be."""
        raise NotImplementedError

    def as_batch(self, x: Tensor) -> Tensor:
        """The model's input shape (B, *S) from a batch (B, *S), flat rows (B, prod S) or one example S."""
        import math

        from ..errors import VaekitError

        s, n = tuple(self.shape), math.prod(self.shape)
        if tuple(x.shape[1:]) == s:
            return x
        if x.dim() == 2 and x.shape[1] == n:
            return x.reshape(-1, *s)
        if tuple(x.shape) == s:
            return x.unsqueeze(0)
        raise VaekitError(f"input of shape {tuple(x.shape)} does not fit this model: give (B, {', '.join(map(str, s))}) "
                          f"or flat rows (B, {n})")

    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        """``n`` generated examples (n, *S)."""
        raise NotImplementedError

    @property
    def default_samples(self) -> int:
        """z samples per example of the objective the trainer reports (the VAE: ``model.samples``;
        IWAE: its k); 1 for families that do not say."""
        return 1

    @property
    def standard_prior(self) -> bool:
        """Whether p(z) = N(0, I) (codes live on its scale, KL splits per dimension), declared so that
        callers (diagnostics, pictures, explore, gradvar) never probe the prior's type; False for a
        family without a prior p(z) of its own."""
        return False

    @property
    def latent_layers(self) -> dict[str, int]:
        """The stochastic layers by name, with their sizes, in the order of :meth:`latent_means`:
        ``{"z": latent_dim}`` for a model with one layer. Declared (not found by running the model)
        so that callers know before any data whether there is a per-layer breakdown to report."""
        return {"z": self.latent_dim}

    def latent_means(self, x: Tensor) -> dict[str, Tensor]:
        """The posterior mean of each stochastic layer for a batch x (B, *S): ``{name: (B, D_layer)}``,
        keyed as :attr:`latent_layers`. What active units are counted from, per layer, as Burda et al.
        2015 (sec. 5.2) count them for their two-layer models: A_u = Cov_x(E_q[u]) over the data.

        One layer: ``{"z": posterior(x).mu}``, E_{q(z|x)}[z]. Only for a model with a posterior
        (:attr:`has_posterior`); a hierarchical family overrides it and says what each mean is.
        """
        if not self.has_posterior:
            raise NotImplementedError(f"model '{self.name}' has no posterior q(z|x): no posterior means")
        return {"z": self.posterior(x).mu}  # type: ignore[operator]  # declared by has_posterior

    def latent_prior(self) -> dict[str, Tensor] | None:
        """The distribution ``sample`` draws the decoder's input from, when it is one Gaussian:
        ``{"mean": (D,), "scale_tril": (D, D)}`` (z = mean + scale_tril @ eps), for code outside
        Python (ONNX export). None when it is not (a VampPrior, a hierarchical prior)."""
        return None

    def after_fit(self, train: Any) -> None:
        """Called once when training ends, with the training split (e.g. to fit a code density)."""

    def check_data(self, data: Any) -> None:
        """Called by the trainer before training with the :class:`~vaekit.data.Data`: raise a
        :class:`~vaekit.errors.VaekitError` when the model cannot use it (e.g. no labels)."""


M = TypeVar("M", bound=type[Model])


def register(name: str) -> Callable[[M], M]:
    """Class decorator: make a model family available by ``name`` to configs, the CLI and ``load``
    (the :data:`vaekit.registry.MODELS` registry, the pattern of likelihoods and data sources too)."""
    return MODELS.register(name)


def glorot_(model: nn.Module) -> None:
    """Keras's initialisation: Glorot-uniform weights (Glorot & Bengio 2010, eq. 16), zero biases."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def build(cfg: ModelConfig | Config, shape: tuple[int, ...]) -> Model:
    """Instantiate the registered model of ``cfg`` for data of ``shape``. ``cfg`` is the model config,
    or the whole run config (training and :func:`vaekit.load` pass it), then kept as ``model.config``."""
    run, m = (cfg, cfg.model) if isinstance(cfg, Config) else (None, cfg)
    cls = MODELS.lookup(m.name)
    try:
        model = cls(m, shape)
    except ValueError as err:  # shape/architecture mismatches raised by the blocks
        raise ConfigError(f"model '{m.name}': {err}") from None
    if m.init == "glorot":
        glorot_(model)
    model.config = run
    return model


__all__ = ["MODELS", "Model", "NoOptions", "Terms", "build", "register"]
