"""Data larger than memory: memory-mapped ``.npy`` files and folders of ``.npy`` shards.

``data.source = "arrays"`` with a ``.npy`` file or a folder of ``.npy`` shards is opened here when
it should stream: ``data.stream = "on"`` (``--stream``), or ``"auto"`` (the default) and its
float32 size is more than half the memory available. The rows stay on disk (``np.load(...,
mmap_mode="r")``, :class:`~vaekit.data.memmap.Rows`); :class:`StreamLoader` reads them block by block, in a seeded order:

- the blocks (``BLOCK`` contiguous rows) are visited in a permutation drawn from (seed, epoch),
  and the rows inside each block are permuted by (seed, epoch, block), so every epoch's order is a
  pure function of the seed and the epoch and ``set_epoch(epoch, start_batch)`` can resume at any
  batch without saved state (the exact-resume contract of the trainer);
- reads are contiguous (fast on disk), and one block is read ahead in a thread;
- memory holds two blocks, whatever the file's size.

The shuffle is coarser than :class:`~vaekit.data.core.TensorLoader`'s full permutation (rows of a
batch come from one or two blocks); for i.i.d. rows stored in random order it makes no difference.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError
from .core import Data, Split, TensorLoader, epoch_generator
from .memmap import Rows, files_of

__all__ = ["BLOCK", "Rows", "StreamLoader", "files_of", "make_loader", "open_stream", "wants_stream"]

if TYPE_CHECKING:
    from ..config import DataConfig

BLOCK = 16384  # rows per contiguous read: 12 MB of MNIST pixels


def available_memory() -> int:
    """Bytes of memory available now (MemAvailable), or total physical memory."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def wants_stream(cfg: DataConfig) -> bool:
    """Whether ``cfg`` is opened here: a folder of shards always; a ``.npy`` or an image folder by
    ``data.stream``."""
    if cfg.source == "folder":
        from . import folder_stream

        return folder_stream.wants_stream(cfg, available_memory())
    if cfg.source != "arrays" or not cfg.path:
        return False
    if Path(cfg.path).expanduser().is_dir():
        return True
    if cfg.stream == "off" or Path(cfg.path).suffix.lower() != ".npy":
        return cfg.stream == "on"  # "on" with an .npz: files_of names the problem
    return cfg.stream == "on" or _size32(Path(cfg.path).expanduser()) > available_memory() // 2


def _size32(path: Path) -> int:
    """Float32 bytes of a .npy from its header; 0 when unreadable (the in-memory path says why)."""
    try:
        return int(np.prod(np.load(path, mmap_mode="r", allow_pickle=False).shape)) * 4
    except Exception:  # noqa: BLE001 - any unreadable file: not ours to judge here
        return 0


def open_stream(cfg: DataConfig) -> Data:
    """The training rows on disk (streamed) or, with ``data.stream = "off"``, read into memory."""
    if cfg.source == "folder":
        from . import folder_stream

        return folder_stream.open_stream(cfg)
    for bad, why in ((cfg.val_size, "data.val_size (hold out a separate file instead)"),
                     (cfg.binarize in ("threshold", "static"), f"data.binarize={cfg.binarize} (use dynamic)"),
                     (cfg.image_size is not None, "data.image_size (resize the files first)"),
                     (cfg.grayscale is not None, "data.grayscale (convert the files first)"),
                     (cfg.test_limit is not None or cfg.split == "all", "a test split (data.test_limit, data.split)")):
        if bad:
            raise DataError(f"{cfg.path}: streamed data does not support {why}")
    rows = Rows(files_of(cfg.path))
    n = min(len(rows), cfg.limit) if cfg.limit is not None else len(rows)
    x: Tensor | Rows = rows if n == len(rows) else rows[0:n]
    if cfg.stream == "off":
        x = rows[0:n]
    how = "streamed from disk" if isinstance(x, Rows) else "read into memory"
    log = [f"data arrays:{cfg.path}: {n} train examples of {'x'.join(map(str, rows.shape[1:]))}, {how}; "
           f"{rows.describe()}" + (f"; binarized: {cfg.binarize}" if cfg.binarize != "none" else "")]
    return Data(train=Split(x), val=None, test=None, shape=rows.shape[1:], name=f"arrays:{cfg.path}",  # type: ignore[arg-type]
                binarize=cfg.binarize, threshold=cfg.threshold, log=log)


