"""NLL against CPU-hours for a long run with weight snapshots (issue 17: Burda et al.'s VAE).

Evaluates every ``RUN/checkpoints/epoch_NNNNN.safetensors`` kept by ``train.snapshot_every`` (and the
final weights) on a fixed subset of the binarized test set, -log p(x) by importance sampling with k
samples (Burda et al. 2015, eq. 8), and writes one JSON row per snapshot: epoch, optimiser steps,
CPU-hours of training so far (the sum of ``metrics.jsonl``'s per-epoch ``cpu_seconds``; epochs logged
before that column existed count their wall seconds, one thread, and ``wall_epochs`` says how many),
the NLL with its SE, and the held-out ELBO of that epoch. Rows already in the output are kept (their
hours recomputed), so a rerun only evaluates new snapshots (resumable). ``--plot PNG`` draws the NLL
against CPU-hours with the paper's 86.76 and the 0.5-nat target; ``--with CURVE.json ...`` adds other
runs' curves (e.g. a faster recipe's) to the same plot.

    python benchmarks/iwae_curve.py /work/runs/iwae-paper-vae-full \\
        --out benchmarks/results/iwae-paper-vae-full-curve.json --n 2000 --k 1000 --every 100 \\
        --plot docs/images/iwae-paper-vae-curve.png --docs docs/results.md
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


PAPER_NLL = 86.76  # Burda et al. (2015), Table 1: VAE, k = 1, one stochastic layer, MNIST
TARGET_NLL = PAPER_NLL + 0.5


def hours(metrics: dict[int, dict], epoch: int) -> tuple[float, int]:
    """CPU-hours of training up to ``epoch`` and how many of those epochs only have wall seconds."""
    upto = [m for e, m in metrics.items() if e <= epoch]
    return sum(m.get("cpu_seconds", m["seconds"]) for m in upto) / 3600, sum("cpu_seconds" not in m for m in upto)


def cfg_name(out: dict) -> str:
    return Path(out["run"]).name


def plot(curves: list[dict], png: Path) -> None:
    """NLL against training CPU-hours, one line per curve JSON (all measured alike: same n, k)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if len({(c["n"], c["k"]) for c in curves}) > 1:
        raise SystemExit("the curves were measured differently (n, k): they cannot share one plot")
    fig, ax = plt.subplots(figsize=(7, 4))
    for out in curves:
        rows = out["rows"]
        cfg = out["config"]["train"]
        ax.errorbar([r["train_cpu_hours"] for r in rows], [r["nll"] for r in rows], yerr=[r["se"] for r in rows],
                    marker="o", ms=3, capsize=2,
                    label=f"{cfg_name(out)} (batch {cfg['batch_size']}, {cfg['epochs']} epochs): "
                          f"epochs {rows[0]['epoch']}-{rows[-1]['epoch']}")
    ax.axhline(PAPER_NLL, color="k", lw=0.8, ls="--", label=f"Burda et al.: {PAPER_NLL}")
    ax.axhline(TARGET_NLL, color="tab:red", lw=0.8, ls=":", label=f"target: {TARGET_NLL:.2f}")
    ax.set_xlabel("training CPU-hours (one thread); bars: SE over the images")
    out = curves[0]
    ax.set_ylabel(f"-log p(x) [nats], IS k={out['k']}, first {out['n']} test images")
    tail = [r["nll"] for c in curves for r in (c["rows"][1:] or c["rows"])]
    ax.set_ylim(PAPER_NLL - 1, max(tail) + 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n", type=int, default=2000, help="the first N test images (fixed binarization)")
    ap.add_argument("--k", type=int, default=1000, help="importance samples per image")
    ap.add_argument("--every", type=int, default=1, help="evaluate the snapshots of every Nth epoch (the last always)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--plot", type=Path, help="also draw the curve into this PNG")
    ap.add_argument("--docs", type=Path, help="rewrite the latest-snapshot sentence in this page (docs/results.md)")
    ap.add_argument("--with", dest="others", type=Path, nargs="*", default=[], metavar="CURVE_JSON",
                    help="other runs' curve JSONs (this script's --out) drawn in the same plot")
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
    # By epoch, not by position: snapshots of earlier sessions may be gone from this machine.
    chosen = [(e, p) for e, p in snaps if e % args.every == 0 or (e, p) == snaps[-1]]
    for epoch, path in chosen:
        if epoch in rows or epoch not in metrics:
            continue
        tensors, meta = checkpoint.load_tensors(path)
        model = build(cfg.model, tuple(meta["shape"]))
        checkpoint.load_weights(model, tensors, path)
        model.eval()
        start = time.perf_counter()
        res = importance_sampled_nll(model, test, k=args.k, batch_size=100, seed=0, progress=False)
        m = metrics[epoch]
        rows[epoch] = {"epoch": epoch, "step": m["step"], "lr": m["lr"],
                       "nll": res.nll, "se": res.se, "ess": res.ess,
                       "test_neg_elbo": m.get("test_loss"), "eval_seconds": time.perf_counter() - start}
        print(json.dumps(rows[epoch]), flush=True)
        write(args, cfg, rows, metrics)
    out = write(args, cfg, rows, metrics)
    if args.plot:
        plot([out] + [json.loads(p.read_text()) for p in args.others], args.plot)
    if args.docs:
        write_docs_block(out, [json.loads(p.read_text()) for p in args.others], args.docs)


DOCS_START, DOCS_END = "<!-- iwae-curve:start (benchmarks/iwae_curve.py) -->", "<!-- iwae-curve:end -->"


def docs_block(out: dict, others: list[dict] = ()) -> str:
    """The results page's sentences on the latest snapshot of each curve (tests/test_docs_numbers.py
    checks them)."""
    r = out["rows"][-1]
    text = (f"Latest snapshot: epoch {r['epoch']:,} of {out['config']['train']['epochs']:,} after "
            f"{r['train_cpu_hours']:.2f} CPU-hours of training, −log p(x) =\n{r['nll']:.2f} ± {r['se']:.2f} nats "
            f"(SE over the {out['n']:,} images; the paper's protocol, k = 5000 on all\n10,000 images, is run on the "
            f"final weights).")
    for o in others:
        r, t = o["rows"][-1], o["config"]["train"]
        text += (f"\nA candidate for a faster recipe, `{cfg_name(o)}` (batch {t['batch_size']}, lr {t['lr']:g} with "
                 f"{t['lr_schedule']} decay over {t['epochs']:,} epochs): epoch {r['epoch']:,} after "
                 f"{r['train_cpu_hours']:.2f} CPU-hours, −log p(x) = {r['nll']:.2f} ± {r['se']:.2f} nats on the same images.")
    return text


def write_docs_block(out: dict, others: list[dict], page: Path) -> None:
    text = page.read_text()
    head, rest = text.split(DOCS_START, 1)
    _, tail = rest.split(DOCS_END, 1)
    page.write_text(f"{head}{DOCS_START}\n{docs_block(out, others)}\n{DOCS_END}{tail}")
    print(f"wrote the latest snapshot into {page}")


def write(args: argparse.Namespace, cfg, rows: dict[int, dict], metrics: dict[int, dict]) -> dict:  # noqa: ANN001
    for e, r in rows.items():
        if e in metrics:
            r["train_cpu_hours"], r["wall_epochs"] = hours(metrics, e)
    out = {"run": str(args.run), "config": cfg.to_dict(), "n": args.n, "k": args.k,
           "protocol": "first n test images, binarized once (data.test_binarize_seed); -log p(x) by "
                       "importance sampling (Burda et al. 2015, eq. 8), seed 0",
           "rows": [rows[e] for e in sorted(rows)]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()
