"""The report's evaluation section: headline numbers with units, KL per dimension as bars, staleness.

Evaluations come from ``RUN/evaluations/`` (:mod:`vaekit.evaluations`). Only those of the run's
current weights are shown as its results; evaluations of earlier weights (before a ``--resume``)
are listed apart under a warning, and the raw JSON is folded away.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import evaluations
from ..evaluate import active_units_text
from .report import esc, fmt


def current_weights_id(run_dir: Path) -> tuple[str | None, str | None]:
    """The hash of the run's current weights, or None and why not."""
    from ..errors import VaekitError
    from ..run import load_run

    try:
        return evaluations.weights_id(load_run(run_dir).model), None
    except (VaekitError, OSError, RuntimeError, ValueError) as err:
        return None, f"the run's weights could not be read ({' '.join(str(err).split())[:200]})"


def evaluation_section(run_dir: Path) -> str:
    """HTML for the Evaluation section of ``run_dir``'s report."""
    reports, notes = evaluations.load_all(run_dir)
    parts = ["<h2>Evaluation</h2>"] + [f'<p class="note">{esc(n)}</p>' for n in notes]
    if not reports:
        parts.append('<p class="note">not evaluated yet: run <code>vaekit evaluate RUN</code> '
                     "(negative ELBO, importance-sampled NLL, latent diagnostics)</p>")
        return "\n".join(parts)
    cur_id, why = current_weights_id(run_dir)
    if why:
        parts.append(f'<p class="note">{esc(why)}</p>')
    current, stale = evaluations.split_current(reports, cur_id)
    if current:
        parts.append(headline(current[0]))
        if len(current) > 1:
            parts.append("<h3>Other settings, same weights</h3>" + settings_table(current[1:]))
    else:
        parts.append('<p class="warn">No evaluation of the current weights: the run changed since '
                     "it was evaluated. Run <code>vaekit evaluate RUN</code> for current numbers.</p>")
    if stale:
        epochs = sorted({str(r.get("weights", {}).get("epoch", "unknown")) for r in stale})
        parts.append(f'<details><summary class="warn">{len(stale)} stale evaluation(s) of earlier weights '
                     f"(epoch {esc(', '.join(epochs))}): not the current model</summary>"
                     f"{settings_table(stale)}</details>")
    raw = json.dumps([{k: v for k, v in r.items() if k != "_file"} for r in current + stale], indent=1)
    parts.append(f"<details><summary>raw evaluation JSON</summary><pre>{esc(raw)}</pre></details>")
    return "\n".join(parts)


def headline(r: dict[str, Any]) -> str:
    """The numbers a reader wants first, each with its unit and what it means."""
    e, rows = r["elbo"], []
    n = f"{r['n']}" + (f" of {r['split_size']}" if r.get("split_size", r["n"]) != r["n"] else "")
    where = f"{r.get('split', '?')} split, {n} examples, seed {r.get('seed')}"
    if e.get("is_bound", True):
        rows.append(("negative ELBO", f"{fmt(e['neg_elbo'])} nats",
                     f"{esc(e.get('bound', 'the bound'))}: reconstruction {fmt(e['recon'])} + KL {fmt(e['kl'])}; "
                     "an upper bound on the NLL, lower is better"))
    else:
        rows.append(("reconstruction loss", fmt(e["recon"]), "an autoencoder: no KL term, no bound"))
    if "elbo_marginal" in r:
        m = r["elbo_marginal"]
        rows.append(("negative ELBO of p(x)", f"{fmt(m['neg_elbo'])} nats", esc(m.get("bound", ""))))
    nll = r.get("nll")
    if nll:
        se = f" ± {fmt(nll['se'])}" if nll.get("se") is not None else ""
        label = (r.get("meaning") or {}).get("label", "")
        rows.append((f"IS NLL (k = {nll['k']})", f"{fmt(nll['value'])}{se} nats",
                     f"{esc(nll.get('estimate', ''))}; ± is the SE over examples. {esc(label)}"))
        if nll.get("bits_per_dim") is not None:
            rows.append(("bits/dim", fmt(nll["bits_per_dim"]), "the NLL / (D ln 2)"))
    cond = r.get("nll_conditional")  # a conditional model on labelled data: -log p(x|y) too
    if cond:
        se = f" ± {fmt(cond['se'])}" if cond.get("se") is not None else ""
        rows.append((f"IS NLL of p(x|y) (k = {cond['k']})", f"{fmt(cond['value'])}{se} nats",
                     f"{esc(cond.get('estimate', ''))}; ± is the SE over examples"))
    lat = r.get("latent")
    if lat:
        per_layer = " in each stochastic layer" if lat.get("active_units_by_layer") else ""
        rows.append(("active units", esc(active_units_text(lat, " / ")),
                     f"dimensions whose posterior mean varies with x{per_layer} "
                     f"(Cov > {fmt(lat['active_threshold'])})"))
        if lat.get("mi") is not None:
            rows.append(("I(x; z)", f"{fmt(lat['mi'])} nats", f"mutual information, at most log N = {fmt(lat['mi_max'])}"))
    body = "".join(f'<tr><td class="k">{esc(a)}</td><td>{b}</td><td class="s">{c}</td></tr>' for a, b, c in rows)
    w = r.get("weights") or {}
    sub = f"{esc(where)} · weights of epoch {esc(w.get('epoch'))} · evaluated {esc(r.get('evaluated_at', '?'))}"
    out = f'<p class="sub">{sub}</p><table class="headline">{body}</table>'
    if lat and lat.get("warning"):
        out += f'<p class="warn">{esc(lat["warning"])}</p>'
    if lat and lat.get("kl_per_dim"):
        out += kl_bars(lat["kl_per_dim"])
    return out


