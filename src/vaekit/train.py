"""The training loop: batches by index, logged named terms, atomic checkpoints, exact resume.

The loop only needs a model that returns :class:`~vaekit.models.Terms` and a loader with
``__iter__``/``__len__``/``set_epoch``; data sharding for several processes lives in the loader
and the ``is_main`` flag, so distributed or streaming training plug in without changing it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from . import checkpoint, distributed
from .config import Config, TrainConfig, validate
from .data import Data, Loader, open_data, resolve_for_data
from .errors import ConfigError, TrainingDiverged, TrainingInterrupted
from .evaluate import elbo, objective_label
from .memory import keep_freed_memory
from .models import Model, build
from .optim import make_optimizer, make_scheduler, select_device
from .progress import Progress
from .run import (CONFIG, LAST, METRICS, MODEL, Run, check_resume_config, check_run_dir, clear_run_dir, default_run_dir,
                  finished_message, model_meta, read_metrics, resume_hint, run_writes, snapshot_path)
from .runlock import lock_run
from .runlog import Running, format_row, tensorboard_writer, truncate_metrics


class Trainer:
    """Owns one run: data, model, optimiser, schedule, run folder."""

    def __init__(self, cfg: Config, run_dir: Path, *, data: Data | None = None, resume: bool = False,
                 log: Callable[[str], None] | None = None, is_main: bool = True) -> None:
        """Set up a run in the order data flows: where it runs, the data, the config the data
        resolve, the model, its optimiser, the loader, then (``resume``) the saved state."""
        validate(cfg)  # the guard too: a config built or edited in Python must not skip it
        self.dir, self.is_main = run_dir, is_main
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.device, self.world = self._placement(cfg.train)
        torch.manual_seed(cfg.train.seed)
        self.data = data if data is not None else open_data(cfg.data)
        # What the data imply (a table's layout and likelihood), settled before the model exists.
        self.cfg = resolve_for_data(cfg, self.data)
        self._check_batch_size()
        self.model = self._build_model()
        self.opt = make_optimizer(self.model, self.cfg.train)
        self.scheduler = make_scheduler(self.opt, self.cfg.train)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.epoch = 0  # epochs completed
        self.batch = 0  # batches done in the current epoch
        self.step = 0  # optimiser steps taken
        self.saved_step = 0  # the step of the last checkpoint
        self.skipped = 0  # non-finite steps skipped in all
        self.bad_in_row = 0
        self.stop_signal: int | None = None
        self.running = Running()
        self.progress = Progress(False, self.cfg.train.epochs, 1, self.log)  # fit() makes the one a person sees
        self.loader = self._make_loader()
        if resume:
            self._resume()
        self.net = distributed.wrap(self.model, self.device, self.cfg.train)  # DDP (after resume: rank 0's weights win)
        for line in self.data.log if is_main else []:  # what was loaded and how, once every check passed
            self.log(line)

    def _placement(self, t: TrainConfig) -> tuple[torch.device, int]:
        """The device this process trains on and the number of processes; threads as configured."""
        if t.threads:
            torch.set_num_threads(t.threads)
        device = distributed.device_for(select_device(t.device))
        distributed.check_flags(t, device)
        world = distributed.env().world if distributed.active() else 1
        if t.batch_size % world:
            raise ConfigError(f"train.batch_size={t.batch_size} is the global batch and must divide evenly over the "
                              f"{world} processes; use a multiple of {world}")
        return device, world

    def _check_batch_size(self) -> None:
        if (b := self.cfg.train.batch_size) > (n := len(self.data.train)):
            raise ConfigError(f"train.batch_size={b} is larger than the {n} training examples; use a smaller --batch-size")

    def _build_model(self) -> Model:
        """The registered model of the resolved config, on the device, checked against the data."""
        model = build(self.cfg, self.data.shape).to(self.device)
        model.check_data(self.data)  # e.g. a conditional model refuses unlabelled data
        return model

    def _make_loader(self) -> Loader:
        """Batches of this process's shard: train.batch_size is the global batch, split over the processes."""
        from .data.stream import make_loader  # rows on disk stream, rows in memory index

        if self.device.type == "cuda":  # the whole dataset on the GPU: batches by index, no copies
            self.data.train = self.data.train.to(self.device)
        t, rank = self.cfg.train, distributed.env().rank if self.world > 1 else 0
        return make_loader(self.data.train, t.batch_size // self.world, shuffle=True, binarize=self.data.binarize,
                           threshold=self.data.threshold, seed=t.seed, rank=rank, world=self.world)

    def _resume(self) -> None:
        """Continue from the run's last checkpoint: weights, optimiser, schedule, position, running sums."""
        from .config import load_json

        check_resume_config(load_json(self.dir / CONFIG), self.cfg)
        for folder in (self.dir, self.dir / LAST.parent):
            checkpoint.remove_stale_temporaries(folder)
        meta = checkpoint.load_training_state(self.dir / LAST, self.model, self.opt, self.scheduler)
        self.epoch, self.step = int(meta["epoch"]), int(meta["step"])
        self.batch, self.skipped = int(meta.get("batch", 0)), int(meta.get("skipped", 0))
        ranks = meta.get("running_ranks")  # per-rank sums of a mid-epoch DDP checkpoint
        if ranks and len(ranks) == self.world:
            self.running.load(ranks[distributed.env().rank], self.device)
        elif self.is_main:  # the merged sums: one rank carries them on
            self.running.load(meta.get("running"), self.device)
        self.saved_step = self.step

    # ---- one epoch ----------------------------------------------------------------------------

    def train_epoch(self) -> dict[str, float]:
        """One pass over the loader (from batch ``self.batch`` when resuming mid-epoch); returns
        the per-example averages of every term over the epoch."""
        self.model.train()
        self.loader.set_epoch(self.epoch, self.batch)
        every = self.cfg.train.checkpoint_every_steps
        self.progress.start(self.epoch, self.batch)
        for x, y in self.loader:
            x = x.to(self.device, non_blocking=True)
            y = None if y is None else y.to(self.device, non_blocking=True)
            self._step(x, y)
            self.batch += 1
            if self.stop_signal is not None:
                self._interrupt()
            if every and self.step - self.saved_step >= every and self.batch < len(self.loader):
                self.save_checkpoint()
            self.progress.step(self.running.averages)
        self.progress.close()
        if self.world > 1:  # every rank saw its shard: the epoch's averages are over all of them
            self.running.load(distributed.merge_running(distributed.gather_running(self.running.state())), self.device)
        averages = self.running.averages()
        self.running = Running()
        self.batch = 0
        return averages

    def _step(self, x: torch.Tensor, y: torch.Tensor | None) -> None:
        """One optimiser step, or none when the loss or a gradient is not finite."""
        if _FAULT and _FAULT == f"kill-rank:{distributed.env().rank}:step:{self.step}":
            os.kill(os.getpid(), 9)  # the dead-rank test: SIGKILL at a chosen step, mid-epoch
        if self.world > 1:
            distributed.seed_step(self.cfg.train.seed, self.step)
        with distributed.autocast(self.cfg.train, self.device):
            terms = self.net(x, y, step=self.step)
        self.opt.zero_grad(set_to_none=True)
        terms.loss.backward()
        norm = torch.nn.utils.get_total_norm([p.grad for p in self.params if p.grad is not None])
        bad, stop = distributed.any_flags(not bool(torch.isfinite(terms.loss) & torch.isfinite(norm)),
                                          self.stop_signal is not None)
        if stop and self.stop_signal is None:  # another rank was signalled: stop at the same step
            self.stop_signal = 15  # SIGTERM: the name shown in the stop message
        if bad:
            self._bad_step()
            return
        self.bad_in_row = 0
        if self.cfg.train.grad_clip is not None:
            torch.nn.utils.clip_grads_with_norm_(self.params, self.cfg.train.grad_clip, norm)
        self.opt.step()
        self.step += 1
        self.running.add(terms.items(), x.shape[0])

    def _bad_step(self) -> None:
        """Skip a non-finite step; after ``max_bad_steps`` in a row, stop with the last good checkpoint."""
        self.opt.zero_grad(set_to_none=True)
        self.skipped += 1
        self.bad_in_row += 1
        if self.bad_in_row >= self.cfg.train.max_bad_steps:
            kept = f"the last good checkpoint {self.dir / LAST} is kept" if (self.dir / LAST).is_file() else \
                "no checkpoint was written yet"
            raise TrainingDiverged(
                f"training stopped: {self.bad_in_row} non-finite losses or gradients in a row at epoch "
                f"{self.epoch + 1}, batch {self.batch + 1} (step {self.step}); {kept}. "
                "Lower train.lr, set train.grad_clip, or check the data"
            )

    def _interrupt(self) -> None:
        import signal

        name = signal.Signals(self.stop_signal).name if self.stop_signal else "a signal"
        self.save_checkpoint()
        kept = resume_hint(self.dir, self.world) if self.is_main else "Rank 0 saved the checkpoint."
        raise TrainingInterrupted(f"stopped by {name} in epoch {self.epoch + 1} after batch {self.batch}/"
                                  f"{len(self.loader)}. {kept}")

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM ask the loop to stop after the current step; a second one stops at once."""
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            if self.stop_signal is not None:
                raise KeyboardInterrupt
            self.stop_signal = signum

        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    # ---- the run ------------------------------------------------------------------------------

    def fit(self) -> Run:
        """Train up to ``train.epochs``, evaluating, logging and checkpointing as configured."""
        t = self.cfg.train
        writer = tensorboard_writer(self.dir, t.tensorboard, self.log) if self.is_main else None
        self.progress = Progress(t.progress and self.is_main, t.epochs, len(self.loader), self.log)
        # malloc keeps the step's freed buffers for the next step (no page faults; vaekit.memory).
        with self._signals(), keep_freed_memory():
            self._fit_epochs(writer)
        if self.is_main:
            with run_writes(self.dir, "the final model and pictures", resume=True):
                self.finish()
            if writer is not None:
                writer.close()
        return Run(self.dir, self.cfg, self.model, read_metrics(self.dir))

    def _fit_epochs(self, writer: Any) -> None:
        t = self.cfg.train
        eval_name, eval_split = self.data.eval_split
        while self.epoch < t.epochs:
            start, cpu_start = time.perf_counter(), time.process_time()
            skipped_before = self.skipped
            train_terms = self.train_epoch()
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            self.epoch += 1
            lr = self.opt.param_groups[0]["lr"]
            if self.scheduler is not None:
                self.scheduler.step()
            row: dict[str, Any] = {"epoch": self.epoch, "step": self.step, "seconds": round(seconds, 3),
                                   "cpu_seconds": round(cpu, 3), "lr": lr}  # cpu: all threads' CPU time
            row.update({f"train_{k}": v for k, v in train_terms.items()})
            if self.skipped > skipped_before:
                row["skipped_steps"] = self.skipped - skipped_before
            last = self.epoch == t.epochs
            if ((t.eval_every and self.epoch % t.eval_every == 0) or last) and self.is_main:  # rank 0 evaluates
                # The model's own sample count (IWAE: its k), so train_ and val_ terms are one objective.
                samples = self.model.default_samples
                ev = elbo(self.model, eval_split, samples=samples, batch_size=t.eval_batch_size, seed=t.seed)
                # With no held-out split the evaluation runs on the training data: "trainset_*", so
                # it never overwrites the epoch's running train_* means (what Keras-style logs report).
                prefix = "trainset" if eval_name == "train" else eval_name
                row.update({f"{prefix}_{k}": v for k, v in ev.items()})
                row[f"{prefix}_what"] = objective_label(self.model, eval_split, samples)
            if self.is_main:
                self._write_metrics(row, writer)
                self.log(format_row(row, t.epochs))
                if t.plot_every and self.epoch % t.plot_every == 0:  # pictures to watch progress by
                    from .viz.progress import progress_pictures

                    progress_pictures(self.model, self.data, self.dir / "progress", self.epoch, t.seed)
            if self.epoch % t.checkpoint_every == 0 or last:
                self.save_checkpoint()  # every rank: the others only note the step
            if t.snapshot_every and self.epoch % t.snapshot_every == 0 and self.is_main:
                meta = model_meta(self.cfg, self.model, self.epoch, self.step)
                with run_writes(self.dir, "a weight snapshot", resume=True):
                    checkpoint.save_model(self.dir / snapshot_path(self.epoch), self.model, meta)
            if distributed.any_flags(self.stop_signal is not None)[0]:
                self._interrupt()

    def _write_metrics(self, row: dict[str, Any], writer: Any) -> None:
        with run_writes(self.dir, METRICS, resume=True), open(self.dir / METRICS, "a") as f:
            f.write(json.dumps(row) + "\n")
        if writer is not None:
            for key, value in row.items():
                if key not in ("epoch", "step") and isinstance(value, (int, float)):  # not the *_what labels
                    writer.add_scalar(key.replace("_", "/", 1), value, self.epoch)

    def save_checkpoint(self) -> None:
        """The resumable state, mid-epoch included: position, running sums, counters."""
        running, extra = self.running.state(), {}
        if self.world > 1 and self.batch > 0:  # mid-epoch under DDP: a collective, on every rank
            extra["running_ranks"] = distributed.gather_running(running)  # exact resume, same world
            running = distributed.merge_running(extra["running_ranks"])
        if not self.is_main:
            self.saved_step = self.step
            return
        meta = model_meta(self.cfg, self.model, self.epoch, self.step)
        meta.update(batch=self.batch, running=running, skipped=self.skipped, **extra)
        with run_writes(self.dir, "a checkpoint", resume=True):
            checkpoint.save_training_state(self.dir / LAST, self.model, self.opt, self.scheduler, meta)
        self.saved_step = self.step

    def finished(self) -> bool:
        """A resumed run that already trained all its epochs and wrote its final model."""
        try:
            return self.epoch >= self.cfg.train.epochs and checkpoint.read_meta(self.dir / MODEL).get("epoch") == self.epoch
        except Exception:  # noqa: BLE001 - no or a torn final model: finish() writes it again
            return False

    def finish(self) -> None:
        """Final weights, the two pictures every run shows, and plots/curves.png (+ manifold.png if d = 2)."""
        from .viz import save_grid
        from .viz.grid import reconstruction_pairs
        from .viz.progress import final_pictures

        self.model.after_fit(self.data.train)
        checkpoint.save_model(self.dir / MODEL, self.model, model_meta(self.cfg, self.model, self.epoch, self.step))
        if len(self.data.shape) == 1 and math.isqrt(self.data.shape[0]) ** 2 != self.data.shape[0]:
            return  # vectors that are no square image (tables): no pictures to draw
        self.model.eval()
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(self.cfg.train.seed)
            save_grid(self.model.sample(64), self.dir / "samples.png", nrow=8)
        _, split = self.data.eval_split
        x = split.x[:32].to(self.device)
        save_grid(reconstruction_pairs(x, self.model.reconstruct(x)), self.dir / "reconstructions.png", nrow=8)
        final_pictures(self.model, self.data, read_metrics(self.dir), self.dir / "plots", self.cfg.train.seed)


def train(config: Config, run_dir: str | Path | None = None, *, resume: bool = False, overwrite: bool = False,
          log: Callable[[str], None] | None = None, init_only: bool = False) -> Run:
    """Train the model a config describes and write a run folder; return the :class:`Run`.

    An existing run folder is never reused silently: pass ``resume=True`` to continue it exactly where
    its last checkpoint left it, or ``overwrite=True`` to replace it. One process at a time writes a run
    folder (:func:`vaekit.runlock.lock_run`). ``train.epochs = 0`` needs ``init_only`` (untrained, on purpose).
    """
    from .data.fingerprint import check_data_fingerprint, record, recorded, resolved

    if config.train.epochs < 1 and not init_only:  # untrained weights and pictures, looking trained
        raise ConfigError(f"train.epochs must be at least 1 (got {config.train.epochs}); nothing was written")
    path = Path(run_dir) if run_dir is not None else default_run_dir(config)
    # The data's absolute path goes into config.json, so the run finds it from any directory.
    config = dataclasses.replace(config, data=resolved(config.data))
    with distributed.session(config.train.device) as job, contextlib.ExitStack() as held:
        # Every rank refuses a wrong --out at once; rank 0, the only writer, takes the folder's lock
        # and checks again under it (another writer may have come and gone since). Under torchrun
        # the others learn of a refusal in on_main, before the collectives of building the Trainer.
        check_run_dir(path, resume=resume, overwrite=overwrite)

        def under_lock() -> None:
            with run_writes(path, "the run folder", resume=resume):
                held.enter_context(lock_run(path, "train", create=True))
            check_run_dir(path, resume=resume, overwrite=overwrite)
            if resume:
                check_data_fingerprint(path, config.data, mode="refuse")

        distributed.on_main(under_lock)
        # Data and model are built before anything is written: a bad input leaves no half-made run.
        trainer = Trainer(config, path, resume=resume, log=log, is_main=job.is_main)
        done = trainer.epoch + (trainer.batch > 0)  # a checkpoint in the middle of an epoch counts it begun
        if resume and done > config.train.epochs:
            had = f"{trainer.epoch} epochs" + (f" + {trainer.batch} batches" if trainer.batch else "")
            raise ConfigError(f"--resume: {path} has trained {had}, more than train.epochs = {config.train.epochs}; "
                              f"pass --epochs N (N >= {done}) to continue it")
        if resume and distributed.any_flags(job.is_main and trainer.finished())[0]:
            (log or (lambda msg: print(msg, file=sys.stderr)))(finished_message(path, trainer.cfg, trainer.epoch))
            return Run(path, trainer.cfg, trainer.model, read_metrics(path), written=False)

        def prepare() -> None:
            with run_writes(path, "the run folder", resume=resume):
                if not resume and overwrite:
                    clear_run_dir(path)
                # On --resume too: the config it continues with (only RESUMABLE_CHANGES differ)
                checkpoint.atomic_write_text(path / CONFIG, trainer.cfg.to_json())
                if not resume or recorded(path) is None:
                    record(path, trainer.cfg.data, trainer.data.classes, trainer.data.skipped)
                if resume:
                    truncate_metrics(path, trainer.epoch)
                else:
                    (path / METRICS).unlink(missing_ok=True)

        distributed.on_main(prepare)
        try:
            run = trainer.fit()
        except RuntimeError as err:  # under torchrun: another rank died (torchrun names it)
            if not distributed.is_peer_failure(err):
                raise
            raise distributed.rank_lost(err, resume_hint(path, distributed.env().world)) from None
        distributed.barrier()  # no rank leaves (and tears the group down) before rank 0 has finished
        return run


_FAULT = os.environ.get("VAEKIT_FAULT", "")  # fault injection for tests, as in vaekit.checkpoint
