"""Helpers shared by the benchmark scripts: MNIST arrays, throwaway venvs, child runs, tables.

Nothing here is part of vaekit. The competitor libraries (pythae, Keras/TensorFlow) live in
throwaway virtual environments that the scripts create on demand; vaekit never depends on them.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV_ROOT = REPO / ".bench-venvs"
RESULT_TAG = "BENCH_RESULT "  # the one stdout line a child script reports through


def load_mnist() -> dict[str, np.ndarray]:
    """The MNIST copy embedded in vaekit: uint8 x_train (60000, 28, 28), x_test (10000, 28, 28)."""
    from vaekit.data.mnist import embedded_path

    with np.load(embedded_path(), allow_pickle=False) as z:
        return {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}


def all_digits(limit: int | None = None) -> np.ndarray:
    """The 70k MNIST images (uint8, (N, 28, 28)) in the order vaekit's ``split="all"`` uses; first ``limit``."""
    d = load_mnist()
    return np.concatenate([d["x_train"], d["x_test"]])[:limit]


def save_keras_digits(path: Path, digits: np.ndarray) -> None:
    """``digits`` as ``_keras_conv.py`` reads them: float32 (N, 28, 28, 1) in [0, 1], as the example has."""
    np.save(path, (digits.astype(np.float32) / np.float32(255))[..., None])


def keras_python(venv: Path) -> Path:
    """The TensorFlow venv's python (created on first use)."""
    return ensure_venv(venv, "tensorflow", ["tensorflow-cpu"])


def ensure_venv(venv: Path, probe: str, install: list[str]) -> Path:
    """Return ``venv``'s python, creating the venv and running ``pip install *install`` if needed.

    ``probe`` is a module that must import in the venv (e.g. ``pythae``); when it does, nothing
    is installed. The venv is a throwaway: delete it at will, it is recreated on the next run.
    """
    py = venv / "bin" / "python"
    probe_cmd = [str(py), "-c", f"import {probe}"]
    if py.exists() and subprocess.run(probe_cmd, capture_output=True).returncode == 0:
        return py
    if not py.exists():
        print(f"[setup] creating throwaway venv {venv}", flush=True)
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    print(f"[setup] {venv}/bin/pip install {' '.join(install)}", flush=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", *install], check=True)
    if subprocess.run(probe_cmd).returncode != 0:
        raise RuntimeError(f"{venv}: '{probe}' does not import after pip install; delete the venv and retry")
    return py


def thread_env(threads: int) -> dict[str, str]:
    """The environment for a child process limited to ``threads`` OpenMP/MKL threads."""
    env = dict(os.environ)
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[key] = str(threads)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def run_child(python: Path, script: Path, args: list[str], threads: int) -> dict:
    """Run ``script`` with ``python`` and return the JSON it prints after :data:`RESULT_TAG`.

    The child's other output (progress bars, library logs) is captured and shown only when the
    child fails.
    """
    cmd = [str(python), str(script), *args]
    proc = subprocess.run(cmd, env=thread_env(threads), capture_output=True, text=True)
    result = None
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            result = json.loads(line[len(RESULT_TAG):])
    if proc.returncode != 0 or result is None:
        tail = "\n".join((proc.stdout + "\n" + proc.stderr).strip().splitlines()[-30:])
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{tail}")
    return result


def alternate(methods: dict[str, Callable[[int], dict]], rounds: int, seed: int) -> dict[str, list[dict]]:
    """Run every method once per round, in turn (A B A B ...), round r with seed ``seed + r``.

    Load from other processes then hits every method alike, and the rounds give each method's
    spread (of time, and of the loss over seeds). Each method returns a dict with ``seconds``
    (per epoch) and whatever else it measures; ``seed`` is added to it.
    """
    runs: dict[str, list[dict]] = {name: [] for name in methods}
    for r in range(rounds):
        for name, run in methods.items():
            print(f"[round {r + 1}/{rounds}] {name}, seed {seed + r}", flush=True)
            runs[name].append({"seed": seed + r, **run(seed + r)})
    return runs


def summarize(runs: list[dict], key: str = "seconds") -> dict:
    """Epochs 2..N of every round (epoch 1 holds warm-up such as tracing): median, best, worst."""
    pooled = [s for run in runs for s in (run[key][1:] or run[key])]
    return {"median": round(statistics.median(pooled), 3), "best": round(min(pooled), 3),
            "worst": round(max(pooled), 3), "epochs": len(pooled),
            "round_medians": [round(statistics.median(run[key][1:] or run[key]), 3) for run in runs]}


def speedup(base: dict, other: dict) -> dict:
    """How many times faster ``base`` is than ``other`` (summaries of :func:`summarize`): the ratio
    of the medians, and its range over the rounds (each round's medians, round against round)."""
    per_round = [o / b for b, o in zip(base["round_medians"], other["round_medians"])]
    return {"median": round(other["median"] / base["median"], 3),
            "range": [round(min(per_round), 3), round(max(per_round), 3)]}


def loss_stats(values: list[float]) -> dict:
    """Mean, sd and every value of one loss over the rounds' seeds."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": round(statistics.mean(values), 3), "sd": round(sd, 3), "values": [round(v, 3) for v in values]}


def machine() -> dict:
    """What a reader needs to judge a timing: load average and the CPUs this process may use."""
    return {"loadavg": [round(x, 2) for x in os.getloadavg()], "cpus": sorted(os.sched_getaffinity(0)),
            "cpu_count": os.cpu_count()}


def epoch_stats(seconds: list[float]) -> tuple[float, float, str]:
    """(epoch 1, median of epochs 2..N, label); with one epoch the median is epoch 1 itself."""
    if len(seconds) > 1:
        return seconds[0], statistics.median(seconds[1:]), "median s/epoch (2..N)"
    return seconds[0], seconds[0], "s/epoch (only 1 epoch)"


def ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{a / b:.2f}x"


def print_table(header: list[str], rows: list[list[str]]) -> None:
    """A plain fixed-width table: readable in a terminal and pasteable into Markdown."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))


def write_json(path: str | None, payload: dict) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {path}")
