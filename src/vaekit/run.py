"""Run folders: where a training run writes, and how a finished (or interrupted) run is loaded.

::

    RUN/config.json                  the resolved config
    RUN/metrics.jsonl                one JSON line per epoch: train (running means), validation/test or trainset terms, seconds
    RUN/model.safetensors            final weights (+ data shape and config in the header)
    RUN/checkpoints/last.safetensors weights + optimiser + RNG: what --resume reads
    RUN/checkpoints/epoch_NNNNN.safetensors   weights kept every train.snapshot_every epochs
    RUN/samples.png, RUN/reconstructions.png
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch

from . import checkpoint
from .config import Config, load_json
from .errors import CheckpointError, ConfigError, RunWriteError, VaekitError
from .locate import locate_run
from .models import Model, build

CONFIG = "config.json"
METRICS = "metrics.jsonl"
MODEL = "model.safetensors"
LAST = Path("checkpoints") / "last.safetensors"


def snapshot_path(epoch: int) -> Path:
    """Where ``train.snapshot_every`` keeps the weights after ``epoch`` (weights only, as MODEL)."""
    return Path("checkpoints") / f"epoch_{epoch:05d}.safetensors"


@dataclass
class Run:
    """A run folder and what is in it."""

    dir: Path
    config: Config
    model: Model
    metrics: list[dict[str, Any]] = field(default_factory=list)
    written: bool = True  # False: train() found the run finished and wrote nothing


def default_run_dir(cfg: Config, root: Path = Path("runs")) -> Path:
    """``runs/<preset or model>``, numbered ``-2``, ``-3``, ... so an old run is never reused."""
    base = cfg.preset or cfg.model.name
    path, n = root / base, 1
    while path.exists():
        n += 1
        path = root / f"{base}-{n}"
    return path


def _entries(path: Path) -> list[Path]:
    """What a run folder holds, its lock file aside (a folder that holds only a lock is empty)."""
    from .runlock import LOCK

    return [p for p in path.iterdir() if p.name != LOCK] if path.is_dir() else []


def check_run_dir(path: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse to write into an existing run unless asked to resume or overwrite it."""
    if resume:
        if not (path / LAST).is_file():
            raise CheckpointError(f"--resume: {path} has no checkpoint ({LAST}) to resume from")
        return
    if path.exists() and not path.is_dir():
        raise VaekitError(f"{path} is a file, not a run folder; choose another --out")
    if _entries(path):
        if not overwrite:
            raise VaekitError(
                f"{path} already holds a run; pass --resume to continue it, "
                "--overwrite to replace it, or choose another --out"
            )
        if not (path / CONFIG).is_file() and not (path / LAST).is_file():
            raise VaekitError(f"--overwrite: {path} is not a vaekit run folder; refusing to delete it")


