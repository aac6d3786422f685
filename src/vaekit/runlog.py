"""What a run records and shows as it trains: running sums of the named terms, metric rows,
TensorBoard, and the progress a person watches (a bar on a terminal, periodic lines in a log)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, TextIO

import torch

from . import checkpoint
from .run import METRICS, read_metrics


class Running:
    """Per-example sums of the named terms over the current epoch, kept on the device."""

    def __init__(self) -> None:
        self.sums: torch.Tensor | None = None
        self.names: list[str] = []
        self.count = 0

    def add(self, items: dict[str, torch.Tensor], n: int) -> None:
        batch = torch.stack([v.detach() for v in items.values()]) * n  # (terms,)
        self.sums = batch if self.sums is None else self.sums + batch
        self.names, self.count = list(items), self.count + n

    def averages(self) -> dict[str, float]:
        if self.sums is None:
            return {}
        return dict(zip(self.names, (self.sums / self.count).tolist()))

    def state(self) -> dict[str, Any]:
        # float32 values survive tolist() exactly, so a resumed epoch reports the same averages.
        return {"names": self.names, "count": self.count, "sums": None if self.sums is None else self.sums.tolist()}

    def load(self, state: dict[str, Any] | None, device: torch.device) -> None:
        if state and state.get("sums") is not None:
            self.sums = torch.tensor(state["sums"], dtype=torch.float32, device=device)
            self.names, self.count = list(state["names"]), int(state["count"])


def tensorboard_writer(run_dir: Path, enabled: bool, log: Callable[[str], None] | None = None) -> Any:
    """A SummaryWriter in ``run_dir/tensorboard`` when asked for and tensorboard is installed; when
    it is asked for (the default) but missing, one log line says so instead of writing nothing silently."""
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # optional extra: vaekit[tensorboard]
        if log is not None:
            log("note: train.tensorboard is on but the tensorboard package is not installed, so no "
                "TensorBoard logs are written (pip install 'vaekit[tensorboard]', or set train.tensorboard=false)")
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


def format_row(row: dict[str, Any], epochs: int) -> str:
    """One log line: the epoch, each split's loss with its named terms, the seconds."""
    parts = [f"epoch {row['epoch']}/{epochs}"]
    for prefix in ("train", "trainset", "val", "test"):  # trainset: the model evaluated on the training data
        if f"{prefix}_loss" in row:
            extra = ", ".join(
                f"{k[len(prefix) + 1:]} {v:.2f}" for k, v in row.items()
                if k.startswith(prefix + "_") and k != f"{prefix}_loss" and isinstance(v, (int, float))
            )
            parts.append(f"{prefix} loss {row[prefix + '_loss']:.2f} ({extra})")
    parts.append(f"{row['seconds']:.1f}s")
    return "  ".join(parts)


def truncate_metrics(path: Path, epoch: int) -> None:
    """Drop metric rows written after the checkpoint we resume from (a crash between the two)."""
    rows = [r for r in read_metrics(path) if r.get("epoch", 0) <= epoch]
    checkpoint.atomic_write_text(path / METRICS, "".join(json.dumps(r) + "\n" for r in rows))


def duration(seconds: float) -> str:
    """``3h02m``, ``4m05s``, ``12s``."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


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
        tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bar_on, self.lines_on = enabled and tty, enabled and not tty
        self.every = float(os.environ.get("VAEKIT_PROGRESS_SECONDS", "10"))
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
