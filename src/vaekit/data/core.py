"""In-memory datasets and index batching: the fast path.

The whole split lives in one float32 tensor ``(N, C, H, W)`` (images) or ``(N, D)`` (vectors) with
values in [0, 1]. A batch is ``x[idx]`` for a slice of a seeded permutation: no per-sample Python,
no collate. A loader is anything with ``__iter__`` yielding ``(x, y)``, ``__len__`` (batches per
epoch) and ``set_epoch(epoch, start_batch)``; the trainer needs nothing else, so a streaming loader or a
distributed shard can replace :class:`TensorLoader` without touching it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Literal, Protocol

import numpy as np
import torch
from torch import Tensor

Binarize = Literal["none", "threshold", "static", "dynamic"]


@dataclass
class Split:
    """One split of a dataset, held in memory."""

    x: Tensor  # (N, *shape) float32 in [0, 1]
    y: Tensor | None = None  # (N,) int64 labels, or None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def subset(self, idx: Tensor | slice) -> "Split":
        return Split(self.x[idx], None if self.y is None else self.y[idx])

    def to(self, device: torch.device | str) -> "Split":
        return Split(self.x.to(device), None if self.y is None else self.y.to(device))


@dataclass
class Data:
    """Train / validation / test splits plus what a model needs to know about them."""

    train: Split
    val: Split | None
    test: Split | None
    shape: tuple[int, ...]  # per-example shape: (C, H, W) or (D,)
    name: str
    binarize: Binarize = "none"
    threshold: float = 0.5
    classes: list[str] | None = None  # label names, when labels exist: label i is classes[i]
    columns: list[dict] | None = None  # tables: the column layout (vaekit.data.tabular)
    # What loading did, one line each, for the trainer's log: the first line always says what the
    # examples are (dtype, range, scaling, channels, size, counts); more for skipped/ignored files.
    log: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why) of unreadable files left out

    @property
    def eval_split(self) -> tuple[str, Split]:
        """The split per-epoch metrics are reported on: validation if held out, else test."""
        if self.val is not None:
            return "val", self.val
        if self.test is not None:
            return "test", self.test
        return "train", self.train

    def pick_split(self, name: str | None = None) -> tuple[str, Split]:
        """The split a command reads (``--split``; evaluate, embed, reconstruct, plots, compare):
        ``name`` ("test", "val" or "train"), by default test, else validation, else training data.
        A named split the data lack is a one-line :class:`~vaekit.errors.VaekitError`."""
        if name is None:
            return ("test", self.test) if self.test is not None else self.eval_split
        split = {"train": self.train, "val": self.val, "test": self.test}.get(name)
        if split is None:
            from ..errors import VaekitError

            raise VaekitError(f"--split {name}: this run's data has no {name} split")
        return name, split


class Loader(Protocol):
    """What the trainer iterates over: batches ``(x, y)`` with ``x`` on the target device."""

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor | None]]: ...

    def __len__(self) -> int: ...

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None: ...


def pixel_scale(arrays: list[np.ndarray | None], where: str) -> tuple[float, str]:
    """The one divisor that brings every integer split of a dataset to [0, 1], and how it reads.

    Integers (any dtype, uint8 included) whose largest value over all splits is 1 are binary 0/1
    data and stay 0/1; larger integers are 8-bit levels 0..255, divided by 255. Deciding by the
    values rather than the dtype makes a uint8 0/1 mask and an int64 or bool one the same data
    (dividing the uint8 one by 255 would train on almost-black images). Floats are used as is.
    """
    ints = [a for a in arrays if a is not None and (a.dtype == bool or np.issubdtype(a.dtype, np.integer))]
    floats = [a for a in arrays if a is not None and a.dtype != bool and not np.issubdtype(a.dtype, np.integer)]
    parts = []
    scale = 1.0
    if ints:
        lo = min(int(a.min()) if a.size else 0 for a in ints)
        hi = max(int(a.max()) if a.size else 0 for a in ints)
        dtype = "/".join(sorted({str(a.dtype) for a in ints}))
        if lo < 0 or hi > 255:
            from ..errors import DataError

            raise DataError(f"{where}: integer values must be 0..255 (or 0/1), got {lo}..{hi}; rescale them")
        scale = 255.0 if hi > 1 else 1.0
        how = "binary 0/1, kept as 0/1" if hi <= 1 else "divided by 255"
        parts.append(f"{dtype} values {lo}..{hi}, {how}")
    for a in floats:  # range checked by to_unit_float
        if np.issubdtype(a.dtype, np.floating) and a.size and np.isfinite(a).all():
            lo, hi = float(a.min()), float(a.max())
            parts.append(f"{a.dtype} values in [{lo:.3g}, {hi:.3g}], used as is")
            break
    return scale, "; ".join(parts)


def to_unit_float(x: np.ndarray, where: str, scale: float | None = None) -> np.ndarray:
    """Pixels as float32 in [0, 1]: integers divided by ``scale`` (default: :func:`pixel_scale` of
    ``x`` alone), floats checked to lie in [0, 1] already."""
    from ..errors import DataError

    if np.issubdtype(x.dtype, np.integer) or x.dtype == bool:
        scale = pixel_scale([x], where)[0] if scale is None else scale
        return x.astype(np.float32) / np.float32(scale)
    if not np.issubdtype(x.dtype, np.floating):
        raise DataError(f"{where}: dtype {x.dtype} is not numeric; use uint8 or float arrays")
    x = x.astype(np.float32, copy=False)
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).reshape(len(x), -1).any(1).argmax())
        raise DataError(f"{where}: contains NaN or Inf (first at example {bad}); clean the data")
    lo, hi = float(x.min(initial=0.0)), float(x.max(initial=0.0))
    if lo < 0.0 or hi > 1.0:
        raise DataError(
            f"{where}: float values must lie in [0, 1], got [{lo:.3g}, {hi:.3g}]; "
            "rescale them or store uint8 pixels"
        )
    return x


def binarize(x: Tensor, mode: Binarize, threshold: float, generator: torch.Generator | None) -> Tensor:
    """Binarize pixels: ``threshold`` (x > t) or one Bernoulli draw with ``x`` as probabilities."""
    if mode == "none":
        return x
    if mode == "threshold":
        return (x > threshold).to(x.dtype)
    return torch.bernoulli(x, generator=generator)


def epoch_generator(seed: int, epoch: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator determined by (seed, epoch): resuming at an epoch boundary needs no saved state."""
    g = torch.Generator(device=device)
    g.manual_seed((seed * 1_000_003 + epoch) % (2**63 - 1))
    return g


