"""Evaluation: the negative ELBO and its parts, the importance-sampled NLL, posterior diagnostics.

``elbo`` is what the trainer reports every epoch; ``evaluate`` adds the importance-sampled
-log p(x) with its standard errors (:mod:`vaekit.metrics.likelihood`), KL per dimension, active
units and I(x; z) (:mod:`vaekit.metrics.diagnostics`), and labels saying what each number means;
``evaluate_run`` does it for a run folder and saves it in ``RUN/evaluations/`` (keyed by its
settings and tied to the weights it measured, :mod:`vaekit.evaluations`).
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .data import Split
from .models import Model

if TYPE_CHECKING:
    from .metrics.likelihood import NLLResult


@torch.no_grad()
def elbo(
    model: Model,
    split: Split,
    *,
    samples: int = 1,
    batch_size: int = 2048,
    seed: int = 0,
) -> dict[str, float]:
    """Per-datapoint averages of every term (``loss``, ``recon``, ``kl``, extras) over ``split``.

    z is sampled, as the reference tutorials do when they report a test loss. The RNG is forked
    and seeded, so evaluation gives the same numbers every time and never disturbs training.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    totals: dict[str, torch.Tensor] = {}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for start in range(0, len(split), batch_size):
            x = split.x[start : start + batch_size].to(device, non_blocking=True)
            y = None if split.y is None else split.y[start : start + batch_size].to(device)
            terms = model(x, y, samples=samples, reduce=False)
            for name, value in terms.items().items():
                totals[name] = totals.get(name, 0) + value.double().sum()
    model.train(was_training)
    return {name: float(v) / len(split) for name, v in totals.items()}


def objective_label(model: Model, split: Split, samples: int) -> str:
    """What :func:`elbo`'s ``loss`` is for ``model`` on ``split``, in words: the bound, its
    conditioning, the z samples and the number of examples (the ``*_what`` key of metrics rows)."""
    if not model.has_posterior:
        what = "reconstruction loss (an autoencoder: no bound)"
    else:
        given = "log p(x|y), given the labels" if model.conditional and split.y is not None else "log p(x)"
        what = f"training objective on {given} (the negative ELBO when beta = 1)"
    return f"{what}; {samples} z sample(s) per example; mean over {len(split)} examples"


