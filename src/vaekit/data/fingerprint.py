"""Where a run's data is, and whether it is still the data the run was trained on.

A run records ``RUN/data.json``: the data's absolute path, its path relative to the run folder (so
a run moved together with its data still finds it), and a fingerprint of what training read.
``--resume`` refuses data whose fingerprint differs; ``evaluate`` and ``score`` warn (one line).

The fingerprint compares sizes and content, never modification times: a copy (``cp``, ``rsync``
without ``-t``, a fresh checkout) changes every mtime but not the data, and must not read as a
change. Content is hashed in full up to :data:`FULL_BYTES` in all; beyond that (big arrays, shard
folders) the hash covers every file's name and size plus :data:`BLOCKS` evenly spaced blocks of
each of (at most) :data:`SAMPLED_FILES` evenly chosen files. An edit that keeps every size and
misses every sampled block goes unseen; that is the price of not rereading terabytes at startup.
Built-in data (MNIST, digits) is identified by its fixed content hash.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import DataError

if TYPE_CHECKING:
    from ..config import DataConfig

DATA_JSON = "data.json"
FULL_BYTES = 256 << 20  # hash every byte up to this total (a few hundred ms)
BLOCK = 64 << 10
BLOCKS = 8  # sampled mode: blocks per sampled file (first and last included)
SAMPLED_FILES = 256


def resolved(cfg: "DataConfig") -> "DataConfig":
    """``cfg`` with ``data.path`` absolute, so the run finds its data from any directory."""
    if not cfg.path:
        return cfg
    return dataclasses.replace(cfg, path=str(Path(cfg.path).expanduser().resolve()))


def data_files(cfg: "DataConfig") -> list[Path]:
    """The files a source reads, in a stable order (empty for built-in data)."""
    if not cfg.path:
        return []
    root = Path(cfg.path).expanduser()
    if cfg.source == "folder":
        from .folder import list_images

        return list_images(root).files if root.is_dir() else []
    if root.is_dir():  # a folder of .npy shards
        return sorted(root.glob("*.npy"))
    return [root] if root.is_file() else []


def _blocks(size: int) -> list[int]:
    if size <= BLOCK * BLOCKS:
        return [0]  # small: read whole
    return [round(i * (size - BLOCK) / (BLOCKS - 1)) for i in range(BLOCKS)]


def _hash_files(files: list[Path], root: Path) -> dict[str, Any]:
    sizes = [f.stat().st_size for f in files]
    total = sum(sizes)
    full = total <= FULL_BYTES
    chosen = set(range(len(files))) if full or len(files) <= SAMPLED_FILES else \
        {round(i * (len(files) - 1) / (SAMPLED_FILES - 1)) for i in range(SAMPLED_FILES)}
    h = hashlib.sha256()
    for i, (f, size) in enumerate(zip(files, sizes)):
        name = str(f.relative_to(root))
        h.update(f"{name}\0{size}\0".encode())
        if i not in chosen:
            continue
        with open(f, "rb") as fh:
            if full:
                while chunk := fh.read(1 << 20):
                    h.update(chunk)
            else:
                for offset in _blocks(size):
                    fh.seek(offset)
                    h.update(fh.read(BLOCK if size > BLOCK * BLOCKS else size))
    return {"files": len(files), "bytes": total, "sha256": h.hexdigest(),
            "hashed": "all bytes" if full else f"names, sizes and {BLOCKS} blocks of {len(chosen)} files"}


def fingerprint(cfg: "DataConfig") -> dict[str, Any]:
    """What identifies the data ``cfg`` reads (see the module docstring)."""
    if cfg.source == "mnist":
        from .mnist import MNIST_NPZ_SHA256

        # Both the embedded copy and a download are verified against fixed sums when read.
        return {"source": "mnist", "sha256": MNIST_NPZ_SHA256, "hashed": "fixed identity (verified on load)"}
    if cfg.source == "digits":
        from sklearn.datasets import load_digits

        images = load_digits().images  # (1797, 8, 8), read in ~20 ms
        return {"source": "digits", "files": 1, "bytes": int(images.nbytes),
                "sha256": hashlib.sha256(images.tobytes()).hexdigest(), "hashed": "all bytes"}
    if not cfg.path:  # a registered source that reads no file: nothing vaekit can hash
        return {"source": cfg.source, "hashed": "nothing (a source that reads no data.path)"}
    root = Path(cfg.path).expanduser()
    if not root.exists():
        raise DataError(f"{root} does not exist")
    files = data_files(cfg)
    return {"source": cfg.source, **_hash_files(files, root if root.is_dir() else root.parent)}


def record(run_dir: Path, cfg: "DataConfig", classes: list[str] | None = None,
           skipped: list[Any] | None = None) -> dict[str, Any]:
    """Write ``RUN/data.json`` for data ``cfg`` (its path absolute) and its class names (label i is
    ``classes[i]``, e.g. a folder's subfolder names) and the files ``data.skip_bad`` left out;
    return what was written."""
    from ..checkpoint import atomic_write_text

    info: dict[str, Any] = {"path": cfg.path, "fingerprint": fingerprint(cfg), "classes": classes}
    if skipped:  # data.skip_bad: the unreadable files left out of training, and why
        info["skipped"] = [{"path": str(path), "why": str(why)} for path, why in skipped]
    if cfg.path:
        info["path_from_run"] = os.path.relpath(cfg.path, Path(run_dir).resolve())
    atomic_write_text(Path(run_dir) / DATA_JSON, json.dumps(info, indent=2) + "\n")
    return info


def recorded(run_dir: Path) -> dict[str, Any] | None:
    """``RUN/data.json``, or None for a run trained before it existed (or an unreadable one)."""
    try:
        info = json.loads((Path(run_dir) / DATA_JSON).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and isinstance(info.get("fingerprint"), dict) else None


def locate(run_dir: Path, cfg: "DataConfig") -> "DataConfig":
    """``cfg`` pointing at the data where it now is: its saved path when that exists, else the same
    place relative to the run folder (run and data moved together). The fingerprint check then
    says whether what is found there is the same data."""
    if not cfg.path or Path(cfg.path).expanduser().exists():
        return cfg
    info = recorded(run_dir) or {}
    rel = info.get("path_from_run")
    if isinstance(rel, str):
        moved = (Path(run_dir) / rel).resolve()
        if moved.exists():
            return dataclasses.replace(cfg, path=str(moved))
    return cfg


def _describe(fp: dict[str, Any]) -> str:
    size = fp.get("bytes")
    what = f"{fp.get('files', '?')} file(s), {size:,} bytes" if isinstance(size, int) else "built-in"
    return f"{what}, sha256 {str(fp.get('sha256', '?'))[:12]}"


def check_data_fingerprint(run_dir: str | Path, data_cfg: "DataConfig", mode: str = "warn", *,
                           path: str | Path | None = None,
                           log: Callable[[str], None] | None = None) -> str | None:
    """Compare the data ``data_cfg`` reads now with what ``run_dir`` was trained on.

    ``mode="refuse"`` raises :class:`DataError` (exit 2) when they differ (``--resume``);
    ``mode="warn"`` prints one ``vaekit: warning:`` line to stderr (or calls ``log``) and goes on.
    ``path``: the file a command is about to read instead (``score --data``); it is checked only
    when it is the training file itself (new data is new by design). Returns the message, or
    None when the data matches or the run has no record (trained before ``data.json`` existed).
    """
    run_dir = Path(run_dir)
    info = recorded(run_dir)
    if info is None:
        return None
    if path is not None:
        if not data_cfg.path or Path(path).expanduser().resolve() != Path(data_cfg.path).expanduser().resolve():
            return None
    then = info["fingerprint"]
    try:
        now = fingerprint(data_cfg)
    except (OSError, DataError) as err:
        now = {"error": " ".join(str(err).split())}
    keys = ("source", "files", "bytes", "sha256")
    if all(now.get(k) == then.get(k) for k in keys):
        return None
    where = data_cfg.path or data_cfg.source
    found = f"cannot be read ({now['error']})" if "error" in now else f"is now {_describe(now)}"
    msg = f"the data changed since {run_dir} was trained: {where} was {_describe(then)} and {found}"
    if mode == "refuse":
        raise DataError(f"--resume: {msg}; restore that data, or train a new run on this data (another --out)")
    msg += "; the numbers below are for the data as it is now"
    (log or (lambda m: print(f"vaekit: warning: {m}", file=sys.stderr)))(msg)
    return msg


def open_run_data(run: Any, mode: str = "warn") -> Any:
    """``open_data`` of a loaded run's data, after saying (one line) if it changed since training."""
    from . import open_data

    check_data_fingerprint(run.dir, run.config.data, mode)
    return open_data(run.config.data)


__all__ = ["DATA_JSON", "check_data_fingerprint", "fingerprint", "locate", "open_run_data", "record", "recorded", "resolved"]
