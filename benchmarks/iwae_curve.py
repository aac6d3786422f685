"""NLL against CPU-hours for a long run with weight snapshots (issue 17: Burda et al.'s VAE).

Evaluates every ``RUN/checkpoints/epoch_NNNNN.safetensors`` kept by ``train.snapshot_every`` (and the
final weights) on a fixed subset of the binarized test set, -log p(x) by importance sampling with k
samples (Burda et al. 2015, eq. 8), and writes one JSON row per snapshot: epoch, optimiser steps,
CPU-hours of training so far (the sum of ``metrics.jsonl``'s per-epoch seconds: one thread, so wall
seconds of the training pass = CPU seconds), the NLL with its SE, and the held-out ELBO of that epoch.
Rows already in the output are kept, so a rerun only evaluates new snapshots (resumable).

    python benchmarks/iwae_curve.py /work/runs/iwae-paper-vae-full \\
        --out benchmarks/results/iwae-paper-vae-full-curve.json --n 2000 --k 1000 --every 5
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import torch


def snapshots(run: Path) -> list[tuple[int, Path]]:
    found = [(int(m.group(1)), p) for p in (run / "checkpoints").glob("epoch_*.safetensors")
             if (m := re.fullmatch(r"epoch_(\d+)\.safetensors", p.name))]
    return sorted(found)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n", type=int, default=2000, help="the first N test images (fixed binarization)")
    ap.add_argument("--k", type=int, default=1000, help="importance samples per image")
    ap.add_argument("--every", type=int, default=1, help="evaluate every Nth snapshot (the last always)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from vaekit import checkpoint
    from vaekit.config import load_json
    from vaekit.data import open_data
    from vaekit.metrics.likelihood import importance_sampled_nll
    from vaekit.models import build
    from vaekit.run import read_metrics

    cfg = load_json(args.run / "config.json")
    data = open_data(cfg.data)
    test = data.test.subset(slice(0, args.n))
    metrics = {r["epoch"]: r for r in read_metrics(args.run)}
    old = json.loads(args.out.read_text()) if args.out.is_file() else {}
    rows = {r["epoch"]: r for r in old.get("rows", [])}
    snaps = snapshots(args.run)
    chosen = snaps[:: args.every] + ([snaps[-1]] if snaps and snaps[-1] not in snaps[:: args.every] else [])
    for epoch, path in chosen:
        if epoch in rows or epoch not in metrics:
            continue
        tensors, meta = checkpoint.load_tensors(path)
        model = build(cfg.model, tuple(meta["shape"]))
        checkpoint.load_weights(model, tensors, path)
        model.eval()
        start = time.perf_counter()
        res = importance_sampled_nll(model, test, k=args.k, batch_size=100, seed=0, progress=False)
        seconds = sum(metrics[e]["seconds"] for e in metrics if e <= epoch)
        m = metrics[epoch]
        rows[epoch] = {"epoch": epoch, "step": m["step"], "lr": m["lr"], "train_cpu_hours": seconds / 3600,
                       "nll": res.nll, "se": res.se, "ess": res.ess,
                       "test_neg_elbo": m.get("test_loss"), "eval_seconds": time.perf_counter() - start}
        print(json.dumps(rows[epoch]), flush=True)
        out = {"run": str(args.run), "config": cfg.to_dict(), "n": args.n, "k": args.k,
               "protocol": "first n test images, binarized once (data.test_binarize_seed); -log p(x) by "
                           "importance sampling (Burda et al. 2015, eq. 8), seed 0",
               "rows": [rows[e] for e in sorted(rows)]}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
