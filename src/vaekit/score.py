"""Anomaly scores for table rows: the negative ELBO of each row under a trained run.

``vaekit score RUN --data new.csv -o scores.csv`` encodes the new rows with the layout saved in the
run's config (the training mean/std and category levels, never statistics of the new file), and
writes per row: ``neg_elbo`` = recon + KL, an upper bound on -log p(x) (Kingma & Welling 2014,
eq. 3), the higher the more anomalous; ``recon`` = -E_q[log p(x|z)], the reconstruction error
under the mixed likelihood; ``kl`` = KL(q(z|x) || p(z)). Each is averaged over ``samples``
posterior draws with a fixed seed, so scores are reproducible.

With ``data.missing = "mask"`` a row's recon sums over its observed cells only, so a row with gaps
would look less anomalous for having fewer terms. ``score`` is the number to rank by: ``neg_elbo``
plus, for each missing cell, its expected cost under the model's own reconstruction of the row
(the entropy of p(x_j | z = encode(x)); see ``MixedLikelihood.missing_cost``). A gap thus costs what
a typical value would given the rest of the row, whatever the sign of the Gaussian log-densities;
``score`` equals ``neg_elbo`` for a complete row. ``observed`` counts the row's columns present
(a row with none scores nan).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from .data.tabular import load_table
from .errors import VaekitError
from .registry import LIKELIHOODS
from .run import load_run


def _table_likelihoods() -> str:
    return " or ".join(LIKELIHOODS.names(lambda c: c.table))


@torch.no_grad()
def score_rows(model: torch.nn.Module, x: torch.Tensor, samples: int = 10, seed: int = 0,
               batch_size: int = 1024) -> dict[str, np.ndarray]:
    """Per-row terms (N,) each for a table-trained model: score, neg_elbo, recon, kl (averaged over
    ``samples`` draws of z) and observed (columns present); see the module docstring."""
    # The declared trait, not a name or a class: a table likelihood registered by user code scores too.
    lik = model.likelihood
    if not lik.table:
        raise VaekitError(f"scores are for models trained on a table (model.likelihood = {_table_likelihoods()}; "
                          f"this one is {lik.name})")
    model.eval()
    out: dict[str, list[torch.Tensor]] = {"neg_elbo": [], "recon": [], "kl": [], "gaps": []}
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for i in range(0, len(x), batch_size):
            xb = x[i : i + batch_size]  # (B, D)
            t = model(xb, None, samples=samples, reduce=False)  # terms (B,)
            out["recon"].append(t.recon)
            out["kl"].append(t.kl)
            out["neg_elbo"].append(t.recon + t.kl)  # beta = 1: the bound itself, not the training loss
            out["gaps"].append(lik.missing_cost(model.decode_params(model.encode(xb)), xb))  # (B,)
    res = {k: torch.cat(v) for k, v in out.items()}
    observed = lik.observed(x)  # (N,)
    gaps = res.pop("gaps")
    # A row with no value at all has nothing to be anomalous by: nan, ranked last.
    res["score"] = torch.where(observed > 0, res["neg_elbo"] + gaps, torch.nan)
    res["observed"] = observed
    return {k: v.numpy() for k, v in res.items()}


def score_csv(run_dir: str | Path, data: str | Path, out: str | Path, samples: int = 10, seed: int = 0) -> dict[str, np.ndarray]:
    """Score every row of ``data`` with the run in ``run_dir``; write ``out`` (CSV); return the scores."""
    if samples < 1:
        raise VaekitError(f"--samples must be at least 1 (got {samples})")
    run = load_run(run_dir)
    columns = run.config.model.columns
    if not LIKELIHOODS.lookup(run.config.model.likelihood).table or not columns:
        raise VaekitError(f"{run_dir}: was not trained on a table (data.source=csv); score needs a csv-trained run")
    # The layout is the training table's: if that table changed since, say so (scores still come
    # from the saved layout, but the run may no longer describe the data it is compared with).
    from .data.fingerprint import check_data_fingerprint

    check_data_fingerprint(run.dir, run.config.data, "warn", path=data)
    x = torch.from_numpy(load_table(data, columns))  # (N, D) with the training layout
    scores = score_rows(run.model, x, samples, seed)
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["line", "score", "neg_elbo", "recon", "kl", "observed"])
        for i in range(len(x)):  # line: the row's line in the input file (header = line 1)
            w.writerow([i + 2, *(f"{scores[k][i]:.6g}" for k in ("score", "neg_elbo", "recon", "kl")), int(scores["observed"][i])])
    return scores
