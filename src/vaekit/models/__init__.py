"""Model families, registered by name. Import a module here to make its models available."""

from __future__ import annotations

from . import ae, vae  # noqa: F401  (registers "ae", "vae")
from . import avae, cvae, fullcov, hvae  # noqa: F401  (registers "avae", "cvae", "fullcov-vae", "hvae")
from . import ae_variants, capacity, contractive, iwae, vamp, warmup  # noqa: F401  (dae, sparse-ae, cae, capacity-vae, iwae, vamp, warmup-vae, freebits-vae)
from .base import MODELS, Model, Terms, build, register
from .ae import Autoencoder
from .vae import VAE

__all__ = ["MODELS", "VAE", "Autoencoder", "Model", "Terms", "build", "register"]
