"""Train the pretrained models shipped in the package (``pretrained:NAME``), reproducibly.

    python scripts/make_pretrained.py [--only keras-conv] [--out src/vaekit/pretrained/files]

Deterministic (seed 0, one thread, no wall-clock time in any written file): a rerun writes the same
bytes (check: ``sha256sum src/vaekit/pretrained/files/*/*`` before and after). Each model becomes a
run folder, ``config.json`` + ``model.safetensors``, plus ``evaluation.json``: the negative ELBO on
the whole MNIST test set and the importance-sampled NLL (k = 1000) on its first images.

* ``pytorch-example``: the preset as it is (784-400-20, 10 epochs on the 60k training images).
* ``keras-conv``: the preset's network and optimiser, trained on the 60k training images only (not
  all 70k, so the test NLL is held out) for 10 epochs instead of 30.

Cost at one thread on this project's 2-core machine, when it is otherwise idle: ~2 s per
pytorch-example epoch and ~35 s per keras-conv epoch (50-500 s when other jobs share the core),
plus about a minute of evaluation: about 7 minutes for both models.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch

import vaekit
from vaekit.data import Split
from vaekit.nn.conv import reference_layers

NLL_K = 1000  # importance samples per image, as `vaekit evaluate` does by default

# name -> (preset, overrides, test images for the IS NLL): what `pretrained:NAME` is. The IS NLL
# costs K decodes per image: ~10 s for 1000 images of the MLP, ~45 s for 200 of the conv model.
RECIPES = {
    "pytorch-example": ("pytorch-example", {"train": {"epochs": 10}}, 1000),
    "keras-conv": ("keras-conv", {"data": {"split": "train"}, "train": {"epochs": 10, "eval_every": 0}}, 200),
}
COMMON = {"train": {"seed": 0, "threads": 1, "progress": False, "tensorboard": False, "device": "cpu"}}


def train(name: str, out: Path) -> None:
    """Train ``name`` and keep its config.json and model.safetensors (metrics.jsonl holds timings)."""
    preset, over, _ = RECIPES[name]
    cfg = vaekit.resolve(preset, overrides=[COMMON, over])
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        vaekit.train(cfg, Path(tmp) / name, log=lambda s: print(f"  {name}: {s}", flush=True))
        (out / name).mkdir(parents=True, exist_ok=True)
        for f in ("config.json", "model.safetensors"):
            shutil.copyfile(Path(tmp) / name / f, out / name / f)
    print(f"{name}: trained in {time.perf_counter() - start:.0f}s", flush=True)


def evaluate(name: str, out: Path) -> None:
    """Write ``evaluation.json``: the test -ELBO (all 10k images) and the IS NLL (the first N)."""
    preset, over, nll_images = RECIPES[name]
    start = time.perf_counter()
    run = vaekit.load_run(out / name)
    test = vaekit.open_data(run.config.data).test
    report = vaekit.evaluate(run.model, Split(test.x[:nll_images], None), k=NLL_K, seed=0, progress=False)
    whole = vaekit.elbo(run.model, Split(test.x, None), seed=0)
    summary = {
        "name": name,
        "preset": preset,
        "overrides": over,
        "recipe": "scripts/make_pretrained.py",
        "test_neg_elbo": whole["recon"] + whole["kl"],
        "test_recon": whole["recon"],
        "test_kl": whole["kl"],
        "test_images": len(test),
        "nll": report["nll"]["value"],
        "nll_se": report["nll"]["se"],
        "nll_k": NLL_K,
        "nll_images": nll_images,
        "active_units": report["latent"]["active_units"],
    }
    (out / name / "evaluation.json").write_text(json.dumps(summary, indent=2) + "\n")
    size = sum(p.stat().st_size for p in (out / name).iterdir())
    print(f"{name}: test -ELBO {summary['test_neg_elbo']:.2f}, IS NLL {summary['nll']:.2f} (k={NLL_K}, "
          f"first {nll_images} test images); {size / 1e6:.2f} MB; evaluated in {time.perf_counter() - start:.0f}s",
          flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=sorted(RECIPES), action="append", help="make only this model (repeatable)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "src/vaekit/pretrained/files")
    p.add_argument("--evaluate-only", action="store_true", help="rewrite evaluation.json of the models in --out")
    args = p.parse_args()
    torch.set_num_threads(1)
    # The shipped files were trained and evaluated with torch's own conv layers. vaekit.nn.conv_ops's
    # layers (the default since) compute the same function with other float rounding, so they would
    # give other bytes; the recipe keeps the layers that made the files, so a rerun reproduces them.
    with reference_layers():
        for name in args.only or sorted(RECIPES):
            if not args.evaluate_only:
                train(name, args.out)
            evaluate(name, args.out)


if __name__ == "__main__":
    main()