def evaluate(
    model: Model,
    split: Split,
    *,
    k: int = 1000,
    samples: int = 1,
    batch_size: int = 100,
    seed: int = 0,
    discretize: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Everything ``vaekit evaluate`` reports for ``model`` on ``split``, as a JSON-able dict.

    Every number says what it is: ``elbo["bound"]`` names the bound (and for a conditional model
    whether it is of log p(x|y) or of the label-marginal log p(x)), ``nll["estimate"]`` the
    importance-sampled quantity with its k (for a conditional model the label-marginal -log p(x);
    on a split with labels, -log p(x|y) beside it in ``nll_conditional``). ``k = 0`` skips the
    NLL; models without a density (the plain autoencoders) skip it too, with a note in
    ``report["notes"]``.
    """
    from .metrics.diagnostics import collapse_warning, posterior_diagnostics
    from .metrics.discretized import check_quantized, discretized
    from .metrics.likelihood import importance_sampled_nll, meaning

    conditional = model.conditional and split.y is not None
    with discretized(model) if discretize else contextlib.nullcontext():  # same units as the NLL
        # A conditional model with labels: the conditional bound of log p(x|y), what training logs
        # as test_loss; its label-marginal bound of log p(x) is reported beside it.
        terms = elbo(model, split if conditional else Split(split.x, None), samples=samples, seed=seed)
        marginal = elbo(model, Split(split.x, None), samples=samples, seed=seed) if conditional else None
    neg_elbo = terms["recon"] + terms["kl"]  # beta = 1: the bound itself, whatever the training loss
    is_bound = model.has_posterior  # an autoencoder's "recon" is a reconstruction loss, not a bound
    what = "log p(x|y), given the labels" if conditional else "log p(x)"
    report: dict[str, Any] = {
        "n": len(split),
        "seed": seed,
        "discretized": discretize,
        "elbo": {"neg_elbo": neg_elbo, "samples": samples, "is_bound": is_bound,
                 "bound": (f"negative ELBO of {what}, {samples} z sample(s) per example" if is_bound
                           else "reconstruction loss of an autoencoder (no bound)"),
                 "conditional": conditional, **terms},
    }
    if marginal is not None:
        # The bound itself (beta = 1), as neg_elbo above: the loss would carry beta, free bits, capacity.
        report["elbo_marginal"] = {"neg_elbo": marginal["recon"] + marginal["kl"], "samples": samples,
                                   "bound": "negative ELBO of the label-marginal log p(x) (uniform p(y))",
                                   **marginal}
    dims = math.prod(split.x.shape[1:])
    # Streamed splits are read by slices: inspect (up to) the first 8192 examples.
    head = split.x if isinstance(split.x, torch.Tensor) else split.x[:8192]
    if discretize:
        check_quantized(head)
    report["meaning"] = meaning(model.likelihood, head, discretize)
    if k > 0 and not model.has_density:
        report["notes"] = [f"no IS NLL: model '{model.name}' defines no density p(x)"]
    elif k > 0:
        with discretized(model) if discretize else contextlib.nullcontext():
            res = importance_sampled_nll(model, split, k=k, batch_size=batch_size, seed=seed,
                                         progress=progress)
            # Given the labels too (same seed): -log p(x|y), beside the label-marginal -log p(x).
            cond = importance_sampled_nll(model, split, k=k, batch_size=batch_size, seed=seed,
                                          progress=progress, labels=True) if conditional else None
        summed = " (labels summed out)" if model.conditional else ""
        report["nll"] = nll_entry(res, f"-log p(x) by importance sampling, k={res.k}, over {res.n} "
                                       f"examples{summed}", dims, discretize)
        if cond is not None:
            report["nll_conditional"] = nll_entry(
                cond, f"-log p(x|y) by importance sampling, k={cond.k}, over {cond.n} examples, "
                      "given the labels", dims, discretize)
        if notes := looser_than_bound(report):
            report["notes"] = notes
    if model.has_posterior:
        diag = posterior_diagnostics(model, split, seed=seed).to_dict()
        if diag["kl_per_dim"] is None and len(split) > 1:  # no analytic KL per dim: use the ELBO's KL
            # and keep the diagnostics' own warning (a whole layer of a hierarchical model idle) otherwise
            diag["warning"] = collapse_warning(diag["active_units"], terms["kl"]) or diag["warning"]
        report["latent"] = diag
    return report


def looser_than_bound(report: dict[str, Any]) -> list[str]:
    """Notes for an IS estimate above a bound the report also holds. With the ELBO's q as the
    proposal, E[log mean_k w] >= E[log w] (Burda et al. 2015, Theorem 1), so -log p(x) by IS sits at
    or below the negative ELBO; above it by more than 3 MC SE, the k samples are too few for the
    proposal (one that differs from the bound's q, as a cvae's label proposal does, can need more)."""
    pairs = [("nll", "elbo_marginal" if "elbo_marginal" in report else "elbo"), ("nll_conditional", "elbo")]
    notes = []
    for nll_key, bound_key in pairs:
        if nll_key not in report:
            continue
        n, bound = report[nll_key], report[bound_key]["neg_elbo"]
        if n["value"] > bound + 3 * n["mc_se"]:
            notes.append(f"the IS estimate {n['value']:.3f} ({nll_key}) is above the negative ELBO {bound:.3f} "
                         f"({bound_key}), which it should not exceed: k={n['k']} samples are too few here; "
                         "raise --k")
    return notes


def nll_entry(res: NLLResult, estimate: str, dims: int, discretize: bool) -> dict[str, Any]:
    """The report's entry for an :class:`~vaekit.metrics.likelihood.NLLResult`: the value, what
    it estimates (``estimate``), its two standard errors with what each measures, k, ESS, bits/dim."""
    return {
        "value": res.nll,
        "estimate": estimate,
        "se": res.se if math.isfinite(res.se) else None,  # one image: no spread to measure
        "se_kind": "std of the per-image estimates / sqrt(N): the spread over the test images",
        "mc_se": res.mc_se,
        "mc_se_kind": "delta-method Monte-Carlo SE of the mean estimate "
        "(optimistic for heavy-tailed weights)",
        "k": res.k,
        "ess": res.ess,
        "bits_per_dim": res.nll / (dims * math.log(2)) if discretize else None,
    }


def evaluate_run(
    run_dir: str | Path,
    *,
    split: str | None = None,
    limit: int | None = None,
    device: str = "cpu",
    save: bool = True,
    **kwargs: Any,
) -> dict[str, Any]:
    """:func:`evaluate` on a run folder's ``split`` (default test), first ``limit`` examples.

    The report records the weights it measured (``weights``: a parameter hash, epoch, step) and
    when; with ``save`` it is written to ``RUN/evaluations/`` under its settings
    (:mod:`vaekit.evaluations`), never over an evaluation of other settings.
    """
    import datetime as dt

    from . import evaluations
    from .data.fingerprint import open_run_data
    from .errors import VaekitError
    from .locate import is_read_only
    from .run import load_run

    run = load_run(run_dir, device)
    # one warning line if the data changed since training: the numbers would not be the run's
    data = open_run_data(run)
    name, part = data.pick_split(split)
    full = len(part)
    if limit is not None:
        if limit < 1:
            raise VaekitError(f"--limit must be at least 1 (got {limit})")
        part = part.subset(slice(0, limit))
    last = run.metrics[-1] if run.metrics else {}
    report = {"run": str(run.dir), "split": name, "split_size": full, "model": run.config.model.name,
              "likelihood": run.config.model.likelihood, "binarize": run.config.data.binarize,
              "weights": {"id": evaluations.weights_id(run.model), "epoch": last.get("epoch"),
                          "step": last.get("step")},
              "evaluated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              **evaluate(run.model, part, **kwargs)}
    if save and not is_read_only(run.dir):  # never into the package (pretrained:) or the Hub cache
        evaluations.save(run.dir, report)
    return report


def format_report(r: dict[str, Any]) -> str:
    """A readable table of an :func:`evaluate` report."""
    e = r["elbo"]
    of = f" of {r['split_size']}" if r.get("split_size", r["n"]) != r["n"] else ""
    w = r.get("weights") or {}
    at = f"  weights {w['id']} (epoch {w.get('epoch')})" if w.get("id") else ""
    lines = [f"{r.get('run', '')}  split {r.get('split', '?')}  n {r['n']}{of}  seed {r['seed']}{at}", ""]
    row = "  {:<28s} {}".format
    if e.get("is_bound", True):
        label = "negative ELBO" + (" of log p(x|y)" if e.get("conditional") else "")
        lines.append(row(label, f"{e['neg_elbo']:.3f} nats (recon {e['recon']:.3f} + KL {e['kl']:.3f}; "
                                f"{e['samples']} z sample(s))"))
        if "elbo_marginal" in r:
            lines.append(row("negative ELBO of log p(x)", f"{r['elbo_marginal']['neg_elbo']:.3f} nats "
                                                         "(labels summed out, uniform p(y))"))
    else:
        lines.append(row("reconstruction loss", f"{e['recon']:.3f} (an autoencoder: no KL term, no bound)"))
    if abs(e["loss"] - e["neg_elbo"]) > 1e-4 * max(1.0, abs(e["neg_elbo"])):
        lines.append(row("training loss", f"{e['loss']:.3f}"))
    if "nll" in r:
        n = r["nll"]
        lines.append(row(f"IS NLL (k={n['k']})" + (" of p(x)" if e.get("conditional") else ""), nll_line(n)))
        if n["bits_per_dim"] is not None:
            lines.append(row("bits/dim", f"{n['bits_per_dim']:.4f}"))
        if "nll_conditional" in r:
            c = r["nll_conditional"]
            bpd = "" if c["bits_per_dim"] is None else f"; {c['bits_per_dim']:.4f} bits/dim"
            lines.append(row(f"IS NLL (k={c['k']}) of p(x|y)", nll_line(c) + bpd))
    for note in r.get("notes", []):
        lines.append(row("note", note))
    if r.get("meaning"):
        lines.append(row("what these numbers are", r["meaning"]["label"]))
    lat = r.get("latent")
    if lat:
        lines.append(row("active units",
                         f"{active_units_text(lat)} (Cov_x E_q[z_u] > {lat['active_threshold']})"))
        if lat["mi"] is not None:
            lines.append(row("I(x;z)", f"{lat['mi']:.3f} nats (at most log N = {lat['mi_max']:.3f})"))
        if lat["kl_per_dim"] is not None:
            kl = lat["kl_per_dim"]
            order = sorted(range(len(kl)), key=lambda d: -kl[d])
            shown = ", ".join(f"z{d}:{kl[d]:.2f}" for d in order[:12]) + (" ..." if len(kl) > 12 else "")
            lines.append(row("KL per dim (largest first)", shown))
        if lat["warning"]:
            lines.append("")
            lines.append(f"  WARNING: {lat['warning']}")
    return "\n".join(lines)


def active_units_text(lat: dict[str, Any], sep: str = "/") -> str:
    """Active units of a report's ``latent`` entry: "15/50", or per stochastic layer on one line,
    "z1 12/20, z2 3/10", for a model with more than one (z1's count is ``active_units`` itself)."""
    by = lat.get("active_units_by_layer")
    if not by:
        return f"{lat['active_units']}{sep}{lat['latent_dim']}"
    dims = lat["latent_dim_by_layer"]
    return ", ".join(f"{name} {by[name]}{sep}{dims[name]}" for name in by)


def nll_line(n: dict[str, Any]) -> str:
    """The value of an NLL entry of the report, its standard errors and ESS, in one line."""
    se = "" if n["se"] is None else f" +- {n['se']:.3f} (SE over images)"
    return f"{n['value']:.3f}{se}; MC SE {n['mc_se']:.4f}; mean ESS {n['ess']:.1f}/{n['k']}"


__all__ = ["elbo", "evaluate", "evaluate_run", "format_report", "objective_label"]
