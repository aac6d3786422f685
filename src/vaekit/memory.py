"""Keep freed host memory in the process while training (glibc's malloc; a no-op elsewhere).

PyTorch allocates every activation and gradient of a CPU training step afresh from ``malloc``.
With glibc's defaults a block of a few MB is served by ``mmap`` (or the top of the heap is given
back by ``trim``) and freed straight back to the kernel, so the next step touches brand-new pages:
the kernel zero-fills each 4 KiB page on first touch. For ``keras-conv`` that is ~17,000 page
faults per step of 128 (activations of 128 x 32 x 28 x 28 floats are 12.8 MB each), a large share
of the step's CPU time (measured in ``benchmarks/results/profile-conv.json``). TensorFlow's allocator keeps
its memory; :func:`keep_freed_memory` makes malloc do the same for the duration of a run: blocks
up to ``mmap_max`` come from the heap, and the heap is not trimmed. The peak memory of a step is
then held until the run ends (then given back with ``malloc_trim``).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from typing import Iterator

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers, from glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
GLIBC_DEFAULTS = {M_TRIM_THRESHOLD: 128 * 1024, M_MMAP_THRESHOLD: 128 * 1024}
MMAP_MAX = 32 * 1024 * 1024  # the largest mmap threshold glibc accepts on 64-bit (HEAP_MAX_SIZE / 2)


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return libc if libc is not None and hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


@contextlib.contextmanager
def keep_freed_memory(enabled: bool = True) -> Iterator[bool]:
    """Within the block, malloc keeps freed memory for reuse; yields whether that took effect.

    On leaving, glibc's default thresholds are set again (its dynamic mmap threshold stays off, as
    after any ``mallopt``) and the kept memory is returned to the system. Without glibc (macOS, Windows, musl) it does nothing and yields False.
    """
    libc = _libc() if enabled else None
    if libc is None:
        yield False
        return
    ok = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_MAX)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
    try:
        yield ok
    finally:
        for param, value in GLIBC_DEFAULTS.items():
            libc.mallopt(param, value)
        libc.malloc_trim(0)
