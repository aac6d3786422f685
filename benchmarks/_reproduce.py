"""Helpers shared by the result reproductions (``model_family.py``, ``conditional_family.py``).

Each reproduction trains its runs with the ``vaekit train`` command line (one after another, one
torch thread), measures them with the library (``vaekit.evaluate``, ``vaekit.metrics``) and keeps
one JSON in ``benchmarks/results/`` with every number the docs' tables show, how each run was
made (the exact command and its ``config.json``) and where (versions, git commit, threads, load).
The JSON is rewritten after every run, and a run whose entry is there with the same command is not
trained or measured again: an interrupted reproduction picks up where it stopped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
THREADS = 1  # torch threads for training and measuring; the docs' tables are 1-thread numbers
TRAIN_FLAGS = ["--no-progress", "--set", f"train.threads={THREADS}", "--set", "train.tensorboard=false", "--overwrite"]


def git_commit() -> dict[str, Any]:
    """The repository's HEAD and whether the library or these scripts differ from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    scripts = [str(HERE / f) for f in ("_reproduce.py", "model_family.py", "conditional_family.py")]
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "src", *scripts))}


def provenance() -> dict[str, Any]:
    """Versions, commit, threads and load: what a reader needs to redo or judge the numbers."""
    import torch

    import vaekit

    return {
        "vaekit": vaekit.__version__, "torch": torch.__version__, "python": platform.python_version(),
        "platform": platform.platform(), "git": git_commit(), "threads": THREADS,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "cpus": sorted(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(), "loadavg": [round(x, 2) for x in os.getloadavg()],
        "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def train_command(args: list[str], run_dir: Path) -> list[str]:
    """The ``vaekit train`` argument list of one run (without the program name)."""
    return ["train", *args, *TRAIN_FLAGS, "--out", str(run_dir)]


def shown(argv: list[str]) -> str:
    """An argument list as the shell command a reader would type."""
    return "vaekit " + shlex.join(argv)


def train(argv: list[str]) -> None:
    """Run ``vaekit train`` in a child process (this interpreter, so PYTHONPATH picks the source)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS), MKL_NUM_THREADS=str(THREADS))
    print(f"== {time.strftime('%H:%M:%S')} {shown(argv)}", flush=True)
    subprocess.run([sys.executable, "-m", "vaekit", *argv], env=env, check=True)


def summary(run: Any) -> dict[str, Any]:
    """Epochs, training seconds (the sum of the epochs' wall and CPU time, evaluation excluded) and
    the options that made the run, read from its ``config.json`` (``run`` from ``vaekit.load_run``)."""
    cfg = json.loads((Path(run.dir) / "config.json").read_text())
    m, t = cfg["model"], cfg["train"]
    return {
        "epochs": run.metrics[-1]["epoch"] if run.metrics else 0,
        "train_seconds": round(sum(r["seconds"] for r in run.metrics), 1),
        "train_cpu_seconds": round(sum(r.get("cpu_seconds", 0.0) for r in run.metrics), 1),
        "config": {"preset": cfg.get("preset"), "model": m["name"], "arch": m["arch"], "hidden": m["hidden"],
                   "decoder_hidden": m.get("decoder_hidden"), "latent_dim": m["latent_dim"],
                   "activation": m["activation"], "likelihood": m["likelihood"], "beta": m["beta"],
                   "options": m["options"], "binarize": cfg["data"]["binarize"], "batch_size": t["batch_size"],
                   "lr": t["lr"], "lr_schedule": t["lr_schedule"], "epochs": t["epochs"]},
    }


def reproduce(
    family: str,
    runs: list[tuple[str, list[str]]],
    measure: Callable[[str, Path], dict[str, Any]],
    *,
    runs_dir: Path,
    out: Path,
    about: dict[str, Any],
    redo: set[str] = frozenset(),  # type: ignore[assignment]
    extra: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Train and measure every run of ``runs`` ((name, ``vaekit train`` arguments), in order) that
    ``out`` does not already hold with the same arguments, rewriting ``out`` after each one.

    ``measure(name, run_dir)`` returns a run's numbers; ``extra(results)`` adds family-wide ones
    (e.g. the gradient-estimator variances) once every run is there.
    """
    import torch

    torch.set_num_threads(THREADS)
    old = json.loads(out.read_text()) if out.is_file() else {}
    results: dict[str, Any] = {"benchmark": family, **about, "runs": {}}
    results["runs"] = {k: v for k, v in old.get("runs", {}).items() if k in dict(runs)}
    for key in ("extra",):
        if key in old:
            results[key] = old[key]
    for name, args in runs:
        run_dir = runs_dir / name
        argv = train_command(args, run_dir)
        have = results["runs"].get(name)
        if have and have.get("args") == args and name not in redo:
            print(f"== {name}: in {out.name} already (same arguments), skipped", flush=True)
            continue
        train(argv)
        print(f"== {time.strftime('%H:%M:%S')} measure {name}", flush=True)
        results["runs"][name] = {"command": shown(argv), "args": args, **measure(name, run_dir),
                                 "made": provenance()}
        results["extra"] = {}  # family-wide numbers rest on the runs: recompute them
        write(out, results)
    if extra is not None and (not results.get("extra") or redo):
        print(f"== {time.strftime('%H:%M:%S')} family-wide measurements", flush=True)
        results["extra"] = extra(results)
    results["provenance"] = provenance()
    write(out, results)
    return results


def write(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    tmp.replace(path)
    print(f"wrote {path}", flush=True)


def parse_args(doc: str, name: str) -> argparse.Namespace:
    """The command line both reproduction scripts share: where runs go, the JSON, redo, smoke."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=Path(f"runs/{name}"), help="where the run folders go")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / f"{name}.json")
    ap.add_argument("--redo", nargs="*", default=[], help="train and measure these runs again")
    ap.add_argument("--smoke", action="store_true",
                    help="1 epoch on 1,000 images, k = 10 on 100 images (a check of the script, not a result)")
    return ap.parse_args()


def plan(runs: list, k: int, limit: int, smoke: bool) -> tuple[list, int, int]:
    """The runs and the NLL budget; with --smoke, one epoch on 1,000 images and k = 10 on 100."""
    if not smoke:
        return runs, k, limit
    return [(n, [*a, "--epochs", "1", "--set", "data.limit=1000"]) for n, a in runs], 10, 100
