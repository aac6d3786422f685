"""The optimiser, its learning-rate schedule and the device: what the trainer steps with."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .config import TrainConfig
from .errors import ConfigError


def select_device(name: str) -> torch.device:
    """``auto`` is CUDA when present, else CPU; asking for CUDA without it is an input error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: cuda was asked for but no CUDA device is available; use --device cpu")
    return torch.device(name)


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    # The fused kernel updates every parameter in one call: fewer Python dispatches per step.
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, eps=cfg.adam_eps, weight_decay=cfg.weight_decay, fused=True)


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig) -> Any:
    """An epoch-wise LR schedule, or None."""
    sched = torch.optim.lr_scheduler
    if cfg.lr_schedule == "cosine":
        return sched.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
    if cfg.lr_schedule == "step":
        return sched.StepLR(opt, step_size=cfg.lr_step_epochs, gamma=cfg.lr_gamma)
    if cfg.lr_schedule == "exponential":
        return sched.ExponentialLR(opt, gamma=cfg.lr_gamma)
    if cfg.lr_schedule == "burda":
        return sched.LambdaLR(opt, burda_factor)
    return None


def burda_stage(epoch: int) -> int:
    """The stage i of Burda et al.'s schedule (2015, §5) that 0-based ``epoch`` falls in: stage i
    lasts 3^i epochs, so stages end after 1, 4, 13, 40, 121, 364, 1093, 3280 epochs."""
    i, end = 0, 1
    while epoch >= end:
        i += 1
        end += 3**i
    return i


def burda_factor(epoch: int) -> float:
    """lr multiplier 10^(-i/7) for the stage of ``epoch`` (the paper's 0.001 * 10^(-i/7))."""
    return 10.0 ** (-burda_stage(epoch) / 7)