def kl_bars(kl: list[float], collapsed: float = 0.01) -> str:
    """KL(q(z_d|x) || p(z_d)) per dimension, largest first, as an inline SVG bar chart (no script)."""
    order = sorted(range(len(kl)), key=lambda d: -kl[d])
    top = max(max(kl), 1e-9)
    bar_w, gap, h = 18, 4, 120
    width = len(kl) * (bar_w + gap) + 40
    bars = []
    for i, d in enumerate(order):
        v = kl[d]
        bh = max(1.0, h * v / top)
        x = 36 + i * (bar_w + gap)
        colour = "#bbb" if v < collapsed else "#3b7dd8"
        bars.append(f'<rect x="{x}" y="{h - bh + 10:.1f}" width="{bar_w}" height="{bh:.1f}" fill="{colour}">'
                    f"<title>z{d}: {v:.3f} nats</title></rect>"
                    f'<text x="{x + bar_w / 2}" y="{h + 24}" font-size="9" text-anchor="middle">z{d}</text>')
    axis = (f'<text x="2" y="16" font-size="10">{top:.2f}</text><text x="2" y="{h + 10}" font-size="10">0</text>'
            f'<line x1="34" y1="10" x2="34" y2="{h + 10}" stroke="#888"/>')
    n_col = sum(v < collapsed for v in kl)
    caption = (f"KL per latent dimension in nats, largest first ({len(kl) - n_col} used; "
               f"{n_col} collapsed below {collapsed} nats, grey)")
    return (f'<figure><svg role="img" aria-label="KL per dimension" width="{width}" height="{h + 32}" '
            f'xmlns="http://www.w3.org/2000/svg">{axis}{"".join(bars)}</svg>'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def settings_table(reports: list[dict[str, Any]]) -> str:
    """One row per evaluation: its settings, weights and headline numbers."""
    head = "<tr><th>split</th><th>n</th><th>k</th><th>weights (epoch)</th><th>neg. ELBO</th><th>IS NLL</th><th>file</th></tr>"
    rows = []
    for r in reports:
        nll = r.get("nll") or {}
        w = r.get("weights") or {}
        rows.append(f"<tr><td>{esc(r.get('split'))}</td><td>{fmt(r.get('n'))}</td><td>{fmt(nll.get('k', 0))}</td>"
                    f"<td>{esc(w.get('id', 'unknown'))} ({esc(w.get('epoch', '?'))})</td>"
                    f"<td>{fmt(r['elbo']['neg_elbo'])}</td><td>{fmt(nll.get('value'))}</td>"
                    f"<td class=s>{esc(r.get('_file'))}</td></tr>")
    return f'<div class="scroll"><table>{head}{"".join(rows)}</table></div>'
