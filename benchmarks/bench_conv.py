"""Seconds per epoch of the Keras convolutional VAE: vaekit's ``keras-conv`` preset vs Keras itself.

The model is the keras.io "Variational AutoEncoder" example: Conv 32/64 (3x3, stride 2) -> Dense 16
-> 2-D latent, mirrored transposed convolutions, sigmoid output with BCE summed over pixels +
analytic KL (batch mean), Adam 1e-3, batch 128, trained on all 70k MNIST images (no test split, so
the reported loss is the last epoch's training loss). Methods, run one after the other:

* ``vaekit`` - ``vaekit.train`` with the ``keras-conv`` preset (PyTorch, in this process);
* ``keras``  - the example re-written in ``_keras_conv.py``, run in a throwaway TensorFlow venv,
  timed per epoch with a Keras callback; its encoder/decoder parameter counts are checked against
  the example's 69,076 and 65,089.

Both get the same thread count (torch threads; TF intra- and inter-op threads) and seed.

    OMP_NUM_THREADS=1 python benchmarks/bench_conv.py --epochs 1 --limit 2000 --threads 1  # smoke
    python benchmarks/bench_conv.py --out benchmarks/results/conv.json                       # real
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from _common import (
    HERE,
    VENV_ROOT,
    all_digits,
    epoch_stats,
    keras_python,
    print_table,
    ratio,
    run_child,
    save_keras_digits,
    write_json,
)

EXPECTED_PARAMS = {"encoder": 69_076, "decoder": 65_089}


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def run_vaekit(limit: int | None, epochs: int, seed: int, threads: int) -> dict:
    import vaekit

    train = {"epochs": epochs, "progress": False, "tensorboard": False, "seed": seed,
             "threads": threads, "device": "cpu"}
    overrides = [{"train": train}] + ([{"data": {"limit": limit}}] if limit else [])
    cfg = vaekit.resolve("keras-conv", overrides=overrides)
    with tempfile.TemporaryDirectory() as out:
        log = lambda m: print("  vaekit: " + m, flush=True)  # noqa: E731
        run = vaekit.train(cfg, Path(out) / "run", overwrite=True, log=log)
    last = run.metrics[-1]
    return {
        "seconds": [r["seconds"] for r in run.metrics],
        "loss": last["train_loss"],
        "recon": last.get("train_recon"),
        "kl": last.get("train_kl"),
        "params": {"encoder": count(run.model.encoder), "decoder": count(run.model.decoder)},
    }


def run_keras(digits: np.ndarray, epochs: int, seed: int, threads: int, venv: Path) -> dict:
    python = keras_python(venv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "digits.npy"
        save_keras_digits(path, digits)
        args = [str(path), "--epochs", str(epochs), "--threads", str(threads), "--seed", str(seed)]
        res = run_child(python, HERE / "_keras_conv.py", args, threads)
    for i, s in enumerate(res["seconds"], 1):
        print(f"  keras: epoch {i}: {s:.2f}s", flush=True)
    print(f"  keras: TF {res['tensorflow']}, Keras {res['keras']}, jit_compile={res['jit_compile']}, "
          f"threads {res['threads']}", flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="threads for both (default: torch's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="first N of the 70k images (smoke tests)")
    ap.add_argument("--skip-keras", action="store_true")
    ap.add_argument("--venv", type=Path, default=VENV_ROOT / "tf",
                    help="TensorFlow venv (created when missing)")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args()
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    digits = all_digits(args.limit)
    print(f"Keras conv VAE: {len(digits)} images, {args.epochs} epochs, batch 128, {threads} thread(s), "
          f"seed {args.seed}", flush=True)

    results = {"vaekit": run_vaekit(args.limit, args.epochs, args.seed, threads)}
    if not args.skip_keras:
        results["keras"] = run_keras(digits, args.epochs, args.seed, threads, args.venv)

    med = {name: epoch_stats(r["seconds"])[1] for name, r in results.items()}
    label = epoch_stats(results["vaekit"]["seconds"])[2]
    header = ["method", "epoch 1 s", label, "train loss (recon + KL)", "speed-up vs keras",
              "params enc / dec"]
    rows = []
    for name, r in results.items():
        first, m, _ = epoch_stats(r["seconds"])
        loss = f"{r['loss']:.2f} ({r['recon']:.2f} + {r['kl']:.2f})"
        params = f"{r['params']['encoder']:,} / {r['params']['decoder']:,}"
        rows.append([name, f"{first:.2f}", f"{m:.3f}", loss, ratio(med.get("keras"), m), params])
    print()
    print_table(header, rows)
    print("speed-up vs keras = Keras's seconds / this method's")
    for name, r in results.items():
        ok = r["params"] == EXPECTED_PARAMS
        print(f"{name} parameters: encoder {r['params']['encoder']:,}, decoder {r['params']['decoder']:,} "
              f"({'match' if ok else 'DO NOT match'} the Keras example's 69,076 / 65,089)")
    settings = {"epochs": args.epochs, "threads": threads, "seed": args.seed, "limit": args.limit,
                "images": int(len(digits)), "batch": 128, "torch": torch.__version__}
    write_json(args.out, {"benchmark": "conv", "settings": settings, "results": results,
                          "median_seconds": med, "median_of": label})


if __name__ == "__main__":
    main()