class StreamLoader:
    """The :class:`~vaekit.data.Loader` over :class:`Rows`: block-shuffled, resumable, sharded.

    With ``world`` ranks, global batches of ``batch_size * world`` rows are read and rank r keeps
    rows r, r + W, ... of each (like ``TensorLoader``); the epoch drops ``N mod W`` rows.
    """

    def __init__(self, rows: Rows, batch_size: int, *, seed: int = 0, dynamic: bool = False,
                 rank: int = 0, world: int = 1, block: int = BLOCK) -> None:
        self.rows, self.batch_size, self.seed, self.dynamic = rows, batch_size, seed, dynamic
        self.rank, self.world, self.block = rank, world, block
        self.n = len(rows) - len(rows) % world
        self.epoch = self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __len__(self) -> int:
        return -(-self.n // (self.batch_size * self.world))

    def _order(self) -> Iterator[np.ndarray]:
        """Row indices of the epoch, one permuted block at a time."""
        nblocks = -(-self.n // self.block)
        for k in torch.randperm(nblocks, generator=epoch_generator(self.seed, self.epoch)).tolist():
            lo, hi = k * self.block, min(self.n, (k + 1) * self.block)
            g = epoch_generator(self.seed + 31, self.epoch * 1_000_003 + k)
            yield lo + torch.randperm(hi - lo, generator=g).numpy()

    def __iter__(self) -> Iterator[tuple[Tensor, None]]:
        gb = self.batch_size * self.world
        skip = self.start_batch * gb  # rows before the first batch to yield
        pool = ThreadPoolExecutor(1)  # reads block k + 1 while block k is trained on
        try:
            pending, carry, b = None, None, self.start_batch
            for idx in self._order():
                if skip >= len(idx):  # whole block before the resume point: not read
                    skip -= len(idx)
                    continue
                lo, hi = int(idx.min()), int(idx.max()) + 1
                job = pool.submit(self.rows.read_raw, lo, hi)
                if pending is not None:
                    carry, b = yield from self._batches(carry, pending, b, gb)
                pending = (job, idx[skip:] - lo)
                skip = 0
            if pending is not None:
                carry, b = yield from self._batches(carry, pending, b, gb)
            if carry is not None and len(carry):
                yield self._emit(carry, b)
        finally:
            pool.shutdown(wait=True)

    def _batches(self, carry: np.ndarray | None, pending: tuple, b: int, gb: int) -> Iterator[tuple[Tensor, None]]:
        job, local = pending
        rows = job.result()[local]  # (len(local), *shape), stored dtype
        if carry is not None and len(carry):
            rows = np.concatenate([carry, rows])
        i = 0
        while len(rows) - i >= gb:
            yield self._emit(rows[i : i + gb], b)
            i, b = i + gb, b + 1
        return rows[i:], b

    def _emit(self, x: np.ndarray, b: int) -> tuple[Tensor, None]:
        t = torch.from_numpy(np.ascontiguousarray(self.rows.unit(x[self.rank :: self.world])))
        if self.dynamic:  # a fresh Bernoulli draw per batch, seeded so resume needs no state
            t = torch.bernoulli(t, generator=epoch_generator(self.seed + 7919 + 104729 * self.rank, self.epoch * 1_000_003 + b))
        return t, None


def make_loader(split: Split, batch_size: int, **kw: object) -> TensorLoader | StreamLoader:
    """A :class:`StreamLoader` for rows on disk, a ``FolderLoader`` for images decoded on the fly,
    else the in-memory :class:`TensorLoader`."""
    from .folder_stream import FolderLoader, ImageRows

    if isinstance(split.x, ImageRows):
        return FolderLoader(split.x, batch_size, seed=int(kw.get("seed", 0)), dynamic=kw.get("binarize") == "dynamic",  # type: ignore[arg-type]
                            rank=int(kw.get("rank", 0)), world=int(kw.get("world", 1)))  # type: ignore[arg-type]
    if isinstance(split.x, Rows):
        return StreamLoader(split.x, batch_size, seed=int(kw.get("seed", 0)), dynamic=kw.get("binarize") == "dynamic",  # type: ignore[arg-type]
                            rank=int(kw.get("rank", 0)), world=int(kw.get("world", 1)))  # type: ignore[arg-type]
    return TensorLoader(split, batch_size, **kw)  # type: ignore[arg-type]
