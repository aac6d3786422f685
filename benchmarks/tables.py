"""The speed table of docs/results.md, generated from the committed results in ``benchmarks/results/``.

    python benchmarks/tables.py            # print the table
    python benchmarks/tables.py --write    # replace the table between the markers in docs/results.md

``tests/test_speed_tables.py`` fails when docs/results.md's table differs from what this script makes,
so a speed claim in the docs cannot drift from the JSON it rests on. Two formats are read:
the alternating method (``"method": "alternating"``: medians over rounds, the ratio
of medians with its range over rounds) and the older one-run-per-method files (labelled so).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
README = HERE.parent / "docs" / "results.md"  # the page the table lives in
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
        shown = (f"{1 / sp['median']:.2f}× the floor's time" if name == "floor"
                 else f"**{sp['median']:.2f}× {verdict}**")
        rows.append(
            f"| {model} | {st['threads']} | {NAMES.get(name, name)} | {o['seconds']['median']:.2f} "
            f"({o['seconds']['best']:.2f}–{o['seconds']['worst']:.2f}) | {v['seconds']['median']:.2f} "
            f"({v['seconds']['best']:.2f}–{v['seconds']['worst']:.2f}) | {shown} "
            f"({sp['range'][0]:.2f}–{sp['range'][1]:.2f}) | {_loss(o, v)} | {how_row} |")
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


def write(readme: Path = README) -> None:
    text = readme.read_text()
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    readme.write_text(f"{head}{START}\n{render()}\n{END}{tail}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="replace the table in docs/results.md")
    args = ap.parse_args()
    if args.write:
        write()
        print(f"wrote the speed table into {README}")
    else:
        print(render())


if __name__ == "__main__":
    main()
