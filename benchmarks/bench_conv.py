"""Seconds per epoch of the Keras convolutional VAE: vaekit's ``keras-conv`` preset vs Keras itself.

The model is the keras.io "Variational AutoEncoder" example: Conv 32/64 (3x3, stride 2) -> Dense 16
-> 2-D latent, mirrored transposed convolutions, sigmoid output with BCE summed over pixels +
analytic KL (batch mean), Adam 1e-3, batch 128, trained on all 70k MNIST images (no test split, so
the reported loss is the last epoch's training loss). Methods:

* ``vaekit`` - ``vaekit.train`` with the ``keras-conv`` preset, in a child process of this script;
* ``keras``  - the example re-written in ``_keras_conv.py``, run in a throwaway TensorFlow venv,
  timed per epoch with a Keras callback; its encoder/decoder parameter counts are checked against
  the example's 69,076 and 65,089.

The method (``_common.alternate``): ``--rounds`` rounds, each training vaekit then Keras for
``--epochs`` epochs, round r with seed ``--seed + r``, every run a fresh process with the same
thread count (torch threads; TF intra- and inter-op threads). Per side: median, best and worst of
epochs 2..N over all rounds (epoch 1 holds warm-up); the speed-up is Keras's median / vaekit's,
with its range over the rounds; CPU seconds (all threads) alongside; the last epoch's loss over
the rounds' seeds. ``benchmarks/tables.py`` turns the JSON into the README's table.

    OMP_NUM_THREADS=1 python benchmarks/bench_conv.py --epochs 1 --rounds 1 --limit 2000 --threads 1  # smoke
    python benchmarks/bench_conv.py --threads 2 --out benchmarks/results/conv.json                     # real
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import (
    HERE,
    RESULT_TAG,
    VENV_ROOT,
    all_digits,
    alternate,
    keras_python,
    loss_stats,
    machine,
    print_table,
    run_child,
    save_keras_digits,
    speedup,
    summarize,
    write_json,
)

EXPECTED_PARAMS = {"encoder": 69_076, "decoder": 65_089}


def vaekit_child(limit: int | None, epochs: int, seed: int, threads: int) -> None:
    """``--child``: train keras-conv in this process and print the result line."""
    import vaekit

    train = {"epochs": epochs, "progress": False, "tensorboard": False, "seed": seed,
             "threads": threads, "device": "cpu"}
    overrides = [{"train": train}] + ([{"data": {"limit": limit}}] if limit else [])
    cfg = vaekit.resolve("keras-conv", overrides=overrides)
    with tempfile.TemporaryDirectory() as out:
        run = vaekit.train(cfg, Path(out) / "run", overwrite=True, log=lambda m: print(m, flush=True))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    last = run.metrics[-1]
    print(RESULT_TAG + json.dumps({
        "seconds": [r["seconds"] for r in run.metrics],
        "cpu_seconds": [r["cpu_seconds"] for r in run.metrics],
        "loss": last["train_loss"], "recon": last.get("train_recon"), "kl": last.get("train_kl"),
        "curve": [r["train_loss"] for r in run.metrics],
        "params": {"encoder": count(run.model.encoder), "decoder": count(run.model.decoder)},
    }), flush=True)


def run_vaekit(limit: int | None, epochs: int, seed: int, threads: int) -> dict:
    args = ["--child", "--epochs", str(epochs), "--seed", str(seed), "--threads", str(threads)]
    res = run_child(Path(sys.executable), Path(__file__), args + (["--limit", str(limit)] if limit else []), threads)
    print("  vaekit: " + ", ".join(f"{s:.2f}s" for s in res["seconds"]) + f"; loss {res['loss']:.2f}", flush=True)
    return res


def run_keras(data: Path, epochs: int, seed: int, threads: int, venv: Path) -> dict:
    args = [str(data), "--epochs", str(epochs), "--threads", str(threads), "--seed", str(seed)]
    res = run_child(keras_python(venv), HERE / "_keras_conv.py", args, threads)
    res["curve"] = [e["loss"] for e in res["curve"]]
    print("  keras: " + ", ".join(f"{s:.2f}s" for s in res["seconds"]) + f"; loss {res['loss']:.2f} "
          f"(TF {res['tensorflow']}, Keras {res['keras']}, jit_compile={res['jit_compile']})", flush=True)
    return res


def report(runs: dict[str, list[dict]]) -> dict:
    summary = {name: {"seconds": summarize(r), "cpu_seconds": summarize(r, "cpu_seconds"),
                      "loss": loss_stats([x["loss"] for x in r]),
                      "params": r[0]["params"]} for name, r in runs.items()}
    header = ["method", "median s/epoch", "best", "worst", "CPU s/epoch", "last-epoch loss (seeds)",
              "vaekit's speed-up (range)"]
    rows = []
    for name, s in summary.items():
        sp = speedup(summary["vaekit"]["seconds"], s["seconds"]) if name != "vaekit" else None
        if sp:
            s["vaekit_speedup"] = sp
            s["vaekit_speedup_cpu"] = speedup(summary["vaekit"]["cpu_seconds"], s["cpu_seconds"])
        t = s["seconds"]
        rows.append([name, f"{t['median']:.2f}", f"{t['best']:.2f}", f"{t['worst']:.2f}",
                     f"{s['cpu_seconds']['median']:.2f}", f"{s['loss']['mean']:.2f} ± {s['loss']['sd']:.2f}",
                     "-" if not sp else f"{sp['median']:.2f}x ({sp['range'][0]:.2f}-{sp['range'][1]:.2f})"])
    print()
    print_table(header, rows)
    for name, s in summary.items():
        ok = s["params"] == EXPECTED_PARAMS
        print(f"{name} parameters: encoder {s['params']['encoder']:,}, decoder {s['params']['decoder']:,} "
              f"({'match' if ok else 'DO NOT match'} the Keras example's 69,076 / 65,089)")
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3, help="epochs per run (default 3)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds, vaekit then keras (default 2)")
    ap.add_argument("--threads", type=int, default=None, help="threads for both (default: torch's default)")
    ap.add_argument("--seed", type=int, default=0, help="seed of round 1; round r uses seed + r - 1")
    ap.add_argument("--limit", type=int, default=None, help="first N of the 70k images (smoke tests)")
    ap.add_argument("--skip-keras", action="store_true")
    ap.add_argument("--venv", type=Path, default=VENV_ROOT / "tf", help="TensorFlow venv (created when missing)")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    import torch

    threads = args.threads or torch.get_num_threads()
    if args.child:
        return vaekit_child(args.limit, args.epochs, args.seed, threads)
    digits = all_digits(args.limit)
    print(f"Keras conv VAE: {len(digits)} images, {args.rounds} rounds x {args.epochs} epochs, batch 128, "
          f"{threads} thread(s), seeds {args.seed}..{args.seed + args.rounds - 1}", flush=True)
    before = machine()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "digits.npy"
        save_keras_digits(data, digits)
        methods = {"vaekit": lambda seed: run_vaekit(args.limit, args.epochs, seed, threads)}
        if not args.skip_keras:
            methods["keras"] = lambda seed: run_keras(data, args.epochs, seed, threads, args.venv)
        runs = alternate(methods, args.rounds, args.seed)
    summary = report(runs)
    settings = {"epochs": args.epochs, "rounds": args.rounds, "threads": threads, "seed": args.seed,
                "limit": args.limit, "images": int(len(digits)), "batch": 128, "torch": torch.__version__,
                "machine_before": before, "machine_after": machine(), "command": " ".join(sys.argv)}
    write_json(args.out, {"benchmark": "conv", "method": "alternating", "settings": settings,
                          "summary": summary, "runs": runs})


if __name__ == "__main__":
    main()
