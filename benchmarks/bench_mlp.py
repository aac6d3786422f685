"""Seconds per epoch of the PyTorch-examples MLP VAE, trained three ways side by side.

The model is the one in pytorch/examples ``vae/main.py``: 784-400-20 MLP, ReLU, sigmoid output
with BCE summed over pixels, analytic KL, Adam 1e-3, batch 128, continuous pixels in [0, 1],
trained on the 60k MNIST training images; the test loss is the summed negative ELBO over the 10k
test images / 10,000, with z sampled. Methods, run one after the other (never concurrently), with
the same thread count and seed:

* ``reference`` - the tutorial's way: a per-sample Dataset that makes a PIL image and converts it
  as torchvision's ``ToTensor`` does, ``DataLoader(batch_size=128, shuffle=True)``, an ``nn.Module``
  with fc1/fc21/fc22/fc3/fc4 and ``F.binary_cross_entropy(..., reduction="sum")`` + KLD;
* ``vaekit``   - ``vaekit.train`` with the ``pytorch-example`` preset;
* ``pythae``   - pythae's ``VAE`` + ``TrainingPipeline`` in a throwaway venv (``_pythae_mlp.py``);
* ``floor``    - only the matmuls: raw ``torch.addmm`` forward, autograd backward and a fused Adam
  step on pre-made batches, for the same number of steps: a lower bound to compare against.

"Seconds" is the training pass of an epoch only (evaluation and checkpoints excluded). The methods
alternate (``_common.alternate``): ``--rounds`` rounds of every method in turn, round r with seed
``--seed + r``; per method the median, best and worst of epochs 2..N over all rounds, and vaekit's
speed-up as the ratio of medians with its range over the rounds.

    OMP_NUM_THREADS=1 python benchmarks/bench_mlp.py --epochs 2 --rounds 1 --limit 2000 --threads 1 --skip-pythae  # smoke
    python benchmarks/bench_mlp.py --out benchmarks/results/mlp.json                        # real
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from _common import (
    HERE, VENV_ROOT, alternate, ensure_venv, load_mnist, loss_stats, machine, print_table, run_child, speedup,
    summarize, write_json,
)

BATCH, LR = 128, 1e-3
PYTHAE_INSTALL = ["torch==2.13.0", "pythae"]  # torch pinned first: else pip pulls a CUDA build


# ---- (a) the tutorial's way ------------------------------------------------------------------


class TutorialMNIST(torch.utils.data.Dataset):
    """What ``torchvision.datasets.MNIST(transform=ToTensor())`` does per item, minus torchvision."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.data, self.targets = torch.from_numpy(images), torch.from_numpy(labels)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        pil = Image.fromarray(self.data[i].numpy(), mode="L")
        img = torch.from_numpy(np.array(pil, np.uint8, copy=True))  # ToTensor, for a mode-L image
        img = img.view(pil.size[1], pil.size[0], 1).permute(2, 0, 1).contiguous()
        return img.to(torch.get_default_dtype()).div(255), int(self.targets[i])


