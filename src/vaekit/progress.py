"""Progress for long commands: a tqdm bar in a terminal, a plain line every few seconds elsewhere.

In a log file or under nohup a bar prints nothing useful (tqdm disables itself without a TTY), so a
50-second evaluation looked hung. (Training has its own, with the whole run's ETA:
:class:`vaekit.runlog.Progress`.) :func:`progress` returns an object with the part of tqdm's
interface the commands use (``update``, ``set_postfix``, ``close``) either way.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

from .runlog import duration


class Lines:
    """tqdm's interface as one ``desc: done/total (pct), rate, ETA`` line every ``every`` seconds."""

    def __init__(self, total: int, desc: str, unit: str = "it", every: float = 10.0,
                 initial: int = 0, file: TextIO | None = None, enabled: bool = True) -> None:
        self.total, self.desc, self.unit, self.every = total, desc, unit, every
        self.n, self.start_n, self.file, self.enabled = initial, initial, file or sys.stderr, enabled
        self.start = self.last = time.monotonic()
        self.postfix = ""

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if self.enabled and now - self.last >= self.every:
            self.last = now
            self.file.write(self.line(now) + "\n")
            self.file.flush()

    def line(self, now: float) -> str:
        done = self.n - self.start_n
        rate = done / max(now - self.start, 1e-9)
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        eta = f", ETA {duration((self.total - self.n) / rate)}" if self.total and rate > 0 else ""
        return f"{self.desc}: {self.n}/{self.total}{pct}, {rate:.3g} {self.unit}/s{eta}{self.postfix}"

    def set_postfix(self, values: dict[str, Any], refresh: bool = False) -> None:
        self.postfix = "  " + " ".join(f"{k} {v}" for k, v in values.items()) if values else ""

    def close(self) -> None:
        pass


def progress(total: int, desc: str, *, enabled: bool = True, unit: str = "it", initial: int = 0,
             file: TextIO | None = None, every: float = 10.0) -> Any:
    """A tqdm bar on a terminal, :class:`Lines` otherwise, silent when not ``enabled``."""
    file = file or sys.stderr
    every = float(os.environ.get("VAEKIT_PROGRESS_SECONDS", every))  # seconds between plain lines
    if enabled and file.isatty():
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit != "it", initial=initial, leave=False,
                    file=file)
    return Lines(total, desc, unit=unit, every=every, initial=initial, file=file, enabled=enabled)
