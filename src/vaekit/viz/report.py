"""One self-contained HTML page per run: config, metrics, every plot, evaluation results.

Images are embedded as base64 ``data:`` URIs and the CSS is inline, so ``RUN/report.html`` can be
mailed or archived on its own, opens offline and needs no JavaScript. Every piece of text that
comes from files (config values, metric names, evaluations) is HTML-escaped.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
from pathlib import Path
from typing import Any

from ..checkpoint import atomic_write_text
from ..errors import VaekitError
from .catalog import PLOTS

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem auto;
max-width:1100px;color:#222;padding:0 1rem;line-height:1.4}
h1{font-size:1.6rem;margin-bottom:.2rem}
h2{font-size:1.25rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem} .sub{color:#666;margin-top:0}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:right;vertical-align:top} th{background:#f4f4f4} td.k,th.k{text-align:left;font-weight:600}
td.s{text-align:left} tr.best td{background:#eef8ee}
.scroll{overflow-x:auto} figure{margin:1rem 0} figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:.9rem} .note{color:#777;font-style:italic}
.warn{color:#a15c00;font-weight:600} table.headline td{font-size:.95rem} h3{font-size:1.05rem}
pre{font-size:.75rem;max-height:24rem;overflow:auto;background:#f8f8f8;padding:.5rem}
.grid{display:flex;flex-wrap:wrap;gap:1rem}
.grid figure{margin:0}
"""


def esc(value: Any) -> str:
    """Escape any value as HTML text."""
    return html.escape(str(value), quote=True)


def fmt(value: Any) -> str:
    """A number as a table shows it; anything else as escaped text."""
    if isinstance(value, bool) or value is None:
        return esc(json.dumps(value))
    if isinstance(value, int):
        return esc(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return esc(value)
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
            return esc(f"{value:.4g}")
        if value.is_integer():  # 1.0 (a beta, a sigma) reads as 1
            return esc(int(value))
        return esc(f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) < 1 else f"{value:.2f}")
    return esc(value)


def render_value(value: Any, depth: int = 0) -> str:
    """Any JSON value as HTML: objects as key/value tables, lists of objects as tables, scalars as text."""
    if depth > 8:  # pathological nesting: show the rest as JSON text
        return f"<code>{esc(json.dumps(value)[:2000])}</code>"
    if isinstance(value, dict):
        if not value:
            return '<span class="note">(empty)</span>'
        rows = "".join(f'<tr><td class="k">{esc(k)}</td><td class="s">{render_value(v, depth + 1)}</td></tr>'
                       for k, v in value.items())
        return f"<table>{rows}</table>"
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value):
            return _records(value, depth)
        if len(value) > 50:
            head = ", ".join(esc(json.dumps(v)) if isinstance(v, (dict, list)) else fmt(v) for v in value[:50])
            return f"[{head}, … {len(value) - 50} more]"
        return "[" + ", ".join(render_value(v, depth + 1) for v in value) + "]"
    return fmt(value)


def _records(rows: list[dict[str, Any]], depth: int = 0, best: int | None = None) -> str:
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    body = []
    for i, r in enumerate(rows):
        cells = "".join(f"<td>{render_value(r[c], depth + 1) if c in r else ''}</td>" for c in cols)
        body.append(f'<tr{" class=best" if i == best else ""}>{cells}</tr>')
    return f'<div class="scroll"><table><tr>{head}</tr>{"".join(body)}</table></div>'


