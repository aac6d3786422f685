"""The training loop: batches by index, logged named terms, atomic checkpoints, exact resume.

The loop only needs a model that returns :class:`~vaekit.models.Terms` and a loader with
``__iter__``/``__len__``/``set_epoch``; data sharding for several processes lives in the loader
and the ``is_main`` flag, so distributed or streaming training plug in without changing it.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

from . import checkpoint
from .config import Config, TrainConfig
from .data import Data, Loader, TensorLoader, open_data
from .errors import ConfigError, VaekitError
from .evaluate import elbo
from .models import Model, build
from .run import (
    CONFIG,
    LAST,
    METRICS,
    MODEL,
    Run,
    check_run_dir,
    clear_run_dir,
    default_run_dir,
    model_meta,
    read_metrics,
)

# Keys that may change when a run is resumed: they do not alter the optimisation path.
RESUMABLE_CHANGES = {"epochs", "progress", "device", "tensorboard", "eval_batch_size", "threads"}


def select_device(name: str) -> torch.device:
    """``auto`` is CUDA when present, else CPU; asking for CUDA without it is an input error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: cuda was asked for but no CUDA device is available; use --device cpu")
    return torch.device(name)


def make_optimizer(model: Model, cfg: TrainConfig) -> torch.optim.Optimizer:
    # The fused kernel updates every parameter in one call: fewer Python dispatches per step.
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig) -> Any:
    """An epoch-wise LR schedule, or None."""
    sched = torch.optim.lr_scheduler
    if cfg.lr_schedule == "cosine":
        return sched.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
    if cfg.lr_schedule == "step":
        return sched.StepLR(opt, step_size=cfg.lr_step_epochs, gamma=cfg.lr_gamma)
    if cfg.lr_schedule == "exponential":
        return sched.ExponentialLR(opt, gamma=cfg.lr_gamma)
    return None


def _check_resume_config(saved: Config, new: Config) -> None:
    old, cur = saved.to_dict(), new.to_dict()
    for section in ("data", "model", "train"):
        for key, value in cur[section].items():
            if section == "train" and key in RESUMABLE_CHANGES:
                continue
            if old[section].get(key) != value:
                raise ConfigError(
                    f"--resume: {section}.{key} is {value!r} but the run was started with "
                    f"{old[section].get(key)!r}; only {sorted(RESUMABLE_CHANGES)} may change"
                )


