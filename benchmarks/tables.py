"""The docs' generated tables, made from the committed results in ``benchmarks/results/``.

    python benchmarks/tables.py            # print every table
    python benchmarks/tables.py --write    # replace each table between its markers

The speed table (between ``<!-- speed-table:start ... -->`` and ``<!-- speed-table:end -->``) reads
the timing JSONs. Two formats are read: the alternating method (``"method": "alternating"``:
medians over rounds, the ratio of medians with its range over rounds) and the older
one-run-per-method files (labelled so). The result tables sit between
``<!-- table:NAME:start -->`` and ``<!-- table:NAME:end -->`` (NAME in :data:`BLOCKS`), in whichever
Markdown file (README.md or docs/**/*.md) holds the markers; each is rendered from the JSON file(s)
its reproduction wrote (``benchmarks/model_family.py``, ``benchmarks/conditional_family.py``,
``benchmarks/seeds_conv.py``, and ``benchmarks/collect_run.py`` for documented ``vaekit`` commands).

``tests/test_speed_tables.py`` and ``tests/test_result_tables.py`` fail when a table in the docs
differs from what this script makes, so a number cannot drift from the JSON it rests on.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
REPO = HERE.parent
README = REPO / "docs" / "results.md"  # where the speed table lives today (found by its markers)
START, END = "<!-- speed-table:start (benchmarks/tables.py) -->", "<!-- speed-table:end -->"
SOURCES = [  # (file, model, competitors shown, vaekit's method name, command that makes the file)
    ("mlp.json", "MLP 784-400-20 (60k)", ["reference", "pythae", "floor"], "vaekit",
     "python benchmarks/bench_mlp.py --threads 2 --out benchmarks/results/mlp.json"),
    ("conv.json", "Conv VAE (70k)", ["keras"], "vaekit",
     "python benchmarks/bench_conv.py --threads 2 --out benchmarks/results/conv.json"),
    ("conv-1thread.json", "Conv VAE (70k)", ["keras"], "vaekit",
     "taskset -c 0 python benchmarks/bench_conv.py --threads 1 --out benchmarks/results/conv-1thread.json"),
]
NAMES = {"reference": "pytorch/examples-style loop", "pythae": "Pythae `TrainingPipeline`",
         "floor": "matrix-math floor (lower bound)", "keras": "Keras / TensorFlow, the keras.io example"}


def _loss(theirs: dict, ours: dict) -> str:
    if "loss" not in theirs or "loss" not in ours:
        return "-"
    t, o = theirs["loss"], ours["loss"]
    return f"{t['mean']:.2f} ± {t['sd']:.2f} vs {o['mean']:.2f} ± {o['sd']:.2f}"


def _alternating_rows(model: str, d: dict, others: list[str], ours: str) -> list[str]:
    st, summ = d["settings"], d["summary"]
    v = summ[ours]
    if st.get("images"):  # the model's name carries the data size actually used
        model = f"{model.split(' (')[0]} ({st['images'] // 1000}k)"
    how = (f"alternating, {st['rounds']} rounds x {st['epochs']} epochs, "
           f"load {st['machine_before']['loadavg'][0]:.1f}")
    rows = []
    for name in others:
        if name not in summ:
            continue
        o, sp = summ[name], summ[name]["vaekit_speedup"]
        verdict = "faster" if sp["median"] >= 1 else "slower"
        cpu = o.get("vaekit_speedup_cpu")
        how_row = how + (f"; CPU-time ratio {cpu['median']:.2f}×" if cpu else "")
        lo, hi = sp["range"]
        if name == "floor":  # a lower bound: shown as vaekit's time over the floor's, range inverted alike
            shown, lo, hi = f"{1 / sp['median']:.2f}× the floor's time", 1 / hi, 1 / lo
        else:
            shown = f"**{sp['median']:.2f}× {verdict}**"
        rows.append(
            f"| {model} | {st['threads']} | {NAMES.get(name, name)} | {o['seconds']['median']:.2f} "
            f"({o['seconds']['best']:.2f}–{o['seconds']['worst']:.2f}) | {v['seconds']['median']:.2f} "
            f"({v['seconds']['best']:.2f}–{v['seconds']['worst']:.2f}) | {shown} "
            f"({lo:.2f}–{hi:.2f}) | {_loss(o, v)} | {how_row} |")
    return rows


def _median(xs: list[float]) -> float:
    xs = sorted(xs[1:] or xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def _single_run_rows(model: str, d: dict, others: list[str], ours: str) -> list[str]:
    st, res = d["settings"], d["results"]
    ours_s = _median(res[ours]["seconds"])
    how = f"one run per method (not alternated), {st['epochs']} epochs"
    rows = []
    for name in others:
        if name not in res:
            continue
        s = _median(res[name]["seconds"])
        r = s / ours_s
        loss = "-" if res[name].get("test_loss") is None else f"test {res[name]['test_loss']:.2f} vs {res[ours]['test_loss']:.2f}"
        verdict = "faster" if r >= 1 else "slower"
        shown = f"{1 / r:.2f}× the floor's time" if name == "floor" else f"**{r:.2f}× {verdict}**"
        rows.append(f"| {model} | {st['threads']} | {NAMES.get(name, name)} | {s:.2f} | {ours_s:.2f} | {shown} | "
                    f"{loss} | {how} |")
    return rows


def render(results: Path = RESULTS) -> str:
    lines = ["| model | threads | against | its s/epoch: median (best–worst) | vaekit s/epoch | vaekit is (range over rounds) "
             "| loss: theirs vs vaekit | how measured |", "|---|---|---|---|---|---|---|---|"]
    for file, model, others, ours, command in SOURCES:
        path = results / file
        if not path.is_file():
            lines.append(f"| {model} | – | {', '.join(NAMES[o] for o in others)} | – | – | not measured yet | – | "
                         f"`{command}` |")
            continue
        d = json.loads(path.read_text())
        rows = _alternating_rows if d.get("method") == "alternating" else _single_run_rows
        lines += rows(model, d, others, ours)
    return "\n".join(lines)


def readme_table(text: str) -> str:
    """The text between the markers in ``text`` (docs/results.md), stripped."""
    if START not in text or END not in text:
        raise ValueError(f"{README.name} lacks the markers {START} ... {END}")
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def write(readme: Path | None = None) -> Path:
    """Replace the speed table in ``readme`` (default: the Markdown file that holds its markers)."""
    path = readme or holder(START, END)
    path.write_text(replace_block(path.read_text(), START, END, render()))
    return path


# ---- the result tables: model family, conditional family --------------------------------------


def markers(name: str) -> tuple[str, str]:
    """The start and end markers of the generated block ``name``."""
    return f"<!-- table:{name}:start -->", f"<!-- table:{name}:end -->"


def doc_files(root: Path = REPO) -> list[Path]:
    """The Markdown files a generated table may live in: README.md and docs/**/*.md."""
    files = [root / "README.md"] if (root / "README.md").is_file() else []
    return files + sorted((root / "docs").rglob("*.md"))


def holder(start: str, end: str, root: Path = REPO) -> Path:
    """The one Markdown file under ``root`` holding ``start`` ... ``end``; an error when none or several do."""
    found = [f for f in doc_files(root) if start in (text := f.read_text()) and end in text]
    if len(found) != 1:
        where = ", ".join(str(f.relative_to(root)) for f in found) or "no file"
        raise ValueError(f"{start} ... {end} must be in exactly one of README.md, docs/**/*.md (found in {where})")
    return found[0]


def _indent(text: str, start: str) -> str:
    """The whitespace before ``start`` on its line (a table inside a list item is indented)."""
    line = text.split(start, 1)[0].rsplit("\n", 1)[-1]
    return line if not line.strip() else ""


def block_text(text: str, start: str, end: str) -> str:
    """The block between the markers in ``text``, without the marker line's indentation, stripped."""
    if start not in text or end not in text:
        raise ValueError(f"the text lacks the markers {start} ... {end}")
    pad = _indent(text, start)
    inner = text.split(start, 1)[1].split(end, 1)[0]
    return "\n".join(line[len(pad):] if line.startswith(pad) else line for line in inner.splitlines()).strip()


