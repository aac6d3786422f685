"""Data larger than memory: memory-mapped ``.npy`` files and folders of ``.npy`` shards.

``data.source = "arrays"`` with a ``.npy`` file or a folder of ``.npy`` shards is opened here when
it should stream: ``data.stream = "on"`` (``--stream``), or ``"auto"`` (the default) and its
float32 size is more than half the memory available. The rows stay on disk (``np.load(...,
mmap_mode="r")``); :class:`StreamLoader` reads them block by block, in a seeded order:

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

import mmap
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError
from .arrays import to_nchw
from .core import Data, Split, TensorLoader, epoch_generator

if TYPE_CHECKING:
    from ..config import DataConfig

BLOCK = 16384  # rows per contiguous read: 12 MB of MNIST pixels


class Rows:
    """Rows of one or more memory-mapped ``.npy`` files as one array of float32 in [0, 1].

    ``rows[a:b]`` reads rows a..b-1 (a copy, scaled like in-memory data): what ``elbo``,
    reconstructions and ``after_fit`` slice. ``to(device)`` is a no-op: the rows stay on disk.
    """

    def __init__(self, files: list[Path]) -> None:
        self.parts = [_open(f) for f in files]
        first = self.parts[0]
        for f, p in zip(files, self.parts):
            if p.shape[1:] != first.shape[1:] or p.dtype != first.dtype:
                raise DataError(f"{f}: shard has shape {p.shape[1:]} / {p.dtype}, but {files[0]} has "
                                f"{first.shape[1:]} / {first.dtype}; all shards must match")
        self.starts = np.cumsum([0] + [len(p) for p in self.parts])  # (shards + 1,)
        self.where = str(files[0].parent if len(files) > 1 else files[0])
        self.shape = (int(self.starts[-1]), *to_nchw(first[:1], self.where).shape[1:])

    def __len__(self) -> int:
        return self.shape[0]

    def to(self, device: torch.device | str) -> "Rows":
        return self

    @property
    def nbytes32(self) -> int:
        """Bytes as float32 in memory: what the in-memory path would hold."""
        return int(np.prod(self.shape)) * 4

    def read(self, a: int, b: int) -> np.ndarray:
        """Rows a..b-1 as float32 in [0, 1], (b - a, *shape)."""
        return self.unit(self.read_raw(a, b), a)

    def read_raw(self, a: int, b: int) -> np.ndarray:
        """Rows a..b-1 as stored (uint8 stays uint8: 4x less memory than float32), (b - a, *shape)."""
        out = []
        for i, p in enumerate(self.parts):
            lo, hi = max(a, int(self.starts[i])), min(b, int(self.starts[i + 1]))
            if lo < hi:
                a0, b0 = lo - int(self.starts[i]), hi - int(self.starts[i])
                out.append(np.array(p[a0:b0]))  # a copy: then the mapped pages can be let go
                _release(p, a0, b0)
        raw = out[0] if len(out) == 1 else np.concatenate(out)
        return to_nchw(raw, self.where)

    def unit(self, x: np.ndarray, at: int = 0) -> np.ndarray:
        """Stored rows -> float32 in [0, 1]: uint8 / 255, floats checked (``at``: for the message)."""
        if x.dtype == np.uint8:
            return x.astype(np.float32) * np.float32(1 / 255)
        x = x.astype(np.float32)
        if not (np.isfinite(x).all() and x.min(initial=0) >= 0 and x.max(initial=0) <= 1):
            raise DataError(f"{self.where}: rows from {at} on hold values outside [0, 1] or NaN; rescale the data")
        return x

    def __getitem__(self, idx: slice) -> Tensor:
        if not isinstance(idx, slice) or idx.step not in (None, 1):
            raise TypeError("streamed rows are read by contiguous slices only")
        a, b, _ = idx.indices(len(self))
        return torch.from_numpy(self.read(a, max(a, b)))


def _release(arr: np.ndarray, a: int, b: int) -> None:
    """Unmap the pages of rows a..b-1 from this process (MADV_DONTNEED on the file mapping).

    Pages of a file mapping that were read count in the process's RSS until unmapped; without
    this a full pass over a 4 GB memmap ends with ~4 GB resident. The kernel's page cache still
    keeps them, so a later epoch reads them back without I/O when memory allows.
    """
    m = getattr(arr, "_mmap", None)
    if m is None or not hasattr(mmap, "MADV_DONTNEED"):
        return
    row = int(np.prod(arr.shape[1:])) * arr.dtype.itemsize
    base = int(arr.offset) % mmap.ALLOCATIONGRANULARITY  # where the data starts in the mapping
    start = (base + a * row) // mmap.PAGESIZE * mmap.PAGESIZE
    try:
        m.madvise(mmap.MADV_DONTNEED, start, base + b * row - start)
    except (OSError, ValueError):  # advice only: never fail a read over it
        pass


def _open(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as err:  # noqa: BLE001 - ValueError, OSError, ...: one clear line
        raise DataError(f"{path}: cannot be memory-mapped ({' '.join(str(err).split())}); save it with np.save") from None
    if not (arr.dtype == np.uint8 or np.issubdtype(arr.dtype, np.floating)) or arr.ndim not in (2, 3, 4) or not len(arr):
        raise DataError(f"{path}: streaming needs a non-empty uint8 or float array of rank 2-4, got {arr.dtype} {arr.shape}")
    return arr


def files_of(path: str | Path) -> list[Path]:
    """A ``.npy`` file, or the sorted ``.npy`` shards of a folder."""
    p = Path(path).expanduser()
    if p.is_dir():
        files = sorted(p.glob("*.npy"))
        if not files:
            raise DataError(f"{p}: folder has no .npy shards")
        return files
    if p.suffix.lower() != ".npy" or not p.is_file():
        raise DataError(f"{p}: streaming reads a .npy file or a folder of .npy shards (an .npz cannot be memory-mapped)")
    return [p]


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
                     (cfg.binarize in ("threshold", "static"), f"data.binarize={cfg.binarize} (use dynamic)")):
        if bad:
            raise DataError(f"{cfg.path}: streamed data does not support {why}")
    rows = Rows(files_of(cfg.path))
    n = min(len(rows), cfg.limit) if cfg.limit is not None else len(rows)
    x: Tensor | Rows = rows if n == len(rows) else rows[0:n]
    if cfg.stream == "off":
        x = rows[0:n]
    return Data(train=Split(x), val=None, test=None, shape=rows.shape[1:], name=f"arrays:{cfg.path}",  # type: ignore[arg-type]
                binarize=cfg.binarize, threshold=cfg.threshold)


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
