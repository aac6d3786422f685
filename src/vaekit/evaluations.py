"""A run's evaluations, each tied to the weights it measured and the settings it used.

``vaekit evaluate`` writes ``RUN/evaluations/<split>-n<N>-k<k>-L<samples>-seed<seed>[-discretized].json``:
one file per setting, so a quick ``--limit 500 --k 50`` never replaces a full k = 1000 evaluation,
and each file records the weights it measured (a hash of the parameters, the epoch and step). A
reader (the report, ``compare``) keeps the evaluations of the current weights and says when the
others are stale, e.g. after ``--resume`` trained further.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

FOLDER = "evaluations"
LEGACY = "evaluation.json"  # written by vaekit before evaluations were keyed; its weights are unknown


def weights_id(model: nn.Module) -> str:
    """A short hash of every parameter and buffer (names, shapes, values): equal iff the weights are."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()[:16]


def settings_name(report: dict[str, Any]) -> str:
    """The file stem for a report's settings: split, n, k, posterior samples, seed, discretized."""
    k = report.get("nll", {}).get("k", 0)
    disc = "-discretized" if report.get("discretized") else ""
    return f"{report['split']}-n{report['n']}-k{k}-L{report['elbo']['samples']}-seed{report['seed']}{disc}"


def save(run_dir: Path, report: dict[str, Any]) -> Path:
    """Write ``report`` under its settings name (atomically) and return the path."""
    from .checkpoint import atomic_write_text

    path = Path(run_dir) / FOLDER / f"{settings_name(report)}.json"
    atomic_write_text(path, json.dumps(report, indent=2) + "\n")
    return path


def load_all(run_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every evaluation of a run (newest first) and a note per file that could not be read."""
    run_dir = Path(run_dir)
    files = sorted((run_dir / FOLDER).glob("*.json")) if (run_dir / FOLDER).is_dir() else []
    if (run_dir / LEGACY).is_file():
        files.append(run_dir / LEGACY)
    out, notes = [], []
    for f in files:
        try:
            report = json.loads(f.read_text(encoding="utf-8", errors="replace"))
            if not isinstance(report, dict) or "elbo" not in report:
                if f.name == LEGACY and isinstance(report, dict):
                    continue  # a shipped model's summary (vaekit.pretrained), not an evaluate report
                raise ValueError("not a vaekit evaluation")
        except (OSError, ValueError) as err:
            notes.append(f"{f.name} could not be read ({' '.join(str(err).split())})")
            continue
        report["_file"] = f.name
        out.append(report)
    out.sort(key=lambda r: str(r.get("evaluated_at", "")), reverse=True)
    return out, notes


def split_current(reports: list[dict[str, Any]], current_id: str | None) -> tuple[list[dict], list[dict]]:
    """(evaluations of the weights ``current_id``, the stale rest); the current ones best first:
    most examples, then most importance samples."""
    cur = [r for r in reports if current_id is not None and r.get("weights", {}).get("id") == current_id]
    stale = [r for r in reports if r not in cur]
    cur.sort(key=lambda r: (r.get("n", 0), r.get("nll", {}).get("k", 0)), reverse=True)
    return cur, stale


__all__ = ["FOLDER", "LEGACY", "load_all", "save", "settings_name", "split_current", "weights_id"]
