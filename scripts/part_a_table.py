"""Print the README table of the part-A runs (scripts/part_a_runs.sh) as Markdown."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

import vaekit
from vaekit.data import open_data
from vaekit.metrics.probes import reconstruction_errors

PUBLISHED = {"iwae-k5": "85.54 (k=5)", "vamp": "85.57", "vae": "86.76"}
VAES = ["vae", "warmup-lin", "warmup-cyc", "freebits", "capacity", "iwae-k5", "vamp"]
AES = ["ae", "dae", "sparse-ae", "cae"]


def _metrics(run: Path) -> tuple[int, float, dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return rows[-1]["epoch"], sum(r["seconds"] for r in rows), rows[-1]


def main(root: str = "runs/part-a") -> None:
    torch.set_num_threads(1)
    base = Path(root)
    print("| run | model | test NLL, IS k=1000 (nats) | test -ELBO | KL | active units / 50 | epochs | train time | published NLL |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in VAES:
        run = base / name
        if not (run / "evaluation.json").is_file():
            print(f"| {name} | (not run) |||||||")
            continue
        ev = json.loads((run / "evaluation.json").read_text())
        epochs, secs, _ = _metrics(run)
        nll = ev["nll"]
        print(f"| {name} | `{ev['model']}` | {nll['value']:.2f} ± {nll['se']:.2f} | {ev['elbo']['neg_elbo']:.2f} | "
              f"{ev['elbo']['kl']:.2f} | {ev['latent']['active_units']} | {epochs} | {secs:.0f} s | "
              f"{PUBLISHED.get(name, '—')} |")
    print()
    print("| run | model | test BCE / image (nats) | test squared error / image | penalty (test) | epochs | train time |")
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
        print(f"| {name} | `{loaded.config.model.name}` | {err['bce']:.2f} | {err['mse']:.2f} | {', '.join(pen) or '—'} | "
              f"{epochs} | {secs:.0f} s |")


if __name__ == "__main__":
    main(*sys.argv[1:])
