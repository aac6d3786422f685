"""Fully connected blocks."""

from __future__ import annotations

import math

from torch import Tensor, nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "softplus": nn.Softplus,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}


def activation(name: str) -> nn.Module:
    return ACTIVATIONS[name]()


class MLP(nn.Sequential):
    """Linear layers with an activation between them and none after the last."""

    def __init__(self, sizes: list[int], act: str) -> None:
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(activation(act))
        super().__init__(*layers)


class MLPEncoder(nn.Module):
    """Flatten (B, *S) and map it through hidden layers to ``out`` features."""

    def __init__(self, shape: tuple[int, ...], out: int, hidden: list[int], act: str) -> None:
        super().__init__()
        self.net = MLP([math.prod(shape), *hidden, out], act)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))  # (B, prod S) -> (B, out)


class MLPDecoder(nn.Module):
    """Map (N, D) codes to ``k`` parameters per data element, shaped (N, k*C, H, W) or (N, k*D_x)."""

    def __init__(self, shape: tuple[int, ...], latent: int, k: int, hidden: list[int], act: str) -> None:
        super().__init__()
        self.out_shape = (k * shape[0], *shape[1:])
        self.net = MLP([latent, *hidden, k * math.prod(shape)], act)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(z.shape[0], *self.out_shape)