class TutorialVAE(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h1 = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h1), self.fc22(h1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


def tutorial_loss(recon, x, mu, logvar) -> torch.Tensor:
    bce = F.binary_cross_entropy(recon, x.view(-1, 784), reduction="sum")
    return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def run_reference(d: dict, epochs: int, seed: int) -> dict:
    torch.manual_seed(seed)
    kw = dict(batch_size=BATCH, shuffle=True)
    train = torch.utils.data.DataLoader(TutorialMNIST(d["x_train"], d["y_train"]), **kw)
    test = torch.utils.data.DataLoader(TutorialMNIST(d["x_test"], d["y_test"]), **kw)
    model = TutorialVAE()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    seconds, train_loss, test_loss = [], 0.0, 0.0
    for epoch in range(1, epochs + 1):
        model.train()
        start, train_loss = time.perf_counter(), 0.0
        for data, _ in train:
            opt.zero_grad()
            recon, mu, logvar = model(data)
            loss = tutorial_loss(recon, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            opt.step()
        seconds.append(time.perf_counter() - start)
        model.eval()
        test_loss = 0.0
        with torch.no_grad():
            for data, _ in test:
                recon, mu, logvar = model(data)
                test_loss += tutorial_loss(recon, data, mu, logvar).item()
        train_loss, test_loss = train_loss / len(train.dataset), test_loss / len(test.dataset)
        print(f"  reference: epoch {epoch}: train {train_loss:.2f}  test {test_loss:.2f}  "
              f"{seconds[-1]:.2f}s", flush=True)
    return {"seconds": seconds, "train_loss": train_loss, "test_loss": test_loss}


# ---- (b) vaekit, (c) pythae, and the floor ----------------------------------------------------


def run_vaekit(limit: int | None, epochs: int, seed: int, threads: int) -> dict:
    import vaekit

    train = {"epochs": epochs, "progress": False, "tensorboard": False, "seed": seed,
             "threads": threads, "device": "cpu"}
    overrides = [{"train": train}] + ([{"data": {"limit": limit}}] if limit else [])
    cfg = vaekit.resolve("pytorch-example", overrides=overrides)
    with tempfile.TemporaryDirectory() as out:
        log = lambda m: print("  vaekit: " + m, flush=True)  # noqa: E731
        run = vaekit.train(cfg, Path(out) / "run", overwrite=True, log=log)
    rows = run.metrics
    seconds = [r["seconds"] for r in rows]
    return {"seconds": seconds, "train_loss": rows[-1]["train_loss"], "test_loss": rows[-1]["test_loss"]}


def run_pythae(d: dict, epochs: int, seed: int, threads: int, venv: Path) -> dict:
    python = ensure_venv(venv, "pythae", PYTHAE_INSTALL)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mnist.npz"
        unit = lambda x: (x.astype(np.float32) / np.float32(255))[:, None]  # noqa: E731
        np.savez(path, train=unit(d["x_train"]), test=unit(d["x_test"]))
        args = [str(path), "--epochs", str(epochs), "--threads", str(threads), "--seed", str(seed)]
        res = run_child(python, HERE / "_pythae_mlp.py", args, threads)
    for i, s in enumerate(res["seconds"], 1):
        whole = res["epoch_seconds"][i - 1]
        print(f"  pythae: epoch {i}: {s:.2f}s (whole epoch incl. eval {whole:.2f}s)", flush=True)
    if res["torch"].split("+")[0] != torch.__version__.split("+")[0]:
        print(f"  WARNING: pythae venv has torch {res['torch']}, this process {torch.__version__}")
    return res


def run_floor(x_train: np.ndarray, epochs: int, seed: int) -> dict:
    """Forward (addmm), autograd backward and a fused Adam step on pre-made batches: no loader,
    no module, no bookkeeping. fc21/fc22 are one 400x40 matmul."""
    torch.manual_seed(seed)
    x = torch.from_numpy(x_train).reshape(-1, 784).float() / 255
    batches = [b.contiguous() for b in x[torch.randperm(len(x))].split(BATCH)]

    def layer(n_in: int, n_out: int) -> list[torch.Tensor]:
        bound = 1 / math.sqrt(n_in)
        shapes = ((n_in, n_out), (n_out,))
        return [torch.empty(*s).uniform_(-bound, bound).requires_grad_() for s in shapes]

    params = layer(784, 400) + layer(400, 40) + layer(20, 400) + layer(400, 784)
    w1, b1, w2, b2, w3, b3, w4, b4 = params
    opt = torch.optim.Adam(params, lr=LR, fused=True)
    seconds = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        for xb in batches:
            mu, logvar = torch.addmm(b2, torch.addmm(b1, xb, w1).relu_(), w2).chunk(2, dim=1)
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
            logits = torch.addmm(b4, torch.addmm(b3, z, w3).relu_(), w4)
            kl = -0.5 * (1 + logvar - mu * mu - logvar.exp()).sum()
            loss = F.binary_cross_entropy_with_logits(logits, xb, reduction="sum") + kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        seconds.append(time.perf_counter() - start)
        print(f"  floor: epoch {epoch}: {seconds[-1]:.2f}s", flush=True)
    return {"seconds": seconds, "train_loss": None, "test_loss": None}


# ---- the run ------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5, help="epochs per run (default 5)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of every method (default 2)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads for every method (default: torch's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None,
                    help="first N training and N//6 test images (smoke tests)")
    ap.add_argument("--skip-pythae", action="store_true")
    ap.add_argument("--venv", type=Path, default=VENV_ROOT / "pythae",
                    help="pythae venv (created when missing)")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args()
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    d = load_mnist()
    if args.limit:  # the same subset vaekit's data.limit takes
        n, m = args.limit, max(1, args.limit // 6)
        d = {"x_train": d["x_train"][:n], "y_train": d["y_train"][:n],
             "x_test": d["x_test"][:m], "y_test": d["y_test"][:m]}
    n_train, n_test = len(d["x_train"]), len(d["x_test"])
    print(f"MLP VAE 784-400-20: {n_train} train / {n_test} test images, {args.epochs} epochs, batch {BATCH}, "
          f"{threads} thread(s), seed {args.seed}, torch {torch.__version__}", flush=True)

    methods = {"reference": lambda seed: run_reference(d, args.epochs, seed),
               "vaekit": lambda seed: run_vaekit(args.limit, args.epochs, seed, threads)}
    if not args.skip_pythae:
        methods["pythae"] = lambda seed: run_pythae(d, args.epochs, seed, threads, args.venv)
    methods["floor"] = lambda seed: run_floor(d["x_train"], args.epochs, seed)
    before = machine()
    runs = alternate(methods, args.rounds, args.seed)

    summary = {}
    for name, r in runs.items():
        summary[name] = {"seconds": summarize(r)}
        losses = [x["test_loss"] for x in r if x["test_loss"] is not None]
        if losses:
            summary[name]["loss"] = loss_stats(losses)
    for name, s in summary.items():
        if name != "vaekit":
            s["vaekit_speedup"] = speedup(summary["vaekit"]["seconds"], s["seconds"])
    header = ["method", "median s/epoch (2..N)", "best", "worst", "test loss (seeds)", "vaekit's speed-up (range)"]
    rows = []
    for name, s in summary.items():
        t, sp, loss = s["seconds"], s.get("vaekit_speedup"), s.get("loss")
        rows.append([name, f"{t['median']:.3f}", f"{t['best']:.3f}", f"{t['worst']:.3f}",
                     "-" if not loss else f"{loss['mean']:.2f} ± {loss['sd']:.2f}",
                     "-" if not sp else f"{sp['median']:.2f}x ({sp['range'][0]:.2f}-{sp['range'][1]:.2f})"])
    print()
    print_table(header, rows)
    print("vaekit's speed-up = that method's median seconds / vaekit's (below 1 for the floor: a lower bound)")
    settings = {"epochs": args.epochs, "rounds": args.rounds, "threads": threads, "seed": args.seed,
                "limit": args.limit, "train": n_train, "test": n_test, "batch": BATCH, "torch": torch.__version__,
                "machine_before": before, "machine_after": machine(), "command": " ".join(sys.argv)}
    write_json(args.out, {"benchmark": "mlp", "method": "alternating", "settings": settings,
                          "summary": summary, "runs": runs})


if __name__ == "__main__":
    main()
