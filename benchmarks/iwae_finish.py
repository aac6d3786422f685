"""Keep the finished full-protocol reproduction (issue 17) as evidence, after its k = 5000 evaluation.

``benchmarks/iwae_full_run.sh finish`` runs ``vaekit evaluate RUN --k 5000`` (timed) and then this,
which refuses a run that has not trained all its epochs, and writes:

* ``benchmarks/results/iwae-paper-vae-full.json``: the commands, where they ran, the run's epochs,
  CPU time and config, and the evaluation report (``collect_run.py``'s record);
* ``src/vaekit/pretrained/files/iwae-paper-vae-full/``: the final weights as ``pretrained:NAME``
  (config.json, model.safetensors byte for byte, evaluation.json in the shipped models' summary form);
* the docs' result blocks again (``tables.py --write``).

    python benchmarks/iwae_finish.py RUN --eval-time RUN/eval.time
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from collect_run import collect  # noqa: E402
from _reproduce import write  # noqa: E402

NAME = "iwae-paper-vae-full"
K = 5000
REPORT = f"test-n10000-k{K}-L1-seed0.json"  # what `vaekit evaluate RUN --k 5000` writes
PRETRAINED = HERE.parent / "src" / "vaekit" / "pretrained" / "files" / NAME


def check_trained(run: Path) -> dict[str, Any]:
    """The run's final model metadata; exit with one line if it has not trained all its epochs."""
    from vaekit import checkpoint

    cfg = json.loads((run / "config.json").read_text())
    final = run / "model.safetensors"
    meta = checkpoint.read_meta(final) if final.is_file() else {}
    if meta.get("epoch") != cfg["train"]["epochs"]:
        sys.exit(f"{run}: not finished (final model at epoch {meta.get('epoch')}, config says "
                 f"{cfg['train']['epochs']}); resume it with benchmarks/iwae_full_run.sh start")
    return meta


def check_finished(run: Path) -> dict[str, Any]:
    """:func:`check_trained`, and the k = 5000 evaluation is there and of the final weights."""
    import vaekit
    from vaekit.evaluations import weights_id

    meta = check_trained(run)
    report = run / "evaluations" / REPORT
    if not report.is_file():
        sys.exit(f"{report} is missing: run `vaekit evaluate {run} --k {K}` first")
    measured, final = json.loads(report.read_text()).get("weights", {}).get("id"), weights_id(vaekit.load(run))
    if measured != final:
        sys.exit(f"{report} measured weights {measured}, not the final model's {final}: run "
                 f"`vaekit evaluate {run} --k {K}` again")
    return meta


def shipped_summary(record: dict[str, Any]) -> dict[str, Any]:
    """evaluation.json of the shipped model, in the form scripts/make_pretrained.py writes."""
    ev = record["evaluation"]
    return {
        "name": NAME,
        "preset": NAME,
        "overrides": {},
        "recipe": "benchmarks/iwae_full_run.sh start (resumed across sessions) + finish",
        "test_neg_elbo": ev["elbo"]["neg_elbo"],
        "test_recon": ev["elbo"]["recon"],
        "test_kl": ev["elbo"]["kl"],
        "test_images": ev["n"],
        "nll": ev["nll"]["value"],
        "nll_se": ev["nll"]["se"],
        "nll_k": ev["nll"]["k"],
        "nll_images": ev["n"],
        "active_units": ev["latent"]["active_units"],
    }


BLOCK = ("\nThe final weights, evaluated as the paper does (k = 5000 on all 10,000 test images):\n\n"
         f"<!-- table:{NAME}:start -->\n<!-- table:{NAME}:end -->\n")


def add_block(page: Path) -> None:
    """Put the row's markers after the curve's sentences in ``page`` (once), for tables.py to fill."""
    text = page.read_text()
    if f"<!-- table:{NAME}:start -->" not in text:
        anchor = "<!-- iwae-curve:end -->\n"
        page.write_text(text.replace(anchor, anchor + BLOCK, 1))


def finish(run: Path, eval_time: Path, results: Path = HERE / "results", pretrained: Path = PRETRAINED,
           docs: bool = True) -> dict[str, Any]:
    """Check ``run`` finished, keep its record in ``results`` and its weights in ``pretrained``, then
    rewrite the docs' blocks (``docs``); the record."""
    check_finished(run)
    commands = ["benchmarks/iwae_full_run.sh start  # vaekit train --preset iwae-paper-vae-full, resumed across sessions",
                f"taskset -c 1 env OMP_NUM_THREADS=1 vaekit evaluate {run} --k {K}"]
    record = collect(NAME, commands, run, {"evaluation": run / "evaluations" / REPORT, "evaluate_process": eval_time})
    write(results / f"{NAME}.json", record)
    pretrained.mkdir(parents=True, exist_ok=True)
    for f in ("config.json", "model.safetensors"):
        shutil.copyfile(run / f, pretrained / f)
    (pretrained / "evaluation.json").write_text(json.dumps(shipped_summary(record), indent=2) + "\n")
    if docs:
        add_block(HERE.parent / "docs" / "results.md")
        import tables  # imported after the results file exists: its BLOCKS then hold the full protocol's row

        for name, page in tables.write_blocks():
            print(f"wrote the {name} block of {page}")
    return record


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--eval-time", type=Path, help="/usr/bin/time's JSON record of the evaluation")
    ap.add_argument("--check-trained", action="store_true", help="only check that training is over")
    ap.add_argument("--check-evaluated", action="store_true",
                    help="only check that the k = 5000 evaluation of the final weights is there")
    args = ap.parse_args()
    if args.check_trained or args.check_evaluated:
        (check_finished if args.check_evaluated else check_trained)(args.run)
        return
    if args.eval_time is None:
        ap.error("--eval-time is required")
    record = finish(args.run, args.eval_time)
    nll = record["evaluation"]["nll"]
    print(f"{NAME}: -log p(x) = {nll['value']:.2f} +- {nll['se']:.2f} (k={K}, {record['evaluation']['n']} test "
          f"images); kept in benchmarks/results/{NAME}.json and pretrained:{NAME}")


if __name__ == "__main__":
    main()
