"""Evaluate the part-B runs: -ELBO, importance-sampled NLL, active units, code sensitivity, CVAE class accuracy.

Usage: python scripts/partb_eval.py runs/partb   (writes runs/partb/results.json, prints a Markdown table)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

import vaekit
from vaekit.data import Split, open_data
from vaekit.metrics.likelihood import importance_sampled_nll
from vaekit.models.avae import code_sensitivity

torch.set_num_threads(1)
ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/partb")
N_IS, K = int(os.environ.get("N_IS", 2000)), int(os.environ.get("K", 500))  # IS on the first N_IS test images


def active_units(model, split: Split) -> int:
    """Burda et al. 2015 sec. 5.2: #u with Cov_x(E_q[z_u|x]) > 0.01, codes from model.encode."""
    with torch.no_grad():
        if model.name == "cvae":
            mu = torch.cat([model.encode(split.x[i:i + 2000], split.y[i:i + 2000]) for i in range(0, len(split), 2000)])
        else:
            mu = torch.cat([model.encode(split.x[i:i + 2000]) for i in range(0, len(split), 2000)])
    return int((mu.double().var(0, unbiased=False) > 0.01).sum())


def class_accuracy(model) -> dict:
    """Fraction of 100 samples per label that the shipped MNIST classifier assigns to that label."""
    from vaekit.metrics.generation import classify

    out = {}
    for t in (1.0, 0.5):
        torch.manual_seed(0)
        x = torch.cat([model.sample(100, t, label=c) for c in range(10)])
        pred = classify(x)[1].argmax(1)
        out[f"T={t}"] = float((pred == torch.arange(10).repeat_interleave(100).numpy()).mean())
    return out


results = {}
for run_dir in sorted(p for p in ROOT.iterdir() if (p / "model.safetensors").is_file()):
    run = vaekit.load_run(run_dir)
    model, cfg = run.model, run.config
    test = open_data(cfg.data).test
    sub = test.subset(slice(0, N_IS))
    r: dict = {"epochs": len(run.metrics), "train_seconds": round(sum(m["seconds"] for m in run.metrics), 1)}
    ev = vaekit.elbo(model, test, seed=0)
    r["neg_elbo"] = ev["recon"] + ev["kl"]
    r["terms"] = ev
    nll = importance_sampled_nll(model, sub, k=K, progress=False)
    r["is_nll"], r["is_se"] = nll.nll, nll.se
    r["active_units"] = active_units(model, test)
    if model.name == "cvae":  # the numbers above are conditional on the true label: -log p(x|y)
        unl = Split(test.x, None)
        evm = vaekit.elbo(model, unl, seed=0)
        r["marginal_neg_elbo"] = evm["loss"]
        nm = importance_sampled_nll(model, Split(sub.x, None), k=K, progress=False)
        r["marginal_is_nll"], r["marginal_is_se"] = nm.nll, nm.se
        r["sample_class"] = class_accuracy(model)
    if model.name == "hvae":
        with torch.no_grad():
            mu2 = model.bottom_up(test.x)[2]
        r["active_units_z2"] = int((mu2.double().var(0, unbiased=False) > 0.01).sum())
    r["sensitivity"] = {str(s): code_sensitivity(model, test.x[:2000], noise=s) for s in (0.05, 0.1, 0.2)}
    results[run_dir.name] = r
    print(run_dir.name, json.dumps(r), flush=True)

(ROOT / "results.json").write_text(json.dumps(results, indent=2))
print("| model | epochs | train time | test -ELBO | test NLL (IS, k=500, 2000 imgs) | active units | code shift/spread (noise 0.1) |")
print("|---|---|---|---|---|---|---|")
for name, r in results.items():
    print(f"| {name} | {r['epochs']} | {r['train_seconds']:.0f} s | {r['neg_elbo']:.2f} | {r['is_nll']:.2f} ± {r['is_se']:.2f} "
          f"| {r['active_units']} | {r['sensitivity']['0.1']['relative']:.3f} |")
