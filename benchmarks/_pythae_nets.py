"""The PyTorch-examples MLP VAE nets (784-400-20, ReLU, sigmoid output) as Pythae encoder/decoder.

Shared by the scripts that run inside the throwaway pythae venv (``_pythae_mlp.py``,
``_pythae_nll.py``); a script's own folder is on ``sys.path``, so they import it by name.
"""

from __future__ import annotations

import torch
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn import BaseDecoder, BaseEncoder
from torch import nn
from torch.nn import functional as F


class Encoder(BaseEncoder):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        h = F.relu(self.fc1(x.reshape(-1, 784)))
        return ModelOutput(embedding=self.fc21(h), log_covariance=self.fc22(h))


class Decoder(BaseDecoder):
    def __init__(self) -> None:
        super().__init__()
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def forward(self, z: torch.Tensor) -> ModelOutput:
        x = torch.sigmoid(self.fc4(F.relu(self.fc3(z))))
        return ModelOutput(reconstruction=x.reshape(-1, 1, 28, 28))
