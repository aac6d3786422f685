"""Reproduce the results of the conditional, hierarchical, full-covariance and adversarially robust
VAEs next to the plain and beta-weighted VAE, and the gradient-estimator variances (the docs'
"Conditional, hierarchical and full-covariance VAEs, AVAE, gradient estimators" tables).

    taskset -c 0 env OMP_NUM_THREADS=1 python benchmarks/conditional_family.py   # ~30 min on one core
    python benchmarks/tables.py --write                                          # the docs' tables

Every run: dynamically binarized MNIST, 10 epochs, batch 128, Adam 1e-3, one thread. Measured with
the library: -ELBO (and its parts) and active units on all 10,000 test images (``vaekit evaluate
RUN --k 0``; a conditional model is scored given the true labels, -log p(x|y), and by its
label-marginal bound of -log p(x)); the importance-sampled -log p(x) with k = 500 on the first
2,000 test images (``vaekit evaluate RUN --k 500 --limit 2000``; labels summed out); the relative
code shift under input noise (``vaekit.models.avae.code_sensitivity``) on the first 2,000 test
images; for conditional models, the fraction of class-conditional samples the shipped MNIST
classifier assigns to the asked class; and ``vaekit gradvar`` on the ``vae`` run. Runs live in
``--runs`` (default ``runs/conditional-family``, not tracked); the numbers go to
``benchmarks/results/conditional-family.json``. Finished runs are skipped (``--redo NAME``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from _reproduce import parse_args, plan, reproduce, summary

EPOCHS = 10
K, LIMIT = 500, 2000  # importance samples per image, test images the NLL is measured on
NOISES = (0.05, 0.1, 0.2)  # input noise levels of the code-sensitivity measurement
GRADVAR = {"run": "vae", "batch_size": 100, "draws": 200}  # vaekit gradvar RUN --batch-size 100 --draws 200
VAE = ["--preset", "pytorch-example", "--binarize", "dynamic"]
RUNS: list[tuple[str, list[str]]] = [  # (run name, vaekit train arguments), trained in this order
    ("vae", [*VAE, "--epochs", str(EPOCHS)]),
    ("beta-0.5", [*VAE, "--beta", "0.5", "--epochs", str(EPOCHS)]),
    ("beta-4", [*VAE, "--beta", "4", "--epochs", str(EPOCHS)]),
    ("cvae", ["--preset", "cvae", "--epochs", str(EPOCHS)]),
    ("hvae", ["--preset", "hvae", "--epochs", str(EPOCHS)]),
    ("fullcov-vae", ["--preset", "fullcov-vae", "--epochs", str(EPOCHS)]),
    ("avae", ["--preset", "avae", "--epochs", str(EPOCHS)]),
]


@torch.no_grad()
def sample_class_accuracy(model: Any, per_class: int = 100) -> dict[str, float]:
    """Fraction of ``per_class`` samples per label that the shipped MNIST classifier assigns to that
    label, at temperatures 1 and 0.5 (a conditional model's ``sample(n, T, label=c)``)."""
    from vaekit.metrics.generation import N_CLASSES, classify

    out = {}
    for t in (1.0, 0.5):
        torch.manual_seed(0)
        x = torch.cat([model.sample(per_class, t, label=c) for c in range(N_CLASSES)])  # (10 n, *S)
        pred = torch.from_numpy(classify(x)[1].argmax(1))
        out[f"T={t}"] = float((pred == torch.arange(N_CLASSES).repeat_interleave(per_class)).double().mean())
    return out


def measure(name: str, run_dir: Path, *, k: int = K, limit: int = LIMIT) -> dict[str, Any]:
    """One run's numbers, all from the library (no model is special-cased by name)."""
    import vaekit
    from vaekit.data.fingerprint import open_run_data
    from vaekit.evaluate import evaluate_run
    from vaekit.models.avae import code_sensitivity

    run = vaekit.load_run(run_dir)
    model = run.model
    full = evaluate_run(run_dir, k=0, progress=False)  # -ELBO, active units: all test images
    nll = evaluate_run(run_dir, k=k, limit=limit, progress=False)["nll"]
    e, lat = full["elbo"], full["latent"]
    out: dict[str, Any] = {**summary(run), "conditional": model.conditional}
    out["evaluation"] = {
        "commands": [f"vaekit evaluate {run_dir} --k 0", f"vaekit evaluate {run_dir} --k {k} --limit {limit}"],
        "n": full["n"], "bound": e["bound"], "loss": e["loss"], "neg_elbo": e["neg_elbo"], "recon": e["recon"],
        "kl": e["kl"], "terms": {key: v for key, v in e.items() if isinstance(v, float)},
        "active_units": lat["active_units"], "latent_dim": lat["latent_dim"], "mi": lat["mi"],
        "nll": nll["value"], "nll_se": nll["se"], "nll_estimate": nll["estimate"], "nll_n": limit, "k": nll["k"],
        "weights": full["weights"]["id"],
    }
    if "elbo_marginal" in full:  # a conditional model given labels: its bound of log p(x) too
        out["evaluation"]["marginal_neg_elbo"] = full["elbo_marginal"]["neg_elbo"]
    test = open_run_data(run).test
    out["sensitivity"] = {str(s): code_sensitivity(model, test.x[:limit], noise=s) for s in NOISES}
    if model.conditional:
        out["sample_class_accuracy"] = sample_class_accuracy(model)
    return out


def gradient_variances(results: dict[str, Any], runs_dir: Path) -> dict[str, Any]:
    """``vaekit gradvar RUN --batch-size B --draws D`` on the GRADVAR run: the test split's first B images."""
    import vaekit
    from vaekit.data.fingerprint import open_run_data
    from vaekit.gradients import gradient_variance

    run = vaekit.load_run(runs_dir / GRADVAR["run"])
    x = open_run_data(run).test.x[: GRADVAR["batch_size"]]
    res = gradient_variance(run.model, x, draws=GRADVAR["draws"], seed=0)
    command = (f"vaekit gradvar {runs_dir / GRADVAR['run']} --batch-size {GRADVAR['batch_size']} "
               f"--draws {GRADVAR['draws']}")
    return {"gradvar": {"run": GRADVAR["run"], "command": command, **res}}


def main() -> None:
    args = parse_args(__doc__, "conditional-family")
    runs, k, limit = plan(RUNS, K, LIMIT, args.smoke)
    about = {"what": "conditional, hierarchical, full-covariance and AVAE next to the (beta-)VAE on MNIST; "
                     "gradient-estimator variances",
             "protocol": {"epochs": EPOCHS, "k": k, "nll_images": limit, "noises": list(NOISES),
                          "gradvar": GRADVAR, "smoke": args.smoke},
             "reproduce": "taskset -c 0 env OMP_NUM_THREADS=1 python benchmarks/conditional_family.py"}
    reproduce("conditional-family", runs, lambda name, d: measure(name, d, k=k, limit=limit), runs_dir=args.runs,
              out=args.out, about=about, redo=set(args.redo), extra=lambda r: gradient_variances(r, args.runs))


if __name__ == "__main__":
    main()
