"""What a run records as it trains: running sums of the named terms, metric rows, TensorBoard.
(The progress a person watches is :class:`vaekit.progress.Progress`.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

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
