"""Rows of memory-mapped ``.npy`` files (one file or a folder of shards), read by contiguous slices.

:class:`Rows` is what a streamed split holds instead of a tensor: ``rows[a:b]`` copies rows a..b-1
off the mapping as float32 in [0, 1] and hands the mapped pages back (``MADV_DONTNEED``), so a pass
over a file of any size keeps the process's resident memory flat. :mod:`vaekit.data.stream` orders
the reads.
"""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import DataError
from .arrays import to_nchw

HEAD_BYTES = 64 << 20  # how much of the first file decides whether uint8 rows are 0/1 or 0..255


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
        # uint8 0/1 data stays 0/1, as in memory (core.pixel_scale); without reading the whole file
        # the scale is decided on its first rows, and a later row above 1 is refused, not rescaled.
        self.scale = 1.0
        if first.dtype == np.uint8:
            n = max(1, min(len(first), HEAD_BYTES // max(1, first[:1].nbytes)))
            head = np.array(first[:n])
            _release(first, 0, n)
            self.scale = 255.0 if head.max(initial=0) > 1 else 1.0

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
            if self.scale == 1.0 and x.size and x.max() > 1:
                raise DataError(f"{self.where}: the first rows hold only 0/1 (read as binary data) but rows from "
                                f"{at} on go up to {int(x.max())}; store 0/1 and 0..255 data in separate files")
            return x.astype(np.float32) * np.float32(1 / self.scale)
        x = x.astype(np.float32)
        if not (np.isfinite(x).all() and x.min(initial=0) >= 0 and x.max(initial=0) <= 1):
            raise DataError(f"{self.where}: rows from {at} on hold values outside [0, 1] or NaN; rescale the data")
        return x

    def describe(self) -> str:
        """The stored values and their scaling, for the data log line."""
        if self.parts[0].dtype == np.uint8:
            how = "binary 0/1, kept as 0/1 (decided on the first rows)" if self.scale == 1.0 else "divided by 255"
            return f"uint8 values ({how})"
        return f"{self.parts[0].dtype} values in [0, 1], used as is"

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
