"""Seed study of ``keras-conv``: the epoch-30 loss of vaekit's preset and of the Keras code, over seeds.

The keras.io example reports one run (loss 146.95 = 140.15 + 6.80 at epoch 30). One run says little:
the loss of this 2-D-latent model moves by about a unit between seeds. This script trains vaekit's
``keras-conv`` preset and the Keras code it reproduces (``_keras_conv.py``, in the TensorFlow venv)
for the full 30 epochs on all 70k images, for several seeds each, ``--jobs`` runs at a time on
``--threads`` threads each, and reports every run's last-epoch loss as Keras prints it (the running
mean over the epoch's batches) and the spread: mean, standard deviation, min, max, and how many
runs reach ``--target``. It also gives each final model's loss on all 70k images (vaekit's
``trainset_loss``; for Keras, ``_keras_conv.py`` computes the same after ``fit``), a number the
example itself does not print.

    python benchmarks/seeds_conv.py --vaekit 0-7 --keras 0-4 --jobs 2 --threads 1 \\
        --dir runs/seeds --out benchmarks/results/conv-seeds.json
    python benchmarks/seeds_conv.py --vaekit 0-1 --keras 0 --epochs 1 --limit 2000 --dir /tmp/s  # smoke

Finished runs in ``--dir`` are reused and stopped vaekit runs are resumed (``vaekit train --resume``
ends bit-identical to an uninterrupted run), so a study can be interrupted and extended. Run names
carry the image count (``vaekit-seed3-n70000``, ``keras-seed0-n70000.json``). When a run fails, the
queued ones are cancelled, the finished ones are still reported, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from _common import (
    HERE,
    VENV_ROOT,
    all_digits,
    keras_python,
    print_table,
    run_child,
    save_keras_digits,
    thread_env,
    write_json,
)


def seeds(spec: str) -> list[int]:
    """'0-3,7' -> [0, 1, 2, 3, 7]."""
    out: list[int] = []
    for part in filter(None, spec.split(",")):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def tag(args: argparse.Namespace) -> str:
    """Run names carry the image count, so a smoke study and a full one never share a run."""
    return f"n{args.limit or 70000}"


def vaekit_rows(run: Path) -> list[dict]:
    """Every epoch's row of a vaekit run's metrics.jsonl (none when it has not finished an epoch)."""
    path = run / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def run_vaekit(seed: int, args: argparse.Namespace) -> dict:
    """Train, resume or reuse ``DIR/vaekit-seedS-nN``; the terms of its epoch ``--epochs``."""
    out = args.dir / f"vaekit-seed{seed}-{tag(args)}"
    log = out.with_name(out.name + ".log")
    rows = vaekit_rows(out)
    status = "reused"
    if len(rows) < args.epochs:
        # A checkpoint (even one written in epoch 1) means a stopped run: continue it exactly.
        status = "resumed" if (out / "checkpoints" / "last.safetensors").is_file() else "new"
        cmd = [sys.executable, "-m", "vaekit", "train", "--preset", "keras-conv", "--seed", str(seed),
               "--epochs", str(args.epochs), "--set", f"train.threads={args.threads}",
               "--out", str(out), "--no-progress", "--resume" if status == "resumed" else "--overwrite"]
        if args.limit:
            cmd += ["--limit", str(args.limit)]
        print(f"[vaekit seed {seed}] {status}: {' '.join(cmd[1:])} (log: {log})", flush=True)
        with open(log, "a") as f:
            code = subprocess.run(cmd, env=thread_env(args.threads), stdout=f, stderr=subprocess.STDOUT, check=False).returncode
        if code != 0:
            raise RuntimeError(f"exit {code}, see {log}")
        rows = vaekit_rows(out)
    rows = rows[: args.epochs]
    last = rows[-1]
    return {"seed": seed, "status": status, "loss": last["train_loss"], "recon": last["train_recon"],
            "kl": last["train_kl"], "final_model_loss": last.get("trainset_loss"),
            "curve": [{k: round(r[f"train_{k}"], 4) for k in ("loss", "recon", "kl")} for r in rows],
            "seconds": [r["seconds"] for r in rows]}


def run_keras(seed: int, args: argparse.Namespace, python: Path, data: Path) -> dict:
    """Train the Keras code with ``seed``, or reuse ``DIR/keras-seedS-nN.json``."""
    saved = args.dir / f"keras-seed{seed}-{tag(args)}.json"
    status = "reused"
    res = json.loads(saved.read_text()) if saved.exists() else None
    if res is None or len(res["curve"]) < args.epochs:
        status = "new"
        print(f"[keras seed {seed}] _keras_conv.py --epochs {args.epochs} --threads {args.threads}", flush=True)
        cli = [str(data), "--epochs", str(args.epochs), "--threads", str(args.threads), "--seed", str(seed)]
        res = run_child(python, HERE / "_keras_conv.py", cli, args.threads)
        saved.write_text(json.dumps(res) + "\n")
    curve = res["curve"][: args.epochs]
    final = res.get("final_model", {}).get("loss") if len(res["curve"]) == args.epochs else None
    return {"seed": seed, "status": status, **curve[-1], "final_model_loss": final, "curve": curve,
            "seconds": res["seconds"][: args.epochs], "versions": f"TF {res['tensorflow']}, Keras {res['keras']}"}


def summary(runs: list[dict], target: float) -> dict:
    losses = [r["loss"] for r in runs]
    return {"runs": len(runs), "mean": statistics.fmean(losses),
            "sd": statistics.stdev(losses) if len(losses) > 1 else None,
            "min": min(losses), "max": max(losses), "at_or_below_target": sum(x <= target for x in losses)}


def plot(results: dict[str, list[dict]], target: float, path: str) -> None:
    """Every run's loss per epoch (from epoch 3 in long runs: the first two dwarf the rest)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    skip = 2 if max(len(r["curve"]) for runs in results.values() for r in runs) > 5 else 0
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for (lib, runs), colour in zip(results.items(), ("tab:blue", "tab:orange")):
        for i, r in enumerate(runs):
            ys = [e["loss"] for e in r["curve"]][skip:]
            ax.plot(range(skip + 1, skip + 1 + len(ys)), ys, color=colour, lw=1, alpha=0.8,
                    label=f"{lib} ({len(runs)} seeds)" if i == 0 else None)
    ax.axhline(target, color="k", ls="--", lw=0.8, label=f"target {target:g}")
    ax.set(xlabel="epoch", ylabel="training loss (running mean of the epoch)", title="keras-conv over seeds")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def versions() -> dict:
    import torch

    import vaekit

    commit = subprocess.run(["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=False).stdout.strip()
    return {"vaekit": vaekit.__version__, "torch": torch.__version__, "commit": commit or None,
            "python": sys.version.split()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vaekit", default="0-3", help="vaekit seeds, e.g. 0-7 or 0,2,5 ('' for none)")
    ap.add_argument("--keras", default="", help="Keras seeds ('' for none)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--limit", type=int, default=None, help="first N of the 70k images (smoke tests)")
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time")
    ap.add_argument("--threads", type=int, default=1, help="threads per run")
    ap.add_argument("--target", type=float, default=148.0)
    ap.add_argument("--dir", type=Path, required=True, help="run folders and saved Keras results")
    ap.add_argument("--venv", type=Path, default=VENV_ROOT / "tf")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    ap.add_argument("--plot", default=None, help="draw every run's loss curve into this PNG")
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)

    keras_seeds = seeds(args.keras)
    python = data = None
    if keras_seeds:
        python = keras_python(args.venv)
        data = args.dir / f"digits{args.limit or 70000}.npy"
        if not data.exists():
            save_keras_digits(data, all_digits(args.limit))

    # The Keras runs go last: with --jobs 2 the vaekit seeds pair up first.
    jobs = [("vaekit", s) for s in seeds(args.vaekit)] + [("keras", s) for s in keras_seeds]
    results: dict[str, list[dict]] = {"vaekit": [], "keras": []}
    failures: list[str] = []
    pool = ThreadPoolExecutor(args.jobs)
    futures = {(pool.submit(run_vaekit, s, args) if lib == "vaekit" else
                pool.submit(run_keras, s, args, python, data)): (lib, s) for lib, s in jobs}
    try:
        for fut in as_completed(futures):
            lib, s = futures[fut]
            try:
                results[lib].append(fut.result())
            except Exception as err:  # noqa: BLE001 - report it, stop queuing, keep what finished
                failures.append(f"{lib} seed {s}: {err}")
                pool.shutdown(wait=False, cancel_futures=True)
    except KeyboardInterrupt:  # the children got the signal too (vaekit checkpoints and stops)
        failures.append("interrupted")
        pool.shutdown(wait=False, cancel_futures=True)
    pool.shutdown(wait=True)
    for runs in results.values():
        runs.sort(key=lambda r: r["seed"])

    rows = []
    for lib, runs in results.items():
        for r in runs:
            final = f"{r['final_model_loss']:.2f}" if r["final_model_loss"] is not None else "-"
            rows.append([lib, r["seed"], f"{r['loss']:.2f}", f"{r['recon']:.2f}", f"{r['kl']:.2f}", final])
    print_table(["library", "seed", f"epoch-{args.epochs} loss", "recon", "KL", "final model, all images"], rows)
    stats = {lib: summary(runs, args.target) for lib, runs in results.items() if runs}
    for lib, s in stats.items():
        sd = f" ± {s['sd']:.2f} (sd)" if s["sd"] is not None else ""
        print(f"{lib}: {s['runs']} runs, mean {s['mean']:.2f}{sd}, range {s['min']:.2f}–{s['max']:.2f}, "
              f"{s['at_or_below_target']} at or below {args.target:g}")
    settings = {"epochs": args.epochs, "limit": args.limit, "threads": args.threads, "jobs": args.jobs,
                "target": args.target, "vaekit_seeds": seeds(args.vaekit), "keras_seeds": keras_seeds}
    write_json(args.out, {"benchmark": "conv-seeds", "settings": settings, "versions": versions(),
                          "results": results, "summary": stats, "failures": failures})
    if args.plot and stats:
        plot(results, args.target, args.plot)
    if failures:
        sys.exit("not all runs finished:\n  " + "\n  ".join(failures))


if __name__ == "__main__":
    main()
