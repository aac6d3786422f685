"""The shipped MNIST classifier's test accuracy and the reference FIDs the evaluation protocol quotes.

    taskset -c 0 env OMP_NUM_THREADS=1 python benchmarks/fid_reference.py    # ~1 min at one thread

``vaekit compare`` scores generated digits with a small CNN shipped in the package
(``vaekit.metrics.generation``). Measured here, into ``benchmarks/results/fid-reference.json``:
its accuracy on the 10,000 MNIST test images (and the accuracy its safetensors header records), the
FID between the two halves of the test set (first 5,000 vs last 5,000), and the FID of 5,000
training images (a seeded random draw) against the first half. Why the two differ is the point
docs/evaluation.md makes: the test set's halves are not alike, so they make no reference row.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
HALF = 5000


def measure(seed: int = 0) -> dict:
    from safetensors import safe_open

    import vaekit
    from vaekit.metrics import generation as gen

    torch.set_num_threads(1)
    data = vaekit.open_data(vaekit.DataConfig(source="mnist"))
    train, test = data.train, data.test
    _, probs = gen.classify(test.x)
    accuracy = float((torch.from_numpy(probs).argmax(1) == test.y).double().mean())
    with safe_open(str(gen.weights_path()), "pt") as f:
        recorded = json.loads(f.metadata()["meta"])["test_accuracy"]
    first = gen.Reference(test.x[:HALF])
    idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:HALF]
    return {
        "benchmark": "fid-reference",
        "command": "taskset -c 0 env OMP_NUM_THREADS=1 python benchmarks/fid_reference.py",
        "classifier": {"test_accuracy": accuracy, "header_test_accuracy": recorded, "test_images": len(test)},
        "fid": {
            "test_last_half_vs_first_half": first.score(test.x[HALF:])["fid"],
            "train_random_vs_test_first_half": first.score(train.x[idx])["fid"],
            "images": HALF, "train_draw_seed": seed,
        },
        "versions": {"vaekit": vaekit.__version__, "torch": torch.__version__},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE / "results" / "fid-reference.json")
    args = ap.parse_args()
    result = measure()
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
