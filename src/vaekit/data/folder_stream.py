"""Image folders decoded on the fly by DataLoader worker processes, for folders beyond memory.

``data.source = "folder"`` with ``data.stream = "on"`` (or ``"auto"`` when the decoded float32
images would take more than half the available memory) lists the files once and decodes each
image when a batch needs it, in DataLoader worker processes: ``min(4, os.cpu_count())`` of them,
or :class:`FolderLoader`'s ``workers`` argument (no config key sets it). Files are random access,
so the order is the same full seeded permutation as :class:`~vaekit.data.core.TensorLoader` (same
batches, same DDP striding), and ``set_epoch(epoch, start_batch)`` resumes exactly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError
from .core import Data, Split, epoch_generator
from .folder import GREY_MODES, _decode, _mode_of, bad_files_error, list_images, skipped_note

if TYPE_CHECKING:
    from ..config import DataConfig


class ImageRows:
    """The images of a folder as rows ``(N, C, H, W)``, decoded when read; ``to()`` is a no-op."""

    def __init__(self, root: str | Path, image_size: list[int] | None, grayscale: bool | None,
                 skip_bad: bool = False) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DataError(f"{self.root}: folder does not exist; check data.path (--data-path)")
        listing = list_images(self.root)
        self.files, labels, self.classes = listing.files, listing.labels, listing.classes
        if not self.files:
            raise DataError(f"{self.root}: no image files found")
        # Every header is read now, so files that are no images are all named before training;
        # a file truncated after a valid header still fails when its batch is decoded.
        modes = [_mode_of(p) for p in self.files]
        bad = [(p, "not an image Pillow can read") for p, m in zip(self.files, modes) if m is None]
        if bad and (not skip_bad or len(bad) == len(self.files)):
            raise bad_files_error(self.root, bad, len(self.files))
        self.notes = listing.notes(self.root) + ([skipped_note(self.root, bad)] if bad else [])
        self.skipped = [(str(p), why) for p, why in bad]
        if bad:
            ok = [m is not None for m in modes]
            self.files = [p for p, k in zip(self.files, ok) if k]
            labels = None if labels is None else [lab for lab, k in zip(labels, ok) if k]
        if grayscale is None:
            grayscale = all(m in GREY_MODES for m in modes if m is not None)
        self.mode = "L" if grayscale else "RGB"
        self.size = None if image_size is None else (int(image_size[0]), int(image_size[1]))
        self.shape: tuple[int, ...] | None = None  # set from the first image: every other must match it
        first = self.decode(0)
        self.shape = (len(self.files), *first.shape)
        self.y = None if labels is None else torch.tensor(labels, dtype=torch.int64)

    def decode(self, i: int) -> np.ndarray:
        """Image ``i`` as uint8 (C, H, W); a size other than the first image's is an error."""
        a = _decode(self.files[i], self.mode, self.size).transpose(2, 0, 1)
        if self.shape is not None and a.shape != self.shape[1:]:
            raise DataError(f"{self.files[i]}: is {a.shape[1]}x{a.shape[2]} but the first image is "
                            f"{self.shape[2]}x{self.shape[3]}; set data.image_size=[H,W] to resize all")
        return a

    def __len__(self) -> int:
        return self.shape[0]

    def to(self, device: torch.device | str) -> "ImageRows":
        return self

    @property
    def nbytes32(self) -> int:
        return int(np.prod(self.shape)) * 4

    def __getitem__(self, idx: slice) -> Tensor:
        a, b, _ = idx.indices(len(self))
        x = np.stack([self.decode(i) for i in range(a, max(a, b))]) if b > a else np.empty((0, *self.shape[1:]), np.uint8)
        return torch.from_numpy(x).float().div_(255)

    def __getstate__(self) -> dict:  # sent to worker processes: file names, not decoded pixels
        return dict(self.__dict__)


class _Images(torch.utils.data.Dataset):
    def __init__(self, rows: ImageRows) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        return torch.from_numpy(self.rows.decode(i)), i


class FolderLoader:
    """The Loader over :class:`ImageRows`: a seeded permutation per epoch, batches decoded by workers."""

    def __init__(self, rows: ImageRows, batch_size: int, *, seed: int = 0, dynamic: bool = False,
                 rank: int = 0, world: int = 1, workers: int | None = None) -> None:
        self.rows, self.batch_size, self.seed, self.dynamic = rows, batch_size, seed, dynamic
        self.rank, self.world = rank, world
        self.workers = min(4, os.cpu_count() or 1) if workers is None else workers
        self.epoch = self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __len__(self) -> int:
        return -(-(len(self.rows) // self.world) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor | None]]:
        n = len(self.rows)
        perm = torch.randperm(n, generator=epoch_generator(self.seed, self.epoch))
        mine = perm[: n // self.world * self.world][self.rank :: self.world].tolist()  # as TensorLoader
        batches = [mine[b * self.batch_size : (b + 1) * self.batch_size] for b in range(self.start_batch, len(self))]
        loader = torch.utils.data.DataLoader(_Images(self.rows), batch_sampler=batches, num_workers=self.workers)
        for b, (x, i) in enumerate(loader, start=self.start_batch):
            x = x.float().div_(255)  # (B, C, H, W)
            if self.dynamic:
                g = epoch_generator(self.seed + 7919 + 104729 * self.rank, self.epoch * 1_000_003 + b)
                x = torch.bernoulli(x, generator=g)
            yield x, (None if self.rows.y is None else self.rows.y[i])


def wants_stream(cfg: DataConfig, available: int) -> bool:
    if cfg.source != "folder" or cfg.stream == "off" or not cfg.path:
        return False
    if cfg.stream == "on":
        return True
    try:
        return ImageRows(cfg.path, cfg.image_size, cfg.grayscale, cfg.skip_bad).nbytes32 > available // 2
    except DataError:  # a bad folder: the in-memory loader reports it, as it always has
        return False


def open_stream(cfg: DataConfig) -> Data:
    for bad, why in ((cfg.val_size, "data.val_size"), (cfg.limit, "data.limit"),
                     (cfg.binarize in ("threshold", "static"), f"data.binarize={cfg.binarize} (use dynamic)")):
        if bad:
            raise DataError(f"{cfg.path}: a streamed image folder does not support {why}")
    rows = ImageRows(cfg.path, cfg.image_size, cfg.grayscale, cfg.skip_bad)  # type: ignore[arg-type]
    c, h, w = rows.shape[1:]
    log = [f"data folder:{cfg.path}: {len(rows)} train examples of {c}x{h}x{w} (channels x height x width), "
           f"decoded from disk batch by batch; {'grey' if rows.mode == 'L' else 'RGB'} uint8 divided by 255"
           + (f"; resized to {h}x{w}" if rows.size else "") + (f"; binarized: {cfg.binarize}" if cfg.binarize != "none" else ""),
           *rows.notes]
    return Data(train=Split(rows, rows.y), val=None, test=None, shape=rows.shape[1:],  # type: ignore[arg-type]
                name=f"folder:{cfg.path}", binarize=cfg.binarize, threshold=cfg.threshold, classes=rows.classes,
                log=log, skipped=rows.skipped)
