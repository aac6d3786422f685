"""Progress a person watches: a tqdm bar on a terminal, a plain line every few seconds elsewhere.

In a log file or under nohup a bar prints nothing useful (tqdm disables itself without a TTY), so a
50-second evaluation looked hung. One policy for every long job: a bar when the stream is a
terminal (:func:`on_terminal`), otherwise a line every :func:`line_seconds` (``VAEKIT_PROGRESS_SECONDS``,
default 10), with an ETA from the rate so far (:func:`duration`). Two shapes use it:

- :func:`progress`, one count to a total (evaluation's NLL): an object with the part of tqdm's
  interface the commands use (``update``, ``set_postfix``, ``close``) either way;
- :class:`Progress`, training: a bar per epoch, the whole run's ETA, and lines through the
  trainer's ``log`` (so a library caller's log function receives them).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Callable, TextIO


def duration(seconds: float) -> str:
    """``3h02m``, ``4m05s``, ``12s``."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def line_seconds(default: float = 10.0) -> float:
    """Seconds between plain progress lines: ``VAEKIT_PROGRESS_SECONDS``, else ``default``."""
    return float(os.environ.get("VAEKIT_PROGRESS_SECONDS", default))


def on_terminal(stream: Any) -> bool:
    """Whether ``stream`` is a terminal, where a bar redraws in place (else: plain lines)."""
    return bool(getattr(stream, "isatty", lambda: False)())


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
    every = line_seconds(every)
    if enabled and on_terminal(file):
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit != "it", initial=initial, leave=False,
                    file=file)
    return Lines(total, desc, unit=unit, every=every, initial=initial, file=file, enabled=enabled)


class Progress:
    """What a person watching the run sees.

    On a terminal: a tqdm bar per epoch whose postfix shows the running loss terms and the whole
    run's ETA. Without one (a log file, nohup, CI), tqdm shows nothing, so a line every ``every``
    seconds (``VAEKIT_PROGRESS_SECONDS``, default 10) says where the run is instead. The ETA is
    (time so far / batches so far) x batches left, so evaluation and checkpoint time count too.
    """

    def __init__(self, enabled: bool, epochs: int, batches: int, log: Callable[[str], None],
                 stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        tty = on_terminal(self.stream)
        self.bar_on, self.lines_on = enabled and tty, enabled and not tty
        self.every = line_seconds()
        self.epochs, self.batches, self.log = epochs, batches, log
        self.t0 = self.last = time.perf_counter()
        self.done, self.epoch, self.batch = 0, 0, 0
        self.bar: Any = None

    def start(self, epoch: int, batch: int) -> None:
        """Epoch ``epoch + 1`` begins (or resumes) at batch ``batch``."""
        self.epoch, self.batch = epoch, batch
        if self.bar_on:
            from tqdm import tqdm

            self.bar = tqdm(total=self.batches, initial=batch, desc=f"epoch {epoch + 1}/{self.epochs}",
                            leave=False, file=self.stream)

    def eta(self) -> str:
        left = (self.epochs - self.epoch - 1) * self.batches + (self.batches - self.batch)
        return duration((time.perf_counter() - self.t0) / self.done * left) if self.done else "?"

    def step(self, averages: Callable[[], dict[str, float]]) -> None:
        """One batch done; ``averages`` (the running means, a device sync) is called only to show them."""
        self.batch += 1
        self.done += 1
        if self.bar is not None:
            if self.batch % 25 == 0 or self.batch == self.batches:
                terms = ", ".join(f"{k} {v:.2f}" for k, v in averages().items())
                self.bar.set_postfix_str(f"{terms}; run ETA {self.eta()}", refresh=False)
            self.bar.update(1)
        elif self.lines_on and time.perf_counter() - self.last >= self.every:
            self.last = time.perf_counter()
            terms = "  ".join(f"{k} {v:.2f}" for k, v in averages().items())
            self.log(f"epoch {self.epoch + 1}/{self.epochs}  batch {self.batch}/{self.batches}  "
                     f"{terms}  run ETA {self.eta()}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


__all__ = ["Lines", "Progress", "duration", "line_seconds", "on_terminal", "progress"]
