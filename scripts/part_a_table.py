"""Print the README table of the part-A runs (scripts/part_a_runs.sh) as Markdown."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

import vaekit
from vaekit.data import open_data
from vaekit.metrics.probes import reconstruction_errors

PUBLISHED = {"iwae-k5": "85.54 (k=5)", "vamp-relu": "85.57", "vae": "86.76"}
WHAT = {
    "vae": "`vae` (N(0, I) prior)", "warmup-lin": "`warmup-vae`, linear, 1,500 steps",
    "warmup-cyc": "`warmup-vae`, cyclical, 4 x 750 steps, R = 0.5", "freebits": "`freebits-vae`, 0.25 nat/dim",
    "capacity": "`capacity-vae`, gamma 100, C 0 -> 25 over 2,400 steps", "iwae-k5": "`iwae`, k = 5",
    "vamp": "`vamp`, K = 500, no warm-up", "vamp-warmup": "`vamp`, K = 500, warm-up 1,500 steps",
    "vamp-relu": "`vamp`, K = 500, warm-up 1,500 steps, **relu 300-300-40**",
    "ae": "`ae`", "dae": "`dae`, mask 25%", "sparse-ae": "`sparse-ae`, KL to rho = 0.05, weight 3",
    "cae": "`cae`, weight 0.1, exact closed form",
}
VAES = ["vae", "warmup-lin", "warmup-cyc", "freebits", "capacity", "iwae-k5", "vamp", "vamp-warmup", "vamp-relu"]
AES = ["ae", "dae", "sparse-ae", "cae"]


def _metrics(run: Path) -> tuple[int, float, dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return rows[-1]["epoch"], sum(r["seconds"] for r in rows), rows[-1]


def main(root: str = "runs/part-a") -> None:
    torch.set_num_threads(1)
    base = Path(root)
    print("| run | model, options | test NLL (IS, k=1000) | test -ELBO | KL | active units | epochs | train time | published NLL |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in VAES:
        run = base / name
        if not (run / "evaluation.json").is_file():
            print(f"| {name} | (not run) |||||||")
            continue
        ev = json.loads((run / "evaluation.json").read_text())
        epochs, secs, _ = _metrics(run)
        nll = ev["nll"]
        print(f"| {name} | {WHAT[name]} | {nll['value']:.2f} ± {nll['se']:.2f} | {ev['elbo']['neg_elbo']:.2f} | "
              f"{ev['elbo']['kl']:.2f} | {ev['latent']['active_units']}/{ev['latent']['latent_dim']} | {epochs} | {secs:.0f} s | "
              f"{PUBLISHED.get(name, '—')} |")
    print()
    print("| run | model, options | test BCE / image (nats) | test squared error / image | penalty on test | epochs | train time |")
    print("|---|---|---|---|---|---|---|")
    for name in AES:
        run = base / name
        if not (run / "model.safetensors").is_file():
            print(f"| {name} | (not run) ||||||")
            continue
        loaded = vaekit.load_run(run)
        test = open_data(loaded.config.data).test
        with torch.no_grad():
            recon = torch.cat([loaded.model.reconstruct(test.x[i : i + 2000]) for i in range(0, len(test), 2000)])
        err = reconstruction_errors(test.x, recon)
        epochs, secs, last = _metrics(run)
        pen = [f"{k[5:]} {v:.3f}" for k, v in last.items() if k.startswith("test_") and k[5:] not in ("loss", "recon", "kl")]
        print(f"| {name} | {WHAT[name]} | {err['bce']:.2f} | {err['mse']:.2f} | {', '.join(pen) or '—'} | "
              f"{epochs} | {secs:.0f} s |")


if __name__ == "__main__":
    main(*sys.argv[1:])
