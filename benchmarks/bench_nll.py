"""Throughput of the importance-sampled NLL: vaekit vs pythae's ``VAE.get_nll``, same trained model.

The model is the PyTorch-examples MLP VAE (784-400-20, ReLU, Bernoulli/BCE, the ``pytorch-example``
preset), trained once with vaekit (or read from ``--run``); its weights are copied into pythae's
``VAE`` with the same custom encoder/decoder (``_pythae_nll.py``, run in the pythae venv). Both
estimate -log p(x) = -log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x) on the first ``--images`` MNIST
test images (continuous pixels, as the preset trains: a BCE "NLL", fine for timing) with ``--k``
samples each, one after the other (never concurrently), with the same thread count.

* vaekit: ``vaekit.metrics.likelihood.importance_sampled_nll``: encode each batch of images once,
  decode (samples x images) together in memory-bounded chunks, logsumexp accumulated in float64.
* pythae: ``get_nll(x, n_samples=k, batch_size=S)``: one image at a time, S copies of it encoded
  and decoded per inner step (pythae 0.1.2), under ``torch.no_grad()``.

Throughput = images x samples / seconds, by wall clock and by the process's CPU time (CPU time is
the fairer number on a shared machine). The NLL values should agree within Monte-Carlo noise.

    # smoke (seconds):
    OMP_NUM_THREADS=1 python benchmarks/bench_nll.py --images 20 --k 200 --epochs 1 --limit 2000 --threads 1
    # real (10 training epochs, 1000 images x k=1000):
    python benchmarks/bench_nll.py --threads 1 --out benchmarks/results/nll.json
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _common import HERE, VENV_ROOT, ensure_venv, load_mnist, print_table, ratio, run_child, write_json

PYTHAE_INSTALL = ["torch==2.13.0", "pythae"]
SHARED_VENV = Path("/tmp/bench/venv-pythae")  # where this machine keeps it; else the scripts' default
DEFAULT_VENV = SHARED_VENV if SHARED_VENV.exists() else VENV_ROOT / "pythae"


def trained_model(run: str | None, epochs: int, limit: int | None, threads: int, seed: int, tmp: Path):
    """The pytorch-example VAE: loaded from ``run``, or trained now with vaekit."""
    import vaekit

    if run is None:
        train = {"epochs": epochs, "progress": False, "tensorboard": False, "seed": seed, "threads": threads,
                 "device": "cpu"}
        overrides = [{"train": train}] + ([{"data": {"limit": limit}}] if limit else [])
        cfg = vaekit.resolve("pytorch-example", overrides=overrides)
        run = str(tmp / "run")
        start = time.perf_counter()
        vaekit.train(cfg, run, log=lambda m: print("  train: " + m, flush=True))
        print(f"  trained {epochs} epoch(s) in {time.perf_counter() - start:.1f}s", flush=True)
    model = vaekit.load(run)
    cfg = model.config.model  # type: ignore[attr-defined]
    if (cfg.hidden, cfg.latent_dim, cfg.activation, cfg.likelihood) != ([400], 20, "relu", "bernoulli"):
        raise SystemExit(f"{run} is not a pytorch-example model (784-400-20 relu bernoulli)")
    return model


def pythae_weights(model) -> dict[str, np.ndarray]:
    """vaekit's MLP (encoder 784-400-40, decoder 20-400-784) as the tutorial's fc1/fc21/fc22/fc3/fc4."""
    enc, dec = model.encoder.net, model.decoder.net
    w = lambda t: t.detach().cpu().numpy().astype(np.float32)  # noqa: E731
    return {
        "encoder.fc1.weight": w(enc[0].weight), "encoder.fc1.bias": w(enc[0].bias),
        "encoder.fc21.weight": w(enc[2].weight[:20]), "encoder.fc21.bias": w(enc[2].bias[:20]),
        "encoder.fc22.weight": w(enc[2].weight[20:]), "encoder.fc22.bias": w(enc[2].bias[20:]),
        "decoder.fc3.weight": w(dec[0].weight), "decoder.fc3.bias": w(dec[0].bias),
        "decoder.fc4.weight": w(dec[2].weight), "decoder.fc4.bias": w(dec[2].bias),
    }


def run_vaekit(model, x: torch.Tensor, k: int, batch: int, seed: int) -> dict:
    from vaekit.data import Split
    from vaekit.metrics.likelihood import importance_sampled_nll

    wall, cpu = time.perf_counter(), time.process_time()
    res = importance_sampled_nll(model, Split(x), k=k, batch_size=batch, seed=seed, progress=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"nll": res.nll, "se": res.se, "mc_se": res.mc_se, "wall": wall, "cpu": cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", help="a trained pytorch-example run folder (default: train one now)")
    ap.add_argument("--epochs", type=int, default=10, help="epochs when training the model here")
    ap.add_argument("--limit", type=int, default=None, help="train on the first N images only (smoke tests)")
    ap.add_argument("--images", type=int, default=1000, help="first N MNIST test images to evaluate")
    ap.add_argument("--k", type=int, default=1000, help="importance samples per image")
    ap.add_argument("--batch-size", type=int, default=100, help="vaekit: images per batch")
    ap.add_argument("--pythae-batch", type=int, default=100,
                    help="pythae: samples per inner step (its default)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-pythae", action="store_true")
    ap.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="pythae venv (created when missing)")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args()
    sb = min(args.pythae_batch, args.k)
    if args.k % sb:
        raise SystemExit(f"--k must be a multiple of --pythae-batch {sb}: pythae rounds k down to one")
    torch.set_num_threads(args.threads)
    d = load_mnist()
    pixels = d["x_test"][: args.images].astype(np.float32) / np.float32(255)
    x = torch.from_numpy(pixels)[:, None]  # (N, 1, 28, 28)
    print(f"IS NLL of the pytorch-example VAE: {len(x)} test images x k={args.k}, {args.threads} thread(s), "
          f"torch {torch.__version__}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        model = trained_model(args.run, args.epochs, args.limit, args.threads, args.seed, Path(tmp))
        results = {"vaekit": run_vaekit(model, x, args.k, args.batch_size, args.seed)}
        print(f"  vaekit: NLL {results['vaekit']['nll']:.3f}  {results['vaekit']['wall']:.1f}s", flush=True)
        if not args.skip_pythae:
            python = ensure_venv(args.venv, "pythae", PYTHAE_INSTALL)
            path = Path(tmp) / "model.npz"
            np.savez(path, x=x.numpy(), **pythae_weights(model))
            child = ["--k", str(args.k), "--batch-size", str(sb), "--threads", str(args.threads),
                     "--seed", str(args.seed)]
            results["pythae"] = run_child(python, HERE / "_pythae_nll.py", [str(path), *child], args.threads)
            py = results["pythae"]
            print(f"  pythae: NLL {py['nll']:.3f}  {py['wall']:.1f}s", flush=True)
    work = len(x) * args.k
    for r in results.values():
        r["per_s_wall"], r["per_s_cpu"] = work / r["wall"], work / r["cpu"]
    p = results.get("pythae", {})
    rows = [[name, f"{r['nll']:.3f}", f"{r['wall']:.1f}", f"{r['cpu']:.1f}", f"{r['per_s_wall']:,.0f}",
             f"{r['per_s_cpu']:,.0f}", ratio(r["per_s_wall"], p.get("per_s_wall")),
             ratio(r["per_s_cpu"], p.get("per_s_cpu"))]
            for name, r in results.items()]
    print()
    print_table(["method", "NLL", "wall s", "CPU s", "x*z/s (wall)", "x*z/s (CPU)", "vs pythae (wall)",
                 "vs pythae (CPU)"], rows)
    print("x*z/s = images x importance samples per second; vs pythae = this throughput / pythae's")
    settings = {"images": len(x), "k": args.k, "threads": args.threads, "seed": args.seed, "run": args.run,
                "epochs": args.epochs, "batch_size": args.batch_size, "pythae_batch": sb,
                "torch": torch.__version__}
    write_json(args.out, {"benchmark": "nll", "settings": settings, "results": results})


if __name__ == "__main__":
    main()