class TensorLoader:
    """Batches by index from a tensor held in memory (CPU or GPU).

    ``rank``/``world`` select a disjoint shard of every epoch's permutation, which is all that
    distributed data parallel training needs from the loader.
    """

    def __init__(
        self,
        split: Split,
        batch_size: int,
        *,
        shuffle: bool = True,
        binarize: Binarize = "none",
        threshold: float = 0.5,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.split = split
        self.batch_size = batch_size
        self.shuffle = shuffle
        # Static binarization happened once when the data was opened; only "dynamic" draws here.
        self.dynamic = binarize == "dynamic"
        self.seed = seed
        self.drop_last = drop_last
        self.rank, self.world = rank, world
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Iterate epoch ``epoch`` from batch ``start_batch`` on (resuming in the middle of an epoch)."""
        self.epoch, self.start_batch = epoch, start_batch

    def _indices(self) -> Tensor:
        n = len(self.split)
        if self.shuffle:
            perm = torch.randperm(n, generator=epoch_generator(self.seed, self.epoch))
        else:
            perm = torch.arange(n)
        if self.world > 1:  # equal shards: drop the tail so every rank takes the same step count
            per = n // self.world
            # Strided, not contiguous: rank r takes positions r, r + W, ..., so the W rank-batches
            # of step b together are exactly batch b of one process with W times the batch size.
            perm = perm[: per * self.world][self.rank :: self.world]
        return perm.to(self.split.x.device)

    def __len__(self) -> int:
        n = len(self.split) // self.world
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor | None]]:
        idx = self._indices()
        x_all, y_all = self.split.x, self.split.y
        for b in range(self.start_batch, len(self)):
            i = idx[b * self.batch_size : (b + 1) * self.batch_size]
            x = x_all.index_select(0, i)
            if self.dynamic:
                # A fresh Bernoulli draw of every image each epoch (Salakhutdinov & Murray 2008),
                # seeded per batch so that iteration can resume at any batch with no saved state.
                # (+ 104729 * rank: each DDP rank draws its own noise; rank 0 is the 1-process draw)
                g = epoch_generator(self.seed + 7919 + 104729 * self.rank, self.epoch * 1_000_003 + b, x_all.device)
                x = torch.bernoulli(x, generator=g)
            yield x, (None if y_all is None else y_all.index_select(0, i))
