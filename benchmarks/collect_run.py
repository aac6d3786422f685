"""Keep what a documented CLI run measured as a small results file (``benchmarks/results/NAME.json``).

The docs show some numbers that come from plain ``vaekit`` commands (a preset trained and evaluated,
a ``vaekit compare``) rather than from a benchmark script. Run the commands pinned to one core,
timing each process, then collect the run's record:

    taskset -c 0 env OMP_NUM_THREADS=1 /usr/bin/time -f '{"user": %U, "sys": %S, "wall": %e}' -o train.time \\
        vaekit train --preset iwae-paper-vae --set train.threads=1 --out runs/iwae-paper-vae
    taskset -c 0 env OMP_NUM_THREADS=1 /usr/bin/time -f '{"user": %U, "sys": %S, "wall": %e}' -o eval.time \\
        vaekit evaluate runs/iwae-paper-vae --k 5000
    python benchmarks/collect_run.py --name iwae-paper-vae --run runs/iwae-paper-vae \\
        --command "vaekit train ..." --command "vaekit evaluate ..." \\
        --json evaluation=runs/iwae-paper-vae/evaluations/test-n10000-k5000-L1-seed0.json \\
        --json train_process=train.time --json evaluate_process=eval.time
    python benchmarks/tables.py --write      # the docs' blocks made from the results file

The file holds the commands, where they ran (versions, commit, load), the run's epochs, training
wall and CPU seconds, config and last ``metrics.jsonl`` row (``--run``), and each ``--json KEY=PATH``
file under KEY (an evaluation report, a ``comparison.json``, the ``/usr/bin/time`` record of a
process). Per-image arrays are dropped: the summary numbers are what the docs show.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from _reproduce import provenance, summary, write

BULKY = 1000  # lists longer than this (per-image values) are left out of the results file


def slim(value: Any) -> Any:
    """``value`` without its long lists (per-image estimates), which the docs never show."""
    if isinstance(value, dict):
        return {k: slim(v) for k, v in value.items() if not (isinstance(v, list) and len(v) > BULKY)}
    if isinstance(value, list):
        return [slim(v) for v in value]
    return value


def collect(name: str, commands: list[str], run: Path | None, files: dict[str, Path],
            commit: str | None = None) -> dict[str, Any]:
    """The results record of one documented run (see the module docstring)."""
    made = provenance()
    if commit:  # the commit the run was made at, when collected later
        made["git"] = {"commit": commit, "dirty": None, "collected_at": made["git"]["commit"]}
    out: dict[str, Any] = {"benchmark": name, "commands": commands, "made": made}
    if run is not None:
        import vaekit

        loaded = vaekit.load_run(run)
        out.update(summary(loaded))
        out["last_metrics"] = loaded.metrics[-1] if loaded.metrics else {}
    for key, path in files.items():
        out[key] = slim(json.loads(path.read_text()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True, help="the benchmark's name (the results file's stem)")
    ap.add_argument("--run", type=Path, help="the run folder whose epochs, time and config are kept")
    ap.add_argument("--command", action="append", default=[], help="a command that made the numbers (repeat)")
    ap.add_argument("--json", action="append", default=[], metavar="KEY=PATH", help="a JSON file kept under KEY")
    ap.add_argument("--commit", help="the git commit the run was made at (default: HEAD now)")
    ap.add_argument("--out", type=Path, help="default benchmarks/results/NAME.json")
    args = ap.parse_args()
    files = {}
    for item in args.json:
        key, sep, path = item.partition("=")
        if not sep:
            ap.error(f"--json takes KEY=PATH, got {item!r}")
        files[key] = Path(path)
    out = args.out or Path(__file__).resolve().parent / "results" / f"{args.name}.json"
    write(out, collect(args.name, args.command, args.run, files, args.commit))


if __name__ == "__main__":
    main()
