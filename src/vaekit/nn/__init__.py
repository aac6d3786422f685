"""Encoder and decoder blocks, built from the model config.

An encoder maps ``(B, *S) -> (B, out)``; a decoder maps ``(N, D) -> (N, k*C, H, W)`` or
``(N, k*D_x)`` where ``k`` is the likelihood's parameter count per data channel.
"""

from __future__ import annotations

from torch import nn

from ..config import ModelConfig
from .conv import ConvDecoder, ConvEncoder
from .mlp import MLP, MLPDecoder, MLPEncoder, activation


def build_encoder(cfg: ModelConfig, shape: tuple[int, ...], out: int) -> nn.Module:
    """An encoder from data of ``shape`` to ``out`` features (e.g. 2*D for mean and log-variance)."""
    if cfg.arch == "conv":
        return ConvEncoder(shape, out, cfg.channels, cfg.kernel_size, _strides(cfg), cfg.dense, cfg.activation)
    return MLPEncoder(shape, out, cfg.hidden, cfg.activation)


def build_decoder(cfg: ModelConfig, shape: tuple[int, ...], latent: int, k: int = 1) -> nn.Module:
    """A decoder from ``latent`` codes to ``k`` parameters per element of data of ``shape``."""
    if cfg.arch == "conv":
        dense = list(reversed(cfg.dense)) if cfg.decoder_dense is None else cfg.decoder_dense
        return ConvDecoder(shape, latent, k, cfg.channels, cfg.kernel_size, _strides(cfg), dense, cfg.activation)
    hidden = list(reversed(cfg.hidden)) if cfg.decoder_hidden is None else cfg.decoder_hidden
    return MLPDecoder(shape, latent, k, hidden, cfg.activation)


def _strides(cfg: ModelConfig) -> list[int]:
    return cfg.strides if cfg.strides is not None else [2] * len(cfg.channels)


__all__ = ["MLP", "ConvDecoder", "ConvEncoder", "MLPDecoder", "MLPEncoder", "activation", "build_decoder", "build_encoder"]
