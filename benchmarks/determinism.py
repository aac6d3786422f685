"""Are identical runs identical? N one-epoch runs of the default preset per thread count, each in a
fresh process, the final metrics compared digit for digit (issue 12: "2 of 7 runs differed").

    python benchmarks/determinism.py --runs 3 --threads 1 2 --out benchmarks/results/determinism.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    rows = []
    for threads in args.threads:
        for i in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                r = subprocess.run([sys.executable, "-m", "vaekit", "train", "--epochs", "1", "--threads", str(threads),
                                    "--no-progress", "--out", f"{tmp}/run"], capture_output=True, text=True,
                                   env=dict(os.environ, OMP_NUM_THREADS=str(threads)), check=True)
                final = json.loads(r.stdout.strip().splitlines()[-1])
            rows.append({"threads": threads, "run": i, "load_average_1min": os.getloadavg()[0], **final})
            print(json.dumps(rows[-1]), flush=True)
    keys = ("train_loss", "test_loss")
    distinct = {t: sorted({tuple(r[k] for k in keys) for r in rows if r["threads"] == t}) for t in args.threads}
    summary = {"identical_within_thread_count": {str(t): len(v) == 1 for t, v in distinct.items()},
               "identical_across_thread_counts": len({v for vs in distinct.values() for v in vs}) == 1}
    print(json.dumps(summary))
    if args.out:
        import torch

        args.out.write_text(json.dumps({"benchmark": "determinism", "torch": torch.__version__,
                                        "cpu": _cpu(), "rows": rows, **summary}, indent=1) + "\n")


def _cpu() -> str:
    try:
        return next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown"


if __name__ == "__main__":
    main()
