"""Convolution layers with a hand-written backward: the same functions and parameters as
``nn.Conv2d`` / ``nn.ConvTranspose2d``, cheaper gradients on CPU.

The forward pass is the library's own (``F.conv2d`` / ``F.conv_transpose2d``; oneDNN on CPU). The
backward pass differs from autograd's ``ConvolutionBackward0`` in two ways, both measured per layer
in ``benchmarks/profile_conv.py`` (numbers in ``benchmarks/results/profile-conv.json``):

* The bias gradient is the sum of the output gradient over (batch, height, width), computed
  separately. Asking oneDNN for the weight and bias gradients of a channels-last convolution in one
  primitive costs more than the weight gradient alone plus this sum.
* The output gradient is first brought to the memory format of the output (channels-last when the
  layer runs channels-last). A gradient that arrives in the other format would make every following
  elementwise kernel (the activation's backward) take its slow strided path.

Gradients w.r.t. input and weight come from ``aten.convolution_backward``, the kernel autograd
itself uses, so the results equal ``nn.ConvTranspose2d``'s up to float rounding
(``tests/nn/test_conv_ops.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _layout(t: Tensor) -> torch.memory_format:
    """channels_last when ``t`` (B, C, H, W) is stored NHWC (and C > 1), else contiguous."""
    if t.dim() == 4 and t.shape[1] > 1 and t.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _bias_grad(g: Tensor) -> Tensor:
    """sum of g (B, C, H, W) over B, H, W: (C,)."""
    if _layout(g) is torch.channels_last:  # NHWC memory: a (B*H*W, C) matrix, summed down its rows
        return g.permute(0, 2, 3, 1).reshape(-1, g.shape[1]).sum(0)
    return g.sum((0, 2, 3))


def _conv_transpose_few_out(x: Tensor, w: Tensor, b: Tensor | None, padding: tuple[int, int]) -> Tensor:
    """A stride-1 transposed convolution to few output channels (keras-conv's last layer, 32 -> 1),
    as one matrix product and a sum of shifted planes (what col2im does).

    oneDNN's kernels use vector lanes over output channels, so with one output channel most lanes
    idle. Here, for x (B, Cin, H, W) and w (Cin, Cout, kh, kw):
    P = w^T x, (Cout*kh*kw, B*H*W): every input pixel times every tap; then, by the definition of a
    transposed convolution (output o = i - padding + k per axis), y[:, :, o] = sum_k P[k][:, :, o + padding - k].
    """
    bsz, cin, h, wd = x.shape
    cout, kh, kw = w.shape[1:]
    ph, pw = padding
    ho, wo = h - 1 - 2 * ph + kh, wd - 1 - 2 * pw + kw
    xm = x.permute(0, 2, 3, 1).reshape(-1, cin)  # (B*H*W, Cin): a view of channels-last memory
    planes = torch.mm(w.reshape(cin, cout * kh * kw).t(), xm.t()).view(cout, kh, kw, bsz, h, wd)
    y = x.new_zeros(cout, bsz, ho, wo)
    for ky in range(kh):
        oy0, oy1 = max(0, ky - ph), min(ho, h + ky - ph)  # rows o with i = o + ph - ky in [0, H)
        for kx in range(kw):
            ox0, ox1 = max(0, kx - pw), min(wo, wd + kx - pw)
            y[:, :, oy0:oy1, ox0:ox1] += planes[:, ky, kx, :, oy0 + ph - ky : oy1 + ph - ky, ox0 + pw - kx : ox1 + pw - kx]
    if b is not None:
        y += b.view(cout, 1, 1, 1)
    return y.permute(1, 0, 2, 3)  # (B, Cout, Ho, Wo); contiguous when Cout == 1


FEW_OUT = 4  # output channels up to which a stride-1 transposed conv takes the matrix-product path


def _conv_forward(x: Tensor, w: Tensor, b: Tensor | None, geom: tuple) -> Tensor:
    """y = conv(x, w) + b, by the fastest path for the geometry (the same function either way)."""
    transposed, stride, padding, output_padding = geom
    if transposed and tuple(stride) == (1, 1) and w.shape[1] <= FEW_OUT and x.dtype == torch.float32:
        return _conv_transpose_few_out(x, w, b, tuple(padding))
    if transposed:
        return F.conv_transpose2d(x, w, b, stride, padding, output_padding)
    return F.conv2d(x, w, b, stride, padding)


def _plain() -> bool:
    """True where a graph is being captured or transformed (ONNX export, tracing, torch.compile,
    torch.func's vmap/jacrev in the contractive AE): there the layers run torch's own modules,
    whose ops every exporter and transform knows; a custom autograd.Function would be opaque."""
    return (torch.onnx.is_in_onnx_export() or torch.jit.is_tracing() or torch.jit.is_scripting()
            or torch.compiler.is_compiling() or torch._C._are_functorch_transforms_active())


def _needs_grad(*ts: Tensor | None) -> bool:
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in ts)


class _Conv(torch.autograd.Function):
    """y = conv(x, w) + b for a 2-D convolution or transposed convolution (groups 1, dilation 1)."""

    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor, b: Tensor | None, geom: tuple) -> Tensor:  # noqa: ANN001
        y = _conv_forward(x, w, b, geom)
        ctx.save_for_backward(x, w)
        ctx.geom, ctx.has_bias, ctx.layout = geom, b is not None, _layout(y)
        return y

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple:  # noqa: ANN001
        x, w = ctx.saved_tensors
        transposed, stride, padding, output_padding = ctx.geom
        g = g.contiguous(memory_format=ctx.layout)
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        gx = gw = None
        if need_x or need_w:
            gx, gw, _ = torch.ops.aten.convolution_backward(
                g, x, w, None, list(stride), list(padding), [1, 1], transposed,
                list(output_padding) if transposed else [0, 0], 1, [need_x, need_w, False])
        gb = _bias_grad(g) if (need_b and ctx.has_bias) else None
        return gx, gw, gb, None


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters and state_dict) with :class:`_Conv`'s backward."""

    def forward(self, x: Tensor) -> Tensor:
        if _plain() or self.groups != 1 or self.dilation != (1, 1) or self.padding_mode != "zeros" \
                or isinstance(self.padding, str):
            return super().forward(x)
        geom = (False, self.stride, self.padding, (0, 0))
        if not _needs_grad(x, self.weight, self.bias):
            return _conv_forward(x, self.weight, self.bias, geom)
        return _Conv.apply(x, self.weight, self.bias, geom)


class ConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d`` (same parameters and state_dict) with :class:`_Conv`'s backward."""

    def forward(self, x: Tensor, output_size: list[int] | None = None) -> Tensor:
        if _plain() or output_size is not None or self.groups != 1 or self.dilation != (1, 1):
            return super().forward(x, output_size)
        geom = (True, self.stride, self.padding, self.output_padding)
        if not _needs_grad(x, self.weight, self.bias):
            return _conv_forward(x, self.weight, self.bias, geom)
        return _Conv.apply(x, self.weight, self.bias, geom)


class _ReLU(torch.autograd.Function):
    """relu in place; backward with the gradient first brought to the output's memory format."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # noqa: ANN001
        ctx.mark_dirty(x)
        y = x.relu_()
        ctx.save_for_backward(y)
        ctx.layout = _layout(y)
        return y

    @staticmethod
    def backward(ctx, g: Tensor) -> Tensor:  # noqa: ANN001
        (y,) = ctx.saved_tensors
        # A channels-last output with a gradient in NCHW order (e.g. after flatten()) would send
        # threshold_backward down its strided path, ~10x slower than one copy plus the dense path.
        return torch.ops.aten.threshold_backward(g.contiguous(memory_format=ctx.layout), y, 0)


class ReLU(nn.ReLU):
    """``nn.ReLU``, in place, whose backward keeps the output's memory format (see :class:`_ReLU`)."""

    def __init__(self) -> None:
        super().__init__(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        if _plain():
            return torch.relu(x)  # out of place: what exporters and torch.func expect
        if not _needs_grad(x):
            return x.relu_()
        return _ReLU.apply(x)
