"""The conv blocks against TensorFlow's ``padding="same"`` (the claim in vaekit.nn.conv's docstring)."""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vaekit.config import resolve
from vaekit.models import build


def rot(t: Tensor) -> Tensor:
    """Rotate the last two (spatial) axes by 180 degrees."""
    return t.flip(-2, -1)


def tf_pads(size: int, stride: int, kernel: int, out: int) -> tuple[int, int]:
    """TensorFlow's SAME padding of a conv from ``size`` to ``out``: the odd pixel goes after."""
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def tf_conv(x: Tensor, conv: nn.Conv2d, turn: bool = True) -> Tensor:
    """Keras Conv2D(padding="same") with the kernel of ``conv`` (rotated by 180 degrees if ``turn``)."""
    (s, _), k, h = conv.stride, conv.kernel_size[0], x.shape[-1]
    before, after = tf_pads(h, s, k, -(-h // s))
    w = rot(conv.weight) if turn else conv.weight
    return F.conv2d(F.pad(x, (before, after, before, after)), w, conv.bias, stride=s)


def tf_encoder(model: nn.Module, x: Tensor, turn: bool) -> Tensor:
    h = x
    for layer in model.encoder.conv:
        h = tf_conv(h, layer, turn) if isinstance(layer, nn.Conv2d) else layer(h)
    return model.encoder.head((rot(h) if turn else h).flatten(1))


def tf_conv_transpose(x: Tensor, conv: nn.ConvTranspose2d) -> Tensor:
    """Keras Conv2DTranspose(padding="same"): the full transposed conv, cropped as TF crops it."""
    (s, _), k, h = conv.stride, conv.kernel_size[0], x.shape[-1]
    full = F.conv_transpose2d(x, rot(conv.weight), conv.bias, stride=s)  # (B, C, (h-1)s+k, ...)
    before, _ = tf_pads(h * s, s, k, h)  # a transposed conv crops what the forward conv padded
    return full[..., before : before + h * s, before : before + h * s]


def test_keras_conv_equals_the_keras_network_on_rotated_images():
    torch.manual_seed(0)
    model = build(resolve("keras-conv").model, (1, 28, 28)).eval()
    x = torch.rand(5, 1, 28, 28)

    # Encoder: Keras's network (rotated kernels) on x == this network on rot(x), up to the order
    # in which Flatten reads the last feature map (a permutation of the Dense 16 weights).
    torch.testing.assert_close(model.encoder(rot(x)), tf_encoder(model, x, turn=True), rtol=1e-5, atol=1e-5)

    # Decoder: the same relation, from the Dense 7*7*64 map up to the 28x28 logits.
    z = torch.randn(5, 2)
    h = rot(model.decoder.fc(z).view(5, *model.decoder.start))
    for layer in model.decoder.deconv:
        if isinstance(layer, nn.ConvTranspose2d) and layer.stride[0] > 1:
            h = tf_conv_transpose(h, layer)
        elif isinstance(layer, nn.ConvTranspose2d):  # stride 1, padding 1: symmetric already
            h = F.conv_transpose2d(h, rot(layer.weight), layer.bias, padding=1)
        else:
            h = layer(h)
    torch.testing.assert_close(model.decoder(z), rot(h), rtol=1e-5, atol=1e-5)

    # And the two paddings really differ: the same kernels on the same image disagree.
    assert not torch.allclose(model.encoder(x), tf_encoder(model, x, turn=False), atol=1e-3)
