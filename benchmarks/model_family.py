"""Reproduce the model-family results on MNIST: the VAE variants and the autoencoders at equal,
short CPU budgets (the docs' "Results on MNIST (short CPU runs)" tables).

    taskset -c 0 env OMP_NUM_THREADS=1 python benchmarks/model_family.py     # ~35 min on one core
    python benchmarks/tables.py --write                                      # the docs' tables

VAE family: dynamically binarized MNIST, MLP 784-200-200-50 tanh (the ``iwae-paper-vae`` net),
batch 100, Adam 1e-3 with cosine decay, 5 epochs (3,000 steps); the VampPrior also on relu
784-300-300-40 (its own preset), where it does not collapse. Measured with ``vaekit evaluate RUN
--k 1000 --limit 2000``: importance-sampled NLL on the first 2,000 test images, -ELBO, KL and active
units on the same images. Autoencoders (models without a density): continuous MNIST, 2 epochs;
the reconstruction error of E[x | z = encode(x)] on all 10,000 test images
(``vaekit.metrics.probes.reconstruction_errors``) and the regulariser's test value from the run's
last metrics row. Runs live in ``--runs`` (default ``runs/model-family``, not tracked); the numbers
go to ``benchmarks/results/model-family.json``. Finished runs are skipped (``--redo NAME`` to redo).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from _reproduce import parse_args, plan, reproduce, summary

VAE_EPOCHS = 5  # 600 optimiser steps per epoch at batch 100: 3,000 steps
AE_EPOCHS = 2
K, LIMIT = 1000, 2000  # importance samples per image, test images the NLL is measured on
TANH = ["--set", "model.hidden=[200, 200]", "--set", "model.latent_dim=50", "--set", "model.activation=tanh"]
RUNS: list[tuple[str, list[str]]] = [  # (run name, vaekit train arguments), trained in this order
    ("vae", ["--preset", "iwae-paper-vae", "--epochs", str(VAE_EPOCHS), "--set", "train.eval_every=0"]),
    ("warmup-lin", ["--preset", "warmup-vae", "--epochs", str(VAE_EPOCHS), "--set", "train.eval_every=0",
                    "--set", 'model.options={schedule="linear", steps=1500}']),
    ("warmup-cyc", ["--preset", "warmup-vae", "--epochs", str(VAE_EPOCHS), "--set", "train.eval_every=0",
                    "--set", 'model.options={schedule="cyclical", steps=750, ratio=0.5, cycles=4}']),
    ("freebits", ["--preset", "freebits-vae", "--epochs", str(VAE_EPOCHS), "--set", "train.eval_every=0"]),
    ("capacity", ["--preset", "capacity-vae", "--epochs", str(VAE_EPOCHS), "--set", "train.eval_every=0",
                  "--set", "model.options={gamma=100.0, c_max=25.0, steps=2400}"]),
    ("iwae-k5", ["--preset", "iwae", "--epochs", str(VAE_EPOCHS), "--set", "train.eval_every=0"]),
    # The VampPrior on the tanh 200-200-50 net collapses (KL -> 0) with and without warm-up
    # (steps=1: none); on relu 300-300-40 (Tomczak & Welling's sizes, the vamp preset) it learns.
    ("vamp", ["--preset", "vamp", "--epochs", str(VAE_EPOCHS), "--set", "train.eval_every=0", *TANH,
              "--set", "model.options={pseudo_inputs=500, steps=1}"]),
    ("vamp-warmup", ["--preset", "vamp", "--epochs", str(VAE_EPOCHS), "--set", "train.eval_every=0", *TANH,
                     "--set", 'model.options={pseudo_inputs=500, schedule="linear", steps=1500}']),
    ("vamp-relu", ["--preset", "vamp", "--epochs", str(VAE_EPOCHS), "--set", "train.eval_every=0",
                   "--set", 'model.options={pseudo_inputs=500, schedule="linear", steps=1500}']),
    # IWAE k = 50 (~150 s per epoch at one thread) does not fit the budget.
    ("ae", ["--preset", "cae", "--model", "ae", "--set", "model.options={}", "--epochs", str(AE_EPOCHS),
            "--set", "train.eval_every=0"]),
    ("dae", ["--preset", "dae", "--epochs", str(AE_EPOCHS), "--set", "train.eval_every=0"]),
    ("sparse-ae", ["--preset", "sparse-ae", "--epochs", str(AE_EPOCHS), "--set", "train.eval_every=0"]),
    ("cae", ["--preset", "cae", "--epochs", str(AE_EPOCHS), "--set", "train.eval_every=0"]),
]
PUBLISHED = {  # test NLL in nats the papers report for the same net family (IS, k = 5000, all test images)
    "vae": {"nll": "86.76", "source": "Burda et al. 2015, table 1: VAE, 1 stochastic layer, k = 1"},
    "iwae-k5": {"nll": "85.54 (k=5)", "source": "Burda et al. 2015, table 1: IWAE, 1 stochastic layer, k = 5"},
    "vamp-relu": {"nll": "85.57", "source": "Tomczak & Welling 2018, table 2: VampPrior, one layer"},
}


def measure(name: str, run_dir: Path, *, k: int = K, limit: int = LIMIT) -> dict[str, Any]:
    """The run's numbers: for a model with a density, what ``vaekit evaluate --k K --limit N``
    reports; for the rest (autoencoders), reconstruction errors on the whole test split."""
    import vaekit
    from vaekit.data.fingerprint import open_run_data
    from vaekit.evaluate import evaluate_run
    from vaekit.metrics.probes import reconstruction_errors

    run = vaekit.load_run(run_dir)
    out: dict[str, Any] = {**summary(run), "has_density": run.model.has_density}
    if name in PUBLISHED:
        out["published"] = PUBLISHED[name]
    if run.model.has_density:
        ev = evaluate_run(run_dir, k=k, limit=limit, progress=False)
        nll, elbo, lat = ev["nll"], ev["elbo"], ev["latent"]
        out["evaluation"] = {
            "command": f"vaekit evaluate {run_dir} --k {k} --limit {limit}", "n": ev["n"],
            "nll": nll["value"], "nll_se": nll["se"], "k": nll["k"], "ess": nll["ess"],
            "neg_elbo": elbo["neg_elbo"], "recon": elbo["recon"], "kl": elbo["kl"],
            "active_units": lat["active_units"], "latent_dim": lat["latent_dim"], "mi": lat["mi"],
            "weights": ev["weights"]["id"],
        }
        return out
    test = open_run_data(run).test
    with torch.no_grad():
        recon = torch.cat([run.model.reconstruct(test.x[i : i + 2000]) for i in range(0, len(test), 2000)])
    last = run.metrics[-1]
    # The regulariser's value on the test set: the test_* terms of the last row beyond loss/recon/kl.
    penalty = {key[5:]: v for key, v in last.items()
               if key.startswith("test_") and key[5:] not in ("loss", "recon", "kl", "what")}
    out["evaluation"] = {"n": len(test), **reconstruction_errors(test.x, recon), "penalty": penalty}
    return out


def main() -> None:
    args = parse_args(__doc__, "model-family")
    runs, k, limit = plan(RUNS, K, LIMIT, args.smoke)
    about = {"what": "VAE variants and autoencoders on MNIST at equal short budgets",
             "protocol": {"vae_epochs": VAE_EPOCHS, "ae_epochs": AE_EPOCHS, "k": k, "nll_images": limit,
                          "smoke": args.smoke},
             "reproduce": "taskset -c 0 env OMP_NUM_THREADS=1 python benchmarks/model_family.py"}
    reproduce("model-family", runs, lambda name, d: measure(name, d, k=k, limit=limit), runs_dir=args.runs,
              out=args.out, about=about, redo=set(args.redo))


if __name__ == "__main__":
    main()
