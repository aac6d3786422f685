"""The PyTorch-examples MLP VAE trained with pythae; run by bench_mlp.py inside the pythae venv.

Usage: ``python _pythae_mlp.py DATA.npz --epochs N --threads T --seed S``, where DATA.npz holds
float32 ``train`` (N, 1, 28, 28) and ``test`` arrays with pixels in [0, 1]. Prints one line
``BENCH_RESULT {json}`` with per-epoch seconds and the final test loss.

The architecture is the tutorial's (784-400-20, ReLU, sigmoid output) as pythae custom
``BaseEncoder``/``BaseDecoder`` nets; ``reconstruction_loss="bce"`` is pythae's summed-over-pixels
BCE, and its VAE loss is the batch *mean* of BCE + analytic KL (Adam is nearly invariant to that
1/128 scale). Everything else is pythae's default ``TrainingPipeline``: its own Dataset/DataLoader,
per-epoch evaluation, a deep copy of the best model and its progress bar.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import torch

from _pythae_nets import Decoder, Encoder
from pythae.models import VAE, VAEConfig
from pythae.pipelines import TrainingPipeline
from pythae.trainers import BaseTrainerConfig
from pythae.trainers.training_callbacks import TrainingCallback


class EpochTimer(TrainingCallback):
    """Seconds of each epoch's training pass (train_step only) and of the whole epoch."""

    def __init__(self) -> None:
        self.train_seconds: list[float] = []
        self.epoch_seconds: list[float] = []
        self.logs: list[dict] = []

    def on_epoch_begin(self, training_config, **kwargs) -> None:
        self.epoch_start = time.perf_counter()

    def on_train_step_begin(self, training_config, **kwargs) -> None:  # once per epoch
        self.train_start = time.perf_counter()

    def on_eval_step_begin(self, training_config, **kwargs) -> None:  # the train pass is over
        self.train_seconds.append(time.perf_counter() - self.train_start)

    def on_epoch_end(self, training_config, **kwargs) -> None:
        self.epoch_seconds.append(time.perf_counter() - self.epoch_start)

    def on_log(self, training_config, logs, **kwargs) -> None:
        self.logs.append(dict(logs))


@torch.no_grad()
def summed_test_loss(model: VAE, x: torch.Tensor, seed: int, batch: int = 128) -> float:
    """Summed negative ELBO over the test set / its size, z sampled (as the tutorial reports it)."""
    model.eval()
    torch.manual_seed(seed)
    total = 0.0
    for i in range(0, len(x), batch):
        xb = x[i : i + batch]
        total += float(model({"data": xb}).loss) * len(xb)  # pythae's loss is the batch mean
    return total / len(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    with np.load(args.data) as z:
        train, test = z["train"], z["test"]

    model = VAE(
        model_config=VAEConfig(input_dim=(1, 28, 28), latent_dim=20, reconstruction_loss="bce"),
        encoder=Encoder(),
        decoder=Decoder(),
    )
    timer = EpochTimer()
    with tempfile.TemporaryDirectory() as out:
        config = BaseTrainerConfig(
            output_dir=out,
            num_epochs=args.epochs,
            learning_rate=1e-3,
            per_device_train_batch_size=128,
            per_device_eval_batch_size=128,
            optimizer_cls="Adam",
            seed=args.seed,
            no_cuda=True,
        )
        pipeline = TrainingPipeline(training_config=config, model=model)
        start = time.perf_counter()
        pipeline(train_data=train, eval_data=test, callbacks=[timer])
        total = time.perf_counter() - start
    result = {
        "seconds": [round(s, 4) for s in timer.train_seconds],
        "epoch_seconds": [round(s, 4) for s in timer.epoch_seconds],
        "pipeline_seconds": round(total, 3),
        "test_loss": summed_test_loss(pipeline.model, torch.from_numpy(test), args.seed),
        "pythae_eval_epoch_loss": timer.logs[-1].get("eval_epoch_loss") if timer.logs else None,
        "train_loss": timer.logs[-1].get("train_epoch_loss") if timer.logs else None,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    print("BENCH_RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
