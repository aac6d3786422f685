"""How much of the IS-NLL time the Bernoulli log-likelihood takes, with BCE-with-logits and with
``FastBernoulli`` (x·l − softplus(l)), on the shipped ``pytorch-example`` weights.

    taskset -c 0 env OMP_NUM_THREADS=1 python benchmarks/profile_bernoulli.py    # ~2 min at one thread

``vaekit.metrics.likelihood.importance_sampled_nll`` evaluates log p(x|z) of a Bernoulli decoder as
x·l − softplus(l) (``FastBernoulli``); here it also runs with the plain ``Bernoulli`` (BCE-with-
logits), alternating the two, and each likelihood's ``log_prob`` is timed inside the estimator
(thread CPU time: one thread does all the work). Written to ``benchmarks/results/nll-bernoulli.json``:
per round, the estimator's CPU seconds and the seconds spent in ``log_prob``; the medians; the
share of the estimator's time the BCE takes and the fast form's time as a fraction of the BCE's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent


def measure(images: int, k: int, rounds: int) -> dict[str, Any]:
    import vaekit
    from vaekit.likelihoods.pixels import Bernoulli
    from vaekit.metrics import likelihood as lik

    torch.set_num_threads(1)
    model = vaekit.load("pretrained:pytorch-example")
    test = vaekit.open_data(vaekit.DataConfig(source="mnist")).test.subset(slice(0, images))
    spent = {"bce": 0.0, "fast": 0.0}

    def timed(cls: type, key: str) -> None:
        inner = cls.__dict__["log_prob"]

        def log_prob(self: Any, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            t = time.thread_time()
            try:
                return inner(self, out, x)
            finally:
                spent[key] += time.thread_time() - t

        setattr(cls, "log_prob", log_prob)

    timed(Bernoulli, "bce")
    timed(lik.FastBernoulli, "fast")
    fast_form = lik.fast_bernoulli
    rows: dict[str, list[dict[str, float]]] = {"bce": [], "fast": []}
    nll: dict[str, float] = {}
    for r in range(rounds):
        for key in ("bce", "fast"):  # alternating: the load a round sees hits both forms
            lik.fast_bernoulli = fast_form if key == "fast" else (lambda model: contextlib.nullcontext())
            spent[key] = 0.0
            t = time.thread_time()
            res = lik.importance_sampled_nll(model, test, k=k, seed=0, progress=False)
            total = time.thread_time() - t
            rows[key].append({"total_cpu_s": total, "log_prob_cpu_s": spent[key]})
            nll[key] = res.nll
    lik.fast_bernoulli = fast_form
    med = {key: {m: statistics.median(row[m] for row in rows[key]) for m in ("total_cpu_s", "log_prob_cpu_s")}
           for key in rows}
    return {
        "benchmark": "nll-bernoulli",
        "command": "taskset -c 0 env OMP_NUM_THREADS=1 python benchmarks/profile_bernoulli.py",
        "settings": {"model": "pretrained:pytorch-example", "images": images, "k": k, "rounds": rounds, "threads": 1,
                     "clock": "thread CPU time"},
        "rounds": rows, "median": med, "nll": nll,
        "bce_share_of_is_nll": med["bce"]["log_prob_cpu_s"] / med["bce"]["total_cpu_s"],
        "fast_over_bce": med["fast"]["log_prob_cpu_s"] / med["bce"]["log_prob_cpu_s"],
        "versions": {"vaekit": vaekit.__version__, "torch": torch.__version__},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--k", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "nll-bernoulli.json")
    args = ap.parse_args()
    result = measure(args.images, args.k, args.rounds)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("median", "nll", "bce_share_of_is_nll", "fast_over_bce")}, indent=2))


if __name__ == "__main__":
    main()
