"""Pythae's importance-sampled NLL (``VAE.get_nll``) of given weights; run by bench_nll.py in the pythae venv.

Usage: ``python _pythae_nll.py MODEL.npz --k K --batch-size S --threads T --seed SEED``, where MODEL.npz
holds the PyTorch-examples MLP VAE's weights (fc1, fc21, fc22, fc3, fc4 ``.weight``/``.bias``) and
``x`` (N, 1, 28, 28) float32 pixels in [0, 1]. Prints one line ``BENCH_RESULT {json}``.

``get_nll`` loops over the images one at a time and, per image, over k / S batches of S samples,
re-encoding S copies of the image for every batch (pythae 0.1.2). It is called under
``torch.no_grad()`` (the docs call it bare; no_grad only removes autograd bookkeeping, so this is
the favourable case for pythae). Its return value is the mean of log p(x); we report -that.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from _pythae_nets import Decoder, Encoder
from pythae.models import VAE, VAEConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("--k", type=int, required=True)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with np.load(args.model) as z:
        arrays = {k: torch.from_numpy(z[k]) for k in z.files}
    x = arrays.pop("x")
    model = VAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=20, reconstruction_loss="bce"),
                encoder=Encoder(), decoder=Decoder())
    enc = {k[len("encoder."):]: v for k, v in arrays.items() if k.startswith("encoder.")}
    dec = {k[len("decoder."):]: v for k, v in arrays.items() if k.startswith("decoder.")}
    model.encoder.load_state_dict(enc, strict=True)
    model.decoder.load_state_dict(dec, strict=True)
    model.eval()
    torch.manual_seed(args.seed)
    wall, cpu = time.perf_counter(), time.process_time()
    with torch.no_grad():
        log_p = model.get_nll(x, n_samples=args.k, batch_size=args.batch_size)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    result = {"nll": -float(log_p), "wall": wall, "cpu": cpu, "n": len(x), "k": args.k,
              "threads": torch.get_num_threads(), "torch": torch.__version__}
    print("BENCH_RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
