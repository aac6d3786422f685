"""Convolutional blocks: strided convolutions down, transposed convolutions back up.

Activations and weights are kept channels-last (NHWC), the layout in which oneDNN's convolutions
(and its transposed ones) run fastest here. The layers are ``vaekit.nn.conv_ops``'s: the same
functions and parameters as ``nn.Conv2d`` / ``nn.ConvTranspose2d`` with a cheaper backward pass
(inside :func:`reference_layers` blocks are built from torch's own instead).
Activations after a convolution run in place (ReLU's backward needs only its output). Per-layer
timings of each choice: ``benchmarks/profile_conv.py`` and ``benchmarks/results/profile-conv.json``.

Padding is ``kernel // 2`` so a stride-2 layer halves the size (rounding up), as Keras's
``padding="same"`` does; the decoder picks each transposed layer's ``output_padding`` so that it
returns exactly the sizes the encoder saw (28 -> 14 -> 7 -> 14 -> 28, and odd sizes too).

Where the padding goes differs from Keras for a stride-2 layer on an even size: TensorFlow pads
(0 before, 1 after), this module (1, 1), so its 3x3 windows start one pixel earlier (rows -1, 1, ...
instead of 0, 2, ...), and the transposed layers keep rows 1..2h of the full output instead of
0..2h-1. The two are mirror images: this network on an image rotated by 180 degrees, with every
kernel rotated too, computes exactly what the Keras network computes on the image, rotated. So
training here is training Keras's network on 180-degree-rotated data: the same sizes, parameter
counts and initial distribution, and only the borders (empty in MNIST) see the difference.
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator

import torch
from torch import Tensor, nn

from . import conv_ops
from .mlp import MLP, activation

# Blocks use the conv_ops layers unless reference_layers() says otherwise. Under ONNX export,
# tracing, torch.compile and torch.func transforms those layers run torch's own modules
# (conv_ops._plain), so exporters and the contractive AE's Jacobian see ordinary ops.
_REFERENCE = False


@contextlib.contextmanager
def _layers(reference: bool) -> Iterator[None]:
    global _REFERENCE
    old, _REFERENCE = _REFERENCE, reference
    try:
        yield
    finally:
        _REFERENCE = old


def reference_layers() -> contextlib.AbstractContextManager[None]:
    """Blocks built inside use plain ``nn.Conv2d`` / ``nn.ConvTranspose2d`` and out-of-place
    activations: the "before" of benchmarks/profile_conv.py and the reference of the tests."""
    return _layers(True)


def fast_layers() -> contextlib.AbstractContextManager[None]:
    """Blocks built inside use ``vaekit.nn.conv_ops``'s layers (same functions and parameters,
    a cheaper backward pass; benchmarks/results/profile-conv.json): the default."""
    return _layers(False)


def _conv(*args, transposed: bool = False, **kwargs) -> nn.Module:
    if _REFERENCE:
        return (nn.ConvTranspose2d if transposed else nn.Conv2d)(*args, **kwargs)
    return (conv_ops.ConvTranspose2d if transposed else conv_ops.Conv2d)(*args, **kwargs)


def _act(name: str) -> nn.Module:
    """The activation after a convolution: in place where torch's module allows it (it then saves
    its output for backward instead of allocating a second copy of the (B, C, H, W) map)."""
    if _REFERENCE:
        return activation(name)
    if name == "relu":
        return conv_ops.ReLU()
    m = activation(name)
    if hasattr(m, "inplace"):
        m.inplace = True
    return m


def _conv_sizes(size: tuple[int, int], kernel: int, strides: list[int]) -> list[tuple[int, int]]:
    """Spatial sizes before and after each strided conv: [input, after layer 1, ...]."""
    pad = kernel // 2
    sizes = [size]
    for s in strides:
        h, w = sizes[-1]
        sizes.append(((h + 2 * pad - kernel) // s + 1, (w + 2 * pad - kernel) // s + 1))
    return sizes


class ConvEncoder(nn.Module):
    """Conv(c_i, k, stride s_i) + activation per layer, flatten, dense layers, linear head."""

    def __init__(
        self,
        shape: tuple[int, ...],
        out: int,
        channels: list[int],
        kernel: int,
        strides: list[int],
        dense: list[int],
        act: str,
    ) -> None:
        super().__init__()
        if len(shape) != 3:
            raise ValueError(f"a conv encoder needs image data (C, H, W), got shape {shape}")
        layers: list[nn.Module] = []
        c_in = shape[0]
        for c, s in zip(channels, strides):
            layers += [_conv(c_in, c, kernel, stride=s, padding=kernel // 2), _act(act)]
            c_in = c
        self.conv = nn.Sequential(*layers)
        h, w = _conv_sizes((shape[1], shape[2]), kernel, strides)[-1]
        flat = c_in * h * w
        self.head = MLP([flat, *dense, out], act)  # (Keras: Dense 16 relu, then the linear head)
        self.conv.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv(x.contiguous(memory_format=torch.channels_last))  # (B, C', h, w), NHWC in memory
        return self.head(h.flatten(1))  # flatten() reads it in NCHW order: same weights as NCHW


class ConvDecoder(nn.Module):
    """Dense layers to a (c_last, h, w) map, transposed convs back up, a stride-1 output layer."""

    def __init__(
        self,
        shape: tuple[int, ...],
        latent: int,
        k: int,
        channels: list[int],
        kernel: int,
        strides: list[int],
        dense: list[int],
        act: str,
    ) -> None:
        super().__init__()
        sizes = _conv_sizes((shape[1], shape[2]), kernel, strides)
        self.start = (channels[-1], *sizes[-1])  # (C_last, h, w)
        self.fc = nn.Sequential(MLP([latent, *dense, math.prod(self.start)], act), _act(act))
        pad = kernel // 2
        layers: list[nn.Module] = []
        c_in = channels[-1]
        # Up through the encoder's sizes in reverse; the channels mirror the encoder's (Keras: 64, 32).
        for i in reversed(range(len(strides))):
            (h, w), (th, tw), s = sizes[i + 1], sizes[i], strides[i]
            op = (th - ((h - 1) * s - 2 * pad + kernel), tw - ((w - 1) * s - 2 * pad + kernel))
            c_out = channels[i]
            layers += [
                _conv(c_in, c_out, kernel, stride=s, padding=pad, output_padding=op, transposed=True),
                _act(act),
            ]
            c_in = c_out
        layers.append(_conv(c_in, k * shape[0], kernel, stride=1, padding=pad, transposed=True))
        self.deconv = nn.Sequential(*layers).to(memory_format=torch.channels_last)

    def forward(self, z: Tensor) -> Tensor:
        h = self.fc(z).view(z.shape[0], *self.start).contiguous(memory_format=torch.channels_last)
        return self.deconv(h).contiguous()  # (N, k*C, H, W)
