"""Checkpoints: safetensors tensors + JSON, written atomically, validated on load. Never pickle.

A run folder holds ``config.json`` (the resolved config), ``model.safetensors`` (weights only, what
``vaekit.load`` reads) and ``checkpoints/last.safetensors`` (weights + optimiser + RNG state +
JSON metadata, what ``--resume`` reads). Each file is written to a temporary name, flushed to disk
and renamed over the old one, so a crash at any moment leaves the previous complete file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as st_save
from torch import Tensor, nn

from .errors import CheckpointError

FORMAT_VERSION = 1  # raise when a file written by this vaekit would not load in an older one
FORMAT = f"vaekit/{FORMAT_VERSION}"
TMP_SUFFIX = ".tmp"
_UMASK = os.umask(0)
os.umask(_UMASK)

# Fault injection for the crash-safety tests: "mid-write:N" or "before-rename:N" makes the Nth
# atomic write SIGKILL its own process at that point, which no timing-based kill hits reliably.
_FAULT = os.environ.get("VAEKIT_FAULT", "")
_writes = 0


def _fault(point: str) -> None:
    if _FAULT and _FAULT == f"{point}:{_writes}":
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a torn one."""
    global _writes
    _writes += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    except OSError as err:  # name the file being written, not a random temporary
        raise OSError(err.errno, err.strerror, str(path)) from None
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data[: len(data) // 2])
            _fault("mid-write")
            f.write(data[len(data) // 2 :])
            f.flush()
            os.fsync(f.fileno())
        _fault("before-rename")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:  # make the rename itself durable
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def remove_stale_temporaries(folder: Path) -> int:
    """Delete temporaries a killed writer left behind; the files they were meant to replace are intact."""
    stale = list(folder.glob(f".*{TMP_SUFFIX}")) if folder.is_dir() else []
    for p in stale:
        p.unlink(missing_ok=True)
    return len(stale)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def save_tensors(path: Path, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    """Save tensors with JSON metadata (stored in the safetensors header) atomically."""
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    header = {"format": FORMAT, "meta": json.dumps(meta)}
    atomic_write_bytes(path, canonical(st_save(flat, metadata=header)))


def canonical(data: bytes) -> bytes:
    """``data`` (a safetensors file) with its JSON header's keys sorted.

    safetensors keeps the header in a Rust HashMap, whose order changes from process to process,
    so the same tensors and metadata would give different bytes on every run; sorted, a rerun of
    a deterministic script (scripts/make_pretrained.py) reproduces its files byte for byte.
    """
    n = int.from_bytes(data[:8], "little")
    header = json.dumps(json.loads(data[8 : 8 + n]), separators=(",", ":"), sort_keys=True).encode()
    header += b" " * (-len(header) % 8)  # pad to 8 bytes, as safetensors does
    return len(header).to_bytes(8, "little") + header + data[8 + n :]


def check_format(path: Path, fmt: str | None) -> None:
    """Accept formats vaekit/1 .. vaekit/FORMAT_VERSION; refuse a newer one naming both versions."""
    version = fmt[len("vaekit/") :] if isinstance(fmt, str) and fmt.startswith("vaekit/") else ""
    if not version.isdigit():
        raise CheckpointError(f"{path} is not a vaekit checkpoint (format {fmt!r})")
    if int(version) > FORMAT_VERSION:
        from . import __version__

        raise CheckpointError(
            f"{path} has format {fmt}, newer than the {FORMAT} this vaekit {__version__} reads: upgrade vaekit"
        )


def read_format(path: Path) -> str | None:
    """The ``format`` entry of a safetensors header (reads the header only), None when unreadable."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            return (f.metadata() or {}).get("format")
    except (SafetensorError, OSError, ValueError):
        return None


def load_tensors(path: Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read a vaekit safetensors file; anything else (a pickle, a torn file) is refused."""
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
            check_format(path, header.get("format"))
            tensors = {k: f.get_tensor(k) for k in f.keys()}
            meta = json.loads(header.get("meta", "{}"))
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as err:
        msg = " ".join(str(err).split())[:200]
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint ({msg})") from None
    return tensors, meta


def read_meta(path: Path) -> dict[str, Any]:
    """The JSON metadata of a vaekit safetensors file, without reading its tensors."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            header = f.metadata() or {}
        if header.get("format") != FORMAT:
            raise CheckpointError(f"{path} is not a vaekit checkpoint (format {header.get('format')!r})")
        return dict(json.loads(header.get("meta", "{}")))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint ({' '.join(str(err).split())[:200]})") from None


# ---------------------------------------------------------------------------------------------
# Model weights


def load_weights(model: nn.Module, tensors: dict[str, Tensor], where: Path) -> None:
    """Copy ``tensors`` into ``model``, refusing missing, unexpected or mis-shaped entries."""
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    extra = sorted(set(tensors) - set(own))
    if missing or extra:
        raise CheckpointError(
            f"{where} does not match the model in config.json: "
            f"missing {missing[:3]}, unexpected {extra[:3]}"
        )
    for k, v in own.items():
        if tensors[k].shape != v.shape:
            raise CheckpointError(
                f"{where}: '{k}' has shape {tuple(tensors[k].shape)} but the config builds "
                f"{tuple(v.shape)}; the checkpoint comes from another architecture or latent size"
            )
    model.load_state_dict(tensors, strict=True)


def save_model(path: Path, model: nn.Module, meta: dict[str, Any]) -> None:
    save_tensors(path, dict(model.state_dict()), meta)


# ---------------------------------------------------------------------------------------------
# Resumable training state


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Split an optimiser state dict into named tensors and JSON-able rest."""
    sd = opt.state_dict()
    tensors: dict[str, Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for pid, state in sd["state"].items():
        for key, value in state.items():
            if isinstance(value, Tensor):
                tensors[f"optim.{pid}.{key}"] = value
            else:
                plain.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "plain": plain}


def optimizer_state(tensors: dict[str, Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`optimizer_tensors`: an optimiser ``state_dict``."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    for pid, rest in meta.get("plain", {}).items():
        state.setdefault(int(pid), {}).update(rest)
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_tensors() -> dict[str, Tensor]:
    out = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            out[f"rng.cuda.{i}"] = s
    return out


def set_rng(tensors: dict[str, Tensor]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(t for t in tensors if t.startswith("rng.cuda."))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


def save_training_state(
    path: Path,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    scheduler: Any,
    meta: dict[str, Any],
) -> None:
    """Everything ``--resume`` needs to continue bit-identically, in one atomic file."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    opt_t, opt_meta = optimizer_tensors(opt)
    tensors.update(opt_t)
    tensors.update(rng_tensors())
    full = dict(meta, optimizer=opt_meta, scheduler=None if scheduler is None else scheduler.state_dict())
    save_tensors(path, tensors, full)


def load_training_state(
    path: Path, model: nn.Module, opt: torch.optim.Optimizer, scheduler: Any
) -> dict[str, Any]:
    """Restore model, optimiser, scheduler and RNG from :func:`save_training_state`; return the meta."""
    tensors, meta = load_tensors(path)
    weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    load_weights(model, weights, path)
    try:
        opt.load_state_dict(optimizer_state(tensors, meta["optimizer"]))
        if scheduler is not None and meta.get("scheduler") is not None:
            scheduler.load_state_dict(meta["scheduler"])
        set_rng(tensors)
    except (KeyError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path}: the training state cannot be restored ({err})") from None
    return meta