def _tensorboard(run_dir: Path, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # optional extra: vaekit[tensorboard]
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


class Trainer:
    """Owns one run: data, model, optimiser, schedule, run folder."""

    def __init__(
        self,
        cfg: Config,
        run_dir: Path,
        *,
        data: Data | None = None,
        resume: bool = False,
        log: Callable[[str], None] | None = None,
        is_main: bool = True,
    ) -> None:
        self.cfg, self.dir, self.is_main = cfg, run_dir, is_main
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        t = cfg.train
        if t.threads:
            torch.set_num_threads(t.threads)
        self.device = select_device(t.device)
        torch.manual_seed(t.seed)
        self.data = data if data is not None else open_data(cfg.data)
        if t.batch_size > len(self.data.train):
            raise ConfigError(
                f"train.batch_size={t.batch_size} is larger than the {len(self.data.train)} training "
                "examples; use a smaller --batch-size"
            )
        self.model = build(cfg.model, self.data.shape).to(self.device)
        self.opt = make_optimizer(self.model, t)
        self.scheduler = make_scheduler(self.opt, t)
        self.epoch = 0  # epochs completed
        self.step = 0  # optimiser steps taken
        if self.device.type == "cuda":  # the whole dataset on the GPU: batches by index, no copies
            self.data.train = self.data.train.to(self.device)
        self.loader: Loader = TensorLoader(
            self.data.train,
            t.batch_size,
            shuffle=True,
            binarize=self.data.binarize,
            threshold=self.data.threshold,
            seed=t.seed,
        )
        if resume:
            from .config import load_json

            _check_resume_config(load_json(run_dir / CONFIG), cfg)
            meta = checkpoint.load_training_state(run_dir / LAST, self.model, self.opt, self.scheduler)
            self.epoch, self.step = int(meta["epoch"]), int(meta["step"])

    # ---- one epoch ----------------------------------------------------------------------------

    def train_epoch(self) -> dict[str, float]:
        """One pass over the loader; returns per-example averages of every term."""
        from tqdm import tqdm

        self.model.train()
        self.loader.set_epoch(self.epoch)
        clip = self.cfg.train.grad_clip
        sums: torch.Tensor | None = None
        names: list[str] = []
        count = 0
        bar = tqdm(
            total=len(self.loader),
            desc=f"epoch {self.epoch + 1}/{self.cfg.train.epochs}",
            disable=None if (self.cfg.train.progress and self.is_main) else True,
            leave=False,
            file=sys.stderr,
        )
        for i, (x, y) in enumerate(self.loader):
            x = x.to(self.device, non_blocking=True)
            y = None if y is None else y.to(self.device, non_blocking=True)
            terms = self.model(x, y, step=self.step)
            self.opt.zero_grad(set_to_none=True)
            terms.loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
            self.opt.step()
            self.step += 1
            items = terms.items()
            # Accumulate on the device; synchronise only when the progress bar is redrawn.
            batch = torch.stack([v.detach() for v in items.values()]) * x.shape[0]
            sums = batch if sums is None else sums + batch
            names, count = list(items), count + x.shape[0]
            if bar.disable is False and (i % 25 == 0 or i == len(self.loader) - 1):
                avg = (sums / count).tolist()
                bar.set_postfix({k: f"{v:.2f}" for k, v in zip(names, avg)}, refresh=False)
            bar.update(1)
        bar.close()
        if sums is None:
            return {}
        return {k: v for k, v in zip(names, (sums / count).tolist())}

    # ---- the run ------------------------------------------------------------------------------

    def fit(self) -> Run:
        """Train up to ``train.epochs``, evaluating, logging and checkpointing as configured."""
        t = self.cfg.train
        writer = _tensorboard(self.dir, t.tensorboard) if self.is_main else None
        eval_name, eval_split = self.data.eval_split
        while self.epoch < t.epochs:
            start = time.perf_counter()
            train_terms = self.train_epoch()
            seconds = time.perf_counter() - start
            if any(not math.isfinite(v) for v in train_terms.values()):
                raise VaekitError(
                    f"training diverged in epoch {self.epoch + 1}: the loss is not finite; "
                    "lower --lr or set train.grad_clip"
                )
            self.epoch += 1
            lr = self.opt.param_groups[0]["lr"]
            if self.scheduler is not None:
                self.scheduler.step()
            row: dict[str, Any] = {"epoch": self.epoch, "step": self.step, "seconds": round(seconds, 3), "lr": lr}
            row.update({f"train_{k}": v for k, v in train_terms.items()})
            last = self.epoch == t.epochs
            if (t.eval_every and self.epoch % t.eval_every == 0) or last:
                ev = elbo(self.model, eval_split, batch_size=t.eval_batch_size, seed=t.seed)
                row.update({f"{eval_name}_{k}": v for k, v in ev.items()})
            if self.is_main:
                self._write_metrics(row, writer)
                self.log(_format_row(row, t.epochs))
                if self.epoch % t.checkpoint_every == 0 or last:
                    self.save_checkpoint()
        if self.is_main:
            self.finish()
            if writer is not None:
                writer.close()
        return Run(self.dir, self.cfg, self.model, read_metrics(self.dir))

    def _write_metrics(self, row: dict[str, Any], writer: Any) -> None:
        with open(self.dir / METRICS, "a") as f:
            f.write(json.dumps(row) + "\n")
        if writer is not None:
            for key, value in row.items():
                if key not in ("epoch", "step"):
                    writer.add_scalar(key.replace("_", "/", 1), value, self.epoch)

    def save_checkpoint(self) -> None:
        meta = model_meta(self.cfg, self.model, self.epoch, self.step)
        checkpoint.save_training_state(self.dir / LAST, self.model, self.opt, self.scheduler, meta)

    def finish(self) -> None:
        """Final weights and the two pictures every run shows."""
        from .viz import save_grid
        from .viz.grid import reconstruction_pairs

        self.model.after_fit(self.data.train)
        checkpoint.save_model(self.dir / MODEL, self.model, model_meta(self.cfg, self.model, self.epoch, self.step))
        self.model.eval()
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(self.cfg.train.seed)
            save_grid(self.model.sample(64), self.dir / "samples.png", nrow=8)
        _, split = self.data.eval_split
        x = split.x[:32].to(self.device)
        save_grid(reconstruction_pairs(x, self.model.reconstruct(x)), self.dir / "reconstructions.png", nrow=8)


def _format_row(row: dict[str, Any], epochs: int) -> str:
    parts = [f"epoch {row['epoch']}/{epochs}"]
    for prefix in ("train", "val", "test"):
        if f"{prefix}_loss" in row:
            extra = ", ".join(
                f"{k[len(prefix) + 1:]} {v:.2f}" for k, v in row.items() if k.startswith(prefix + "_") and k != f"{prefix}_loss"
            )
            parts.append(f"{prefix} loss {row[prefix + '_loss']:.2f} ({extra})")
    parts.append(f"{row['seconds']:.1f}s")
    return "  ".join(parts)


def train(
    config: Config,
    run_dir: str | Path | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    log: Callable[[str], None] | None = None,
) -> Run:
    """Train the model a config describes and write a run folder; return the :class:`Run`.

    An existing run folder is never reused silently: pass ``resume=True`` to continue it exactly
    where its last checkpoint left it, or ``overwrite=True`` to replace it.
    """
    path = Path(run_dir) if run_dir is not None else default_run_dir(config)
    check_run_dir(path, resume=resume, overwrite=overwrite)
    # Data and model are built before anything is written: a bad input leaves no half-made run.
    trainer = Trainer(config, path, resume=resume, log=log)
    if not resume:
        if overwrite:
            clear_run_dir(path)
        path.mkdir(parents=True, exist_ok=True)
        checkpoint.atomic_write_text(path / CONFIG, config.to_json())
        (path / METRICS).unlink(missing_ok=True)
    else:
        _truncate_metrics(path, trainer.epoch)
    return trainer.fit()


def _truncate_metrics(path: Path, epoch: int) -> None:
    """Drop metric rows written after the checkpoint we resume from (a crash between the two)."""
    rows = [r for r in read_metrics(path) if r.get("epoch", 0) <= epoch]
    checkpoint.atomic_write_text(path / METRICS, "".join(json.dumps(r) + "\n" for r in rows))
