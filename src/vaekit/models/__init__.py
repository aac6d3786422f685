"""Model families, registered by name. Import a module here to make its models available."""

from __future__ import annotations

from . import vae  # noqa: F401  (registers "vae")
from .base import MODELS, Model, Terms, build, register
from .vae import VAE

__all__ = ["MODELS", "VAE", "Model", "Terms", "build", "register"]
