"""Shared fixtures. Tests use one intra-op thread: small models gain nothing from two, and two
OpenMP threads on a 2-core machine with any other busy process stall on spin-waits."""

from __future__ import annotations

import pytest
import torch

import vaekit

torch.set_num_threads(1)


def small_config(preset: str = "pytorch-example", **sections: dict) -> vaekit.Config:
    """A preset shrunk to seconds: 512 MNIST images, 2 epochs, no progress bar, no TensorBoard;
    on MNIST the test set is cut to limit // 6 images too (data.limit takes training images only)."""
    data = sections.get("data", {})
    limit = data.get("limit", 512)
    test = {"test_limit": max(1, limit // 6)} if data.get("source", "mnist") == "mnist" and limit and \
        data.get("split", "train") == "train" else {}
    over = [
        {"data": {"limit": 512, **test}, "train": {"epochs": 2, "batch_size": 64, "progress": False, "tensorboard": False}},
        *({k: v} for k, v in sections.items()),
    ]
    return vaekit.resolve(preset, overrides=over)


@pytest.fixture
def tiny_cfg() -> vaekit.Config:
    return small_config(model={"hidden": [64], "latent_dim": 4})