def replace_block(text: str, start: str, end: str, body: str) -> str:
    """``text`` with the block between the markers replaced by ``body``, indented as the start marker."""
    pad = _indent(text, start)
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    lines = "\n".join(pad + line if line else "" for line in body.splitlines())
    return f"{head}{start}\n{lines}\n{pad}{end}{tail}"


def _num(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    return v if isinstance(v, str) else json.dumps(v)


def describe(cfg: dict[str, Any], base: dict[str, Any] | None = None) -> str:
    """A run's model and options as config.json has them; the net (bold) when it differs from ``base``'s."""
    parts = [f"`{cfg['model']}`"] + [f"{k} {_num(v)}" for k, v in cfg["options"].items()]
    if cfg.get("beta", 1.0) != 1.0:
        parts.append(f"β = {_num(cfg['beta'])}")
    net = lambda c: (c["arch"], c["hidden"], c["latent_dim"], c["activation"])  # noqa: E731
    if base is not None and net(cfg) != net(base):
        parts.append(f"**{cfg['activation']} {'-'.join(str(h) for h in cfg['hidden'])}-{cfg['latent_dim']}**")
    return ", ".join(parts)


def _time(r: dict[str, Any]) -> str:
    """Training wall time (the sum of the epochs, evaluation excluded) and the CPU time beside it:
    on a shared core the wall time stretches with the load, the CPU time much less."""
    return f"{r['train_seconds']:.0f} s (CPU {r['train_cpu_seconds']:.0f} s)"


def render_family(d: dict[str, Any]) -> str:
    """The VAE variants: IS NLL, -ELBO, KL, active units, budget, the published NLL."""
    runs = [(n, r) for n, r in d["runs"].items() if r["has_density"]]
    k = runs[0][1]["evaluation"]["k"] if runs else d["protocol"]["k"]
    lines = [f"| run | model, options | test NLL (IS, k={k}) | test -ELBO | KL | active units | epochs | train time "
             "| published NLL |", "|---|---|---|---|---|---|---|---|---|"]
    base = runs[0][1]["config"] if runs else None
    for name, r in runs:
        e = r["evaluation"]
        lines.append(f"| {name} | {describe(r['config'], base)} | {e['nll']:.2f} ± {e['nll_se']:.2f} | "
                     f"{e['neg_elbo']:.2f} | {e['kl']:.2f} | {e['active_units']}/{e['latent_dim']} | {r['epochs']} | "
                     f"{_time(r)} | {r.get('published', {}).get('nll', '—')} |")
    return "\n".join(lines)


def render_autoencoders(d: dict[str, Any]) -> str:
    """The models without a density: reconstruction errors and the regulariser's test value."""
    runs = [(n, r) for n, r in d["runs"].items() if not r["has_density"]]
    lines = ["| run | model, options | test BCE / image (nats) | test squared error / image | penalty on test | epochs "
             "| train time |", "|---|---|---|---|---|---|---|"]
    base = runs[0][1]["config"] if runs else None
    for name, r in runs:
        e = r["evaluation"]
        pen = ", ".join(f"{k} {v:.3f}" for k, v in e["penalty"].items()) or "—"
        lines.append(f"| {name} | {describe(r['config'], base)} | {e['bce']:.2f} | {e['mse']:.2f} | {pen} | "
                     f"{r['epochs']} | {_time(r)} |")
    return "\n".join(lines)


def _label(name: str, r: dict[str, Any]) -> str:
    """Run name, model and options (config.json), then the train arguments (the epochs have a column)."""
    args = [a for i, a in enumerate(r["args"]) if a != "--epochs" and (i == 0 or r["args"][i - 1] != "--epochs")]
    return f"{name}: {describe(r['config'])} (`{' '.join(args)}`)"


def render_conditional(d: dict[str, Any]) -> str:
    """-ELBO, IS NLL, active units and budget of each run; a conditional model gets two rows: its
    label-marginal bound of -log p(x) (comparable with the rest) and its bound given the label."""
    lines = ["| model (preset) | latent | test −ELBO | test NLL (IS) | active units | epochs | training time |",
             "|---|---|---|---|---|---|---|"]
    for name, r in d["runs"].items():
        e = r["evaluation"]
        nll = f"{e['nll']:.2f} ± {e['nll_se']:.2f}"
        units, budget = f"{e['active_units']}/{e['latent_dim']}", f"{r['epochs']} | {_time(r)}"
        bound = f"{e['neg_elbo']:.2f}"
        if abs(e["loss"] - e["neg_elbo"]) > 1e-6 * abs(e["neg_elbo"]):  # beta != 1 or an extra term
            bound += f" (training loss {e['loss']:.2f})"
        if r["conditional"]:
            lines.append(f"| {_label(name, r)}, label-marginal −log p(x) | {e['latent_dim']} | "
                         f"{e['marginal_neg_elbo']:.2f} | {nll} | {units} | {budget} |")
            lines.append(f"| {name}, given the label: −log p(x\\|y) | {e['latent_dim']} | {bound} | — | {units} | "
                         f"{r['epochs']} | (same run) |")
        else:
            lines.append(f"| {_label(name, r)} | {e['latent_dim']} | {bound} | {nll} | {units} | {budget} |")
    return "\n".join(lines)


def render_sensitivity(d: dict[str, Any]) -> str:
    """Relative code shift (mean shift / mean spread of codes) per input-noise level and run."""
    runs = [(n + (" (label inferred)" if r["conditional"] else ""), r) for n, r in d["runs"].items()]
    lines = ["| input noise s | " + " | ".join(n for n, _ in runs) + " |", "|---" * (len(runs) + 1) + "|"]
    for s in d["protocol"]["noises"]:
        lines.append(f"| {s:g} | " + " | ".join(f"{r['sensitivity'][str(s)]['relative']:.3f}" for _, r in runs) + " |")
    return "\n".join(lines)


def render_gradvar(d: dict[str, Any]) -> str:
    """Variance of one-draw encoder gradients of the ELBO, per estimator."""
    g = d["extra"]["gradvar"]
    lines = [f"On the trained `{g['run']}` run ({g['parameters']:,} encoder parameters, {g['batch']} test images, "
             f"{g['draws']} draws; `{g['command']}`):", "",
             "| estimator | mean per-parameter variance | ratio to reparameterised |", "|---|---|---|",
             f"| reparameterised (z = μ + σε) | {g['reparam']['variance']:.3g} | 1 |",
             f"| score function (REINFORCE) | {g['score']['variance']:.3g} | {g['ratio_score']:.0f} |",
             f"| score function − baseline log p(x \\| z = μ) | {g['score-baseline']['variance']:.3g} | "
             f"{g['ratio_score-baseline']:.0f} |"]
    return "\n".join(lines)


# ---- documented CLI runs (benchmarks/collect_run.py) and the keras-conv seed study ----------------

PAPER_VAE = {"nll": 86.76, "epochs": 3280, "batch": 20}  # Burda et al. 2015, Table 1 (VAE, k = 1) and §5


def _process(p: dict[str, Any]) -> float:
    """CPU seconds of a process timed by ``/usr/bin/time`` (user + system)."""
    return p["user"] + p["sys"]


def _spread(s: dict[str, Any]) -> str:
    return f"{s['mean']:.2f} ± {s['sd']:.2f} over {s['runs']} seeds ({s['min']:.2f}–{s['max']:.2f})"


def render_classic(pt: dict[str, Any], seeds: dict[str, Any]) -> str:
    """The two classic VAEs: the pytorch-example run's test -ELBO; the keras-conv seed study's band."""
    e, s = pt["evaluation"]["elbo"], seeds["summary"]
    target = seeds["settings"]["target"]
    hits = s["vaekit"]["at_or_below_target"] + s["keras"]["at_or_below_target"]
    return "\n".join([
        "| preset | what it reproduces | reference | vaekit |", "|---|---|---|---|",
        f"| `pytorch-example` | PyTorch examples MLP VAE 784-400-20, BCE + analytic KL, Adam 1e-3, batch 128, "
        f"{pt['epochs']} epochs | test loss ~105.6 | **{e['neg_elbo']:.2f}** (recon {e['recon']:.2f} + KL "
        f"{e['kl']:.2f}), seed {pt['evaluation']['seed']} |",
        f"| `keras-conv` | Keras conv VAE, 2-D latent, all 70k images, {seeds['settings']['epochs']} epochs | loss "
        "146.95 = 140.15 + 6.80 (one keras.io run; the page's Keras 3 re-run printed 150.40); **the same Keras "
        f"code here: {_spread(s['keras'])}** | **{_spread(s['vaekit'])}**; target ≤ {target:g} reached by "
        f"{'no' if hits == 0 else hits} run{'s' if hits > 1 else ''} of either library here |"])


def render_keras_seeds(seeds: dict[str, Any]) -> str:
    """Each 30-epoch run of the study, both libraries side by side by seed, the best in bold."""
    res, s, target = seeds["results"], seeds["summary"], seeds["settings"]["target"]
    by = {lib: {r["seed"]: r for r in res[lib]} for lib in ("vaekit", "keras")}
    best = {lib: min(r["loss"] for r in res[lib]) for lib in by}

    def cells(lib: str, seed: int) -> list[str]:
        r = by[lib].get(seed)
        if r is None:
            return ["", ""]
        loss = f"{r['loss']:.2f}"
        return [f"{f'**{loss}**' if r['loss'] == best[lib] else loss} ({r['recon']:.2f} + {r['kl']:.2f})",
                f"{r['final_model_loss']:.2f}"]

    lines = ["| seed | vaekit epoch 30 (recon + KL) | vaekit final model | Keras epoch 30 (recon + KL) | Keras final model |",
             "|---|---|---|---|---|"]
    for seed in sorted(set(by["vaekit"]) | set(by["keras"])):
        lines.append(f"| {seed} | " + " | ".join(cells("vaekit", seed) + cells("keras", seed)) + " |")
    final = {lib: [r["final_model_loss"] for r in res[lib]] for lib in by}
    mean = {lib: sum(v) / len(v) for lib, v in final.items()}
    lines.append(f"| **mean ± sd** | **{s['vaekit']['mean']:.2f} ± {s['vaekit']['sd']:.2f}** ({s['vaekit']['runs']} runs) "
                 f"| {mean['vaekit']:.2f} | **{s['keras']['mean']:.2f} ± {s['keras']['sd']:.2f}** ({s['keras']['runs']} "
                 f"runs) | {mean['keras']:.2f} |")
    under = {lib: sum(x <= target for x in v) for lib, v in final.items()}
    lines.append(f"| **≤ {target:g}** | {s['vaekit']['at_or_below_target']} of {s['vaekit']['runs']} | "
                 f"{under['vaekit']} of {len(final['vaekit'])} | {s['keras']['at_or_below_target']} of "
                 f"{s['keras']['runs']} | {under['keras']} of {len(final['keras'])} |")
    return "\n".join(lines)


def render_iwae_paper(d: dict[str, Any]) -> str:
    """The published protocol: the paper's figure beside the preset's run, and what the gap is."""
    ev, p = d["evaluation"], PAPER_VAE
    n, k, elbo, lat = ev["nll"], ev["nll"]["k"], ev["elbo"], ev["latent"]
    cfg, threads = d["config"], d["made"]["threads"]
    train_wall, eval_wall = d["train_process"]["wall"] / 60, d["evaluate_process"]["wall"] / 60
    return "\n".join([
        "| binarized MNIST test set, VAE k = 1 (784-200-200-50) | −log p(x), nats (IS, k = 5000) | epochs | training |",
        "|---|---:|---:|---|",
        f"| Burda et al. 2015, Table 1 | {p['nll']} | {p['epochs']:,} | batch {p['batch']}, lr decayed over 8 stages |",
        f"| vaekit `iwae-paper-vae` | **{n['value']:.2f} ± {n['se']:.2f}** (SE over the {ev['n']:,} test images; "
        f"MC SE {n['mc_se']:.3f}) | {d['epochs']} | {d['train_cpu_seconds']:.0f} s CPU, {threads} thread |",
        "",
        f"The honest gap is **{n['value'] - p['nll']:.1f} nats**, from training {p['epochs'] / d['epochs']:.0f}x fewer "
        f"epochs (at {cfg['batch_size'] // p['batch']}x fewer steps per epoch); the same model's negative ELBO is "
        f"{elbo['neg_elbo']:.2f}, so importance sampling tightens the bound by {elbo['neg_elbo'] - n['value']:.1f} nats. "
        f"{lat['active_units']} of the {lat['latent_dim']} latent units are active. At one thread, training took "
        f"{d['train_cpu_seconds']:.0f} s of CPU time ({train_wall:.0f} min wall on a shared machine); `vaekit evaluate "
        f"--k {k}` on the {ev['n']:,} test images ({ev['n'] * k:,} decoder passes) took "
        f"{_process(d['evaluate_process']):.0f} s of CPU time ({eval_wall:.0f} min wall) and gave {n['value']:.3f} "
        "(`benchmarks/results/iwae-paper-vae.json`)."])


def render_iwae_full(d: dict[str, Any]) -> str:
    """The full protocol's final weights, evaluated as the paper does, against the paper and the target."""
    ev, p = d["evaluation"], PAPER_VAE
    n, k = ev["nll"], ev["nll"]["k"]
    target = p["nll"] + 0.5
    verdict = "within" if n["value"] <= target else "outside"
    return "\n".join([
        "| binarized MNIST test set, VAE k = 1 (784-200-200-50) | −log p(x), nats (IS, k = 5000) | epochs | training |",
        "|---|---:|---:|---|",
        f"| Burda et al. 2015, Table 1 | {p['nll']} | {p['epochs']:,} | batch {p['batch']}, lr decayed over 8 stages |",
        f"| vaekit `iwae-paper-vae-full` | **{n['value']:.2f} ± {n['se']:.2f}** (SE over the {ev['n']:,} test images; "
        f"MC SE {n['mc_se']:.3f}) | {d['epochs']:,} | {d['train_cpu_seconds'] / 3600:.1f} CPU-hours, 1 thread |",
        "",
        f"{n['value'] - p['nll']:+.2f} nats from the paper: {verdict} the 0.5-nat target ({target:.2f}). The final "
        f"negative ELBO is {ev['elbo']['neg_elbo']:.2f}; {ev['latent']['active_units']} of the "
        f"{ev['latent']['latent_dim']} latent units are active. `vaekit evaluate --k {k}` took "
        f"{_process(d['evaluate_process']) / 60:.0f} min of CPU time. The training CPU-hours add up sessions on "
        "different machines (`metrics.jsonl` keeps each epoch's). The weights ship as "
        "`pretrained:iwae-paper-vae-full` (`benchmarks/results/iwae-paper-vae-full.json`)."])


def render_iwae_report(d: dict[str, Any]) -> str:
    """What ``vaekit evaluate runs/iwae-paper-vae --k 5000`` printed, from the report it saved."""
    from vaekit.evaluate import format_report

    ev = {**d["evaluation"], "run": "runs/iwae-paper-vae"}  # the documented run folder, not where it ran
    return "\n".join(["```text", f"$ vaekit evaluate runs/iwae-paper-vae --k {ev['nll']['k']}", format_report(ev), "```"])


COMPARE_COLUMNS = [("mse", "MSE / image", 2), ("mse_pixel", "MSE / pixel", 4), ("bce", "BCE / image", 2),
                   ("probe", "linear probe", 4), ("knn", "kNN acc. (k=5)", 4), ("fid", "FID ↓", 2), ("is", "IS ↑", 2)]


def render_compare(d: dict[str, Any]) -> str:
    """``vaekit compare``'s table (comparison.json) and how long the command took."""
    lines = ["| model | " + " | ".join(title for _, title, _ in COMPARE_COLUMNS) + " |",
             "|---|" + "---:|" * len(COMPARE_COLUMNS)]
    for row in d["comparison"]["rows"]:
        cells = ["—" if row.get(key) is None else f"{row[key]:.{dp}f}" for key, _, dp in COMPARE_COLUMNS]
        lines.append(f"| {row['model']} | " + " | ".join(cells) + " |")
    p = d["compare_process"]
    lines += ["", f"The command took {p['wall'] / 60:.1f} min wall ({_process(p) / 60:.1f} min of CPU time) at one "
                  "thread on a shared 2-core machine (`benchmarks/results/compare-mnist.json`)."]
    return "\n".join(lines)


BLOCKS: dict[str, tuple[str | tuple[str, ...], Callable[..., str]]] = {  # marker name: (results file(s), renderer)
    "family-results": ("model-family.json", render_family),
    "family-autoencoders": ("model-family.json", render_autoencoders),
    "conditional-results": ("conditional-family.json", render_conditional),
    "conditional-sensitivity": ("conditional-family.json", render_sensitivity),
    "conditional-gradvar": ("conditional-family.json", render_gradvar),
    "classic-vaes": (("pytorch-example.json", "conv-seeds.json"), render_classic),
    "keras-conv-seeds": ("conv-seeds.json", render_keras_seeds),
    "iwae-paper-vae": ("iwae-paper-vae.json", render_iwae_paper),
    "iwae-paper-vae-report": ("iwae-paper-vae.json", render_iwae_report),
    "compare-mnist": ("compare-mnist.json", render_compare),
}
SCRIPTS = {  # the command that makes each results file
    "model-family.json": "taskset -c 0 env OMP_NUM_THREADS=1 python benchmarks/model_family.py",
    "conditional-family.json": "taskset -c 0 env OMP_NUM_THREADS=1 python benchmarks/conditional_family.py",
    "conv-seeds.json": "python benchmarks/seeds_conv.py",
    **{f"{name}.json": "the commands in benchmarks/collect_run.py's docstring, then benchmarks/collect_run.py"
       for name in ("pytorch-example", "iwae-paper-vae", "compare-mnist")},
}
if (RESULTS / "iwae-paper-vae-full.json").is_file():  # the full protocol's row once it has finished (issue 17;
    # benchmarks/iwae_full_run.sh finish writes the file and puts the block's markers into docs/results.md)
    BLOCKS["iwae-paper-vae-full"] = ("iwae-paper-vae-full.json", render_iwae_full)


def render_block(name: str, results: Path = RESULTS) -> str:
    """The Markdown of block ``name`` from its JSON file(s) in ``results`` (a note with the command if missing)."""
    files, fn = BLOCKS[name]
    files = (files,) if isinstance(files, str) else files
    missing = [f for f in files if not (results / f).is_file()]
    if missing:
        return f"(not measured yet: `{SCRIPTS[missing[0]]}`)"
    return fn(*(json.loads((results / f).read_text()) for f in files))


def write_blocks(root: Path = REPO, results: Path = RESULTS) -> list[tuple[str, Path]]:
    """Replace every result block in the Markdown file that holds it; (name, file) of each."""
    done = []
    for name in BLOCKS:
        start, end = markers(name)
        path = holder(start, end, root)
        path.write_text(replace_block(path.read_text(), start, end, render_block(name, results)))
        done.append((name, path))
    return done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="replace every table between its markers")
    args = ap.parse_args()
    if args.write:
        print(f"wrote the speed table into {write()}")
        for name, path in write_blocks():
            print(f"wrote table {name} into {path}")
    else:
        print(render())
        for name in BLOCKS:
            print(f"\n{name}:\n{render_block(name)}")


if __name__ == "__main__":
    main()
