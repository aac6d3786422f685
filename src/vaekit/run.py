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


def default_run_dir(cfg: Config, root: Path = Path("runs")) -> Path:
    """``runs/<preset or model>``, numbered ``-2``, ``-3``, ... so an old run is never reused."""
    base = cfg.preset or cfg.model.name
    path, n = root / base, 1
    while path.exists():
        n += 1
        path = root / f"{base}-{n}"
    return path


def check_run_dir(path: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse to write into an existing run unless asked to resume or overwrite it."""
    if resume:
        if not (path / LAST).is_file():
            raise CheckpointError(f"--resume: {path} has no checkpoint ({LAST}) to resume from")
        return
    if path.exists() and any(path.iterdir()):
        if not overwrite:
            raise VaekitError(
                f"{path} already holds a run; pass --resume to continue it, "
                "--overwrite to replace it, or choose another --out"
            )
        if not (path / CONFIG).is_file() and not (path / LAST).is_file():
            raise VaekitError(f"--overwrite: {path} is not a vaekit run folder; refusing to delete it")


def clear_run_dir(path: Path) -> None:
    """Delete an old run (``--overwrite``), called only once the new run is ready to start."""
    if path.exists():
        shutil.rmtree(path)


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
    source = path / MODEL if (path / MODEL).is_file() else path / LAST
    tensors, meta = checkpoint.load_tensors(source)
    if meta.get("model") != cfg.model.name:
        raise CheckpointError(
            f"{source} holds a '{meta.get('model')}' model but {path / CONFIG} says '{cfg.model.name}'"
        )
    shape = meta.get("shape")
    if not (isinstance(shape, list) and shape and all(isinstance(s, int) and 0 < s < 1 << 20 for s in shape)):
        raise CheckpointError(f"{source}: the header's data shape {shape!r} is invalid")
    model = build(cfg.model, tuple(shape))
    if source.name == LAST.name:
        tensors = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    checkpoint.load_weights(model, tensors, source)
    model.to(device).eval()
    model.config = cfg  # type: ignore[attr-defined]  (the full run config, for library users)
    return Run(dir=path, config=cfg, model=model, metrics=read_metrics(path))


def load(path: str | Path, device: str | torch.device = "cpu") -> Model:
    """The trained model of a run (a folder, ``pretrained:NAME``, ``hf://OWNER/NAME``), in eval mode,
    with ``model.config`` set to its run config."""
    return load_run(path, device).model


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
    for section in ("data", "model", "train"):
        for key, value in cur[section].items():
            if section == "train" and key in RESUMABLE_CHANGES:
                continue
            if old[section].get(key) != value:
                raise ConfigError(
                    f"--resume: {section}.{key} is {value!r} but the run was started with "
                    f"{old[section].get(key)!r}; only {sorted(RESUMABLE_CHANGES)} may change"
                )


@contextlib.contextmanager
def run_writes(run_dir: Path, what: str) -> Iterator[None]:
    """Turn an OS error while writing into the run folder into one clear line."""
    try:
        yield
    except OSError as err:
        reason = err.strerror or str(err)
        raise RunWriteError(
            f"cannot write {what} in {run_dir}: {reason}; files written before are intact. "
            "Free some space or choose another --out, then --resume"
        ) from None