def data_uri(path: Path) -> str:
    """A PNG file as a ``data:image/png;base64,...`` URI."""
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _figure(path: Path, caption: str) -> str:
    from PIL import Image

    try:
        with Image.open(path) as img:
            width, height = img.size
    except (OSError, ValueError) as err:  # a torn or foreign file in the plots folder
        return f'<p class="note">{esc(path.name)} could not be read ({esc(" ".join(str(err).split()))})</p>'
    # Small image grids (8x8 digits) are magnified by a whole factor, with crisp pixels.
    k = max(1, -(-320 // width)) if width < 320 else 1
    style = f' style="width:{width * k}px;image-rendering:pixelated"' if k > 1 else ""
    return (f'<figure><img src="{data_uri(path)}" alt="{esc(path.stem)}" width="{width * k}" '
            f'height="{height * k}"{style}>'
            f"<figcaption><b>{esc(path.stem)}</b> — {esc(caption)}</figcaption></figure>")


def collect_plots(run_dir: Path) -> list[tuple[Path, str]]:
    """The run's pictures, catalogue order first: RUN/plots/*.png, else RUN/samples.png etc."""
    plots = run_dir / "plots"
    found = {p.stem: p for p in sorted(plots.glob("*.png"))} if plots.is_dir() else {}
    for name in ("samples", "reconstructions"):  # what every finished run has at its top level
        if name not in found and (run_dir / f"{name}.png").is_file():
            found[name] = run_dir / f"{name}.png"
    ordered = [(found.pop(n), PLOTS[n][1]) for n in PLOTS if n in found]
    return ordered + [(p, "") for p in found.values()]


def _read_json(path: Path) -> tuple[Any, str | None]:
    try:
        return json.loads(path.read_text(encoding="utf-8", errors="replace")), None
    except (OSError, json.JSONDecodeError) as err:
        return None, f"{path.name} could not be read ({' '.join(str(err).split())})"


def _best_row(rows: list[dict[str, Any]]) -> int | None:
    for key in ("val_loss", "test_loss"):
        scored = [(r[key], i) for i, r in enumerate(rows) if isinstance(r.get(key), (int, float))]
        if scored:
            return min(scored)[1]
    return None


def render_report(run_dir: str | Path, notes: list[str] | None = None) -> str:
    """The report page of a run folder as an HTML string."""
    from ..run import CONFIG, read_metrics

    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).is_file():
        raise VaekitError(f"{run_dir} is not a vaekit run folder (no {CONFIG})")
    config, config_err = _read_json(run_dir / CONFIG)
    rows = read_metrics(run_dir)
    parts = [f"<h1>vaekit run: {esc(run_dir.resolve().name)}</h1>",
             f'<p class="sub">{esc(run_dir.resolve())} · report written '
             f'{esc(_dt.datetime.now().strftime("%Y-%m-%d %H:%M"))}</p>']
    if rows:
        last = rows[-1]
        keys = [k for k in ("train_loss", "trainset_loss", "val_loss", "test_loss") if isinstance(last.get(k), (int, float))]
        summary = ", ".join(f"{k} {fmt(last[k])}" for k in keys)
        parts.append(f"<p>{len(rows)} epochs{' · final ' + summary if summary else ''}</p>")
    from .report_eval import evaluation_section

    parts.append(evaluation_section(run_dir))
    parts.append("<h2>Plots</h2>")
    for note in notes or []:
        parts.append(f'<p class="note">{esc(note)}</p>')
    plots = collect_plots(run_dir)
    none = '<p class="note">no plots yet (run <code>vaekit plot</code>)</p>'
    parts += [_figure(p, c) for p, c in plots] or [none]
    progress = sorted((run_dir / "progress").glob("*.png")) if (run_dir / "progress").is_dir() else []
    if progress:
        figs = "".join(_figure(p, "") for p in progress)
        count = f"{len(progress)} snapshot{'s' if len(progress) != 1 else ''}"
        parts.append(f"<h2>Progress</h2><details><summary>{count} during training</summary>"
                     f'<div class="grid">{figs}</div></details>')
    parts.append("<h2>Metrics per epoch</h2>")
    parts.append(_records(rows, best=_best_row(rows)) if rows else '<p class="note">no metrics yet</p>')
    parts.append("<h2>Config</h2>")
    parts.append(f'<p class="note">{esc(config_err)}</p>' if config_err else render_value(config))
    body = "\n".join(parts)
    title = esc(f"vaekit report: {run_dir.resolve().name}")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n")


def write_report(run_dir: str | Path, out: str | Path | None = None, notes: list[str] | None = None) -> Path:
    """Write ``RUN/report.html`` (or ``out``) atomically and return its path."""
    path = Path(out) if out is not None else Path(run_dir) / "report.html"
    atomic_write_text(path, render_report(run_dir, notes))
    return path


__all__ = ["collect_plots", "data_uri", "render_report", "render_value", "write_report"]