def clear_run_dir(path: Path) -> None:
    """Delete an old run (``--overwrite``), called only once the new run is ready to start.

    Everything goes but the lock file, which the caller holds: the folder stays locked throughout.
    """
    for p in _entries(path):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Every complete JSON line of ``metrics.jsonl`` (a torn last line is ignored)."""
    f = path / METRICS
    out: list[dict[str, Any]] = []
    if f.is_file():
        for line in f.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return out


def model_meta(cfg: Config, model: Model, epoch: int, step: int) -> dict[str, Any]:
    from . import __version__

    return {
        "vaekit": __version__,
        "model": cfg.model.name,
        "shape": list(model.shape),
        "epoch": epoch,
        "step": step,
        "config": cfg.to_dict(),
    }


def load_run(path: str | Path, device: str | torch.device = "cpu") -> Run:
    """Load a run folder: its config, its model (final weights, else the last checkpoint), metrics.

    ``path`` may also be ``pretrained:NAME``, ``hf://OWNER/NAME`` or a Hub-layout folder (vaekit.locate).
    """
    path = locate_run(path)  # resolves the name and refuses a format newer than this vaekit's
    if not path.is_dir():
        raise CheckpointError(f"run folder {path} does not exist")
    cfg = load_json(path / CONFIG)
    from .data.fingerprint import locate

    cfg = dataclasses.replace(cfg, data=locate(path, cfg.data))  # the data moved along with the run
    source = path / MODEL if (path / MODEL).is_file() else path / LAST
    tensors, meta = checkpoint.load_tensors(source)
    if meta.get("model") != cfg.model.name:
        raise CheckpointError(
            f"{source} holds a '{meta.get('model')}' model but {path / CONFIG} says '{cfg.model.name}'"
        )
    shape = meta.get("shape")
    if not (isinstance(shape, list) and shape and all(isinstance(s, int) and 0 < s < 1 << 20 for s in shape)):
        raise CheckpointError(f"{source}: the header's data shape {shape!r} is invalid")
    model = build(cfg, tuple(shape))  # model.config: the full run config, for library users
    if source.name == LAST.name:
        tensors = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    checkpoint.load_weights(model, tensors, source)
    model.to(device).eval()
    return Run(dir=path, config=cfg, model=model, metrics=read_metrics(path))


def load(path: str | Path, device: str | torch.device = "cpu") -> Model:
    """The trained model of a run (a folder, ``pretrained:NAME``, ``hf://OWNER/NAME``), in eval mode,
    with ``model.config`` set to its run config."""
    return load_run(path, device).model


def resume_hint(run_dir: Path, nproc: int | None = None) -> str:
    """What a stopped run keeps, and the command that continues it (or that nothing was saved)."""
    last = run_dir / LAST
    if not last.is_file():
        return f"No checkpoint was written yet; start again with: vaekit train --out {run_dir} --overwrite"
    try:
        meta = checkpoint.read_meta(last)
        at = f"epoch {meta['epoch']}" + (f" + {meta['batch']} batches" if meta.get("batch") else "") + \
            f", step {meta['step']}"
    except (CheckpointError, KeyError):
        at = "unreadable: --resume will say why"
    flag = f" --nproc {nproc}" if nproc and nproc > 1 else ""
    return f"The last checkpoint ({at}) is kept; continue with: vaekit train{flag} --out {run_dir} --resume"


def finished_message(run_dir: Path, cfg: Config, epochs: int) -> str:
    """What ``--resume`` says of a run that already trained all its epochs (it writes nothing)."""
    more = ("a cosine schedule cannot be extended: start a new run to train longer" if cfg.train.lr_schedule == "cosine"
            else f"to train longer: vaekit train --out {run_dir} --resume --epochs N (N > {epochs})")
    return f"{run_dir} has finished: it trained all {epochs} epochs; nothing to do ({more})"


# Train keys that may change when a run is resumed: they do not alter the optimisation path.
RESUMABLE_CHANGES = {"epochs", "progress", "device", "tensorboard", "eval_batch_size", "threads", "plot_every", "compile",
                     "snapshot_every"}


def check_resume_config(saved: Config, new: Config) -> None:
    """Refuse to resume with a config that would change the optimisation path."""
    old, cur = saved.to_dict(), new.to_dict()
    if new.train.lr_schedule == "cosine" and old["train"]["epochs"] != new.train.epochs:
        raise ConfigError(
            f"--resume: train.epochs cannot change from {old['train']['epochs']} to {new.train.epochs} "
            "with the cosine LR schedule, whose period is the epoch count; start a new run instead"
        )
    for cfg in (old, cur):  # the saved path may be relative (runs from before it was stored absolute)
        if cfg["data"].get("path"):
            cfg["data"]["path"] = str(Path(cfg["data"]["path"]).expanduser().resolve())
    for section in ("data", "model", "train"):
        for key, value in cur[section].items():
            if section == "train" and key in RESUMABLE_CHANGES:
                continue
            if old[section].get(key) != value:
                raise ConfigError(
                    f"--resume: {section}.{key} is {value!r} but the run was started with "
                    f"{old[section].get(key)!r}; only {sorted(RESUMABLE_CHANGES)} may change"
                )


# errno -> (what it means, how to fix the cause); the message never guesses another cause.
_WRITE_ERRORS = {
    errno.ENOSPC: ("the disk is full", "free some space"),
    errno.EDQUOT: ("the disk quota is used up", "free some space"),
    errno.EROFS: ("the file system is mounted read-only", "make it writable"),
    errno.EACCES: ("", "fix the permissions of {file}"),
    errno.EPERM: ("", "fix the permissions of {file}"),
    errno.ENOENT: ("a folder on the path is missing", ""),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", ""),
    errno.EEXIST: ("a part of the path is a file, not a folder", ""),
}


def write_error_message(err: OSError, run_dir: Path, what: str, *, flag: str | None = "--out",
                        resume: bool = False, note: str = "") -> str:
    """One line for a failed write into ``run_dir`` that follows the real errno: what failed, why,
    what to do; ``--resume`` is suggested only when a checkpoint exists to resume from."""
    meaning, fix = _WRITE_ERRORS.get(err.errno or 0, ("", ""))
    fix = fix.format(file=err.filename or run_dir)
    reason = (err.strerror or str(err)) + (f" ({meaning})" if meaning else "")
    if err.filename and Path(err.filename) != run_dir:
        reason += f": {err.filename}"
    msg = f"cannot write {what} in {run_dir}: {reason}"
    if resume and (run_dir / LAST).is_file():
        then = f"{fix}, then continue" if fix else "continue"
        msg += f"; the files written before are intact; {then} with: vaekit train --out {run_dir} --resume"
    else:
        todo = " or ".join(t for t in (fix, f"choose another {flag}" if flag else "") if t)
        msg += f"; {todo}" if todo else ""
    return msg + (f"; {note}" if note else "")


@contextlib.contextmanager
def run_writes(run_dir: str | Path, what: str, *, flag: str | None = "--out", resume: bool = False,
               note: str = "") -> Iterator[None]:
    """Turn an OS error while writing into the run folder into one line (:class:`RunWriteError`, exit 1).

    ``what``: the file(s) being written ("evaluation.json"); ``flag``: the option choosing another
    place (``"-o"``; None when there is none); ``resume``: a training write, so point to ``--resume``
    when a checkpoint exists; ``note``: appended, e.g. "the results printed above stand".
    """
    try:
        yield
    except OSError as err:
        raise RunWriteError(write_error_message(err, Path(run_dir), what, flag=flag, resume=resume,
                                                note=note)) from None
