"""Streaming from memory-mapped .npy files: peak RSS and seconds per epoch, and MNIST stream vs memory.

Part 1 writes synthetic uint8 memmaps of the given sizes (rows of 784 bytes, like MNIST) and trains
the pytorch-example MLP VAE for one epoch on each with ``data.stream=on``, each run in a fresh child
process, reporting the child's peak RSS (``VmHWM``) and the epoch's training seconds: RSS should
stay flat as the file grows. (Not ``ru_maxrss``: after fork + exec it also holds the parent's
high-water mark, and this parent has just written the file.) Part 2 trains one epoch on the 60k MNIST training images from a
memmap and from memory (``data.stream=off``) and prints the ratio of epoch seconds (target <= 1.3).

Full run (needs ~4 GB of disk in --dir: each file is deleted after its run; run on a quiet machine):

    OMP_NUM_THREADS=1 python benchmarks/bench_stream.py --sizes-gb 0.1 1 4 --threads 1 --dir /tmp/vaekit-bench

Smoke test:  python benchmarks/bench_stream.py --sizes-gb 0.005 --mnist-limit 3000 --threads 1
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROW = 784  # bytes per row: a 28 x 28 uint8 image


def child(args: argparse.Namespace) -> None:
    """Train one epoch (in this process) and print seconds and peak RSS as one JSON line."""
    import torch

    import vaekit

    torch.set_num_threads(args.threads)
    cfg = vaekit.resolve("pytorch-example", overrides=[{
        "data": {"source": "arrays", "path": args.child, "stream": args.stream},
        "train": {"epochs": 1, "batch_size": 128, "progress": False, "tensorboard": False, "threads": args.threads,
                  "eval_every": 0},
    }])
    start = time.perf_counter()
    run = vaekit.train(cfg, Path(args.out), overwrite=True, log=lambda m: None)
    total = time.perf_counter() - start
    print(json.dumps({"epoch_s": run.metrics[-1]["seconds"], "total_s": round(total, 2), "peak_rss_mb": round(peak_rss_mb(), 1)}))


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM), in MB.

    ``getrusage(RUSAGE_SELF).ru_maxrss`` would be wrong here: at exec the kernel folds the forked
    parent's high-water mark into it (Linux ``setmax_mm_hiwater_rss``), so a child of a parent that
    just wrote a 4 GB memmap reports ~4 GB whatever it does itself. ``VmHWM`` is the new image's own.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: the best there is


def run_child(path: Path, stream: str, threads: int, out: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", str(path), "--stream", stream, "--threads", str(threads), "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def synthetic(path: Path, gb: float) -> Path:
    """A uint8 (N, 784) .npy of ~gb GB, written block by block with plain writes (never all in
    memory, and no mapping that would leave the file's pages in this process's RSS)."""
    n = max(1024, int(gb * 1e9) // ROW)
    rng = np.random.default_rng(0)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (n, ROW)})
        for i in range(0, n, 65536):
            f.write(rng.integers(0, 256, size=(min(65536, n - i), ROW), dtype=np.uint8).tobytes())
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes-gb", type=float, nargs="+", default=[0.1, 1.0, 4.0])
    p.add_argument("--mnist-limit", type=int, default=60000, help="MNIST training images for part 2")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--dir", help="where the memmaps go (default: a temporary folder, deleted after)")
    p.add_argument("--json", help="also write the results here as JSON (e.g. benchmarks/results/stream.json)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--stream", default="on", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    if args.dir:
        Path(args.dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        print(f"{'data':>22s} {'mode':>7s} {'epoch s':>9s} {'total s':>9s} {'peak RSS MB':>12s}")
        table: list[dict] = []
        for gb in args.sizes_gb:
            path = synthetic(root / f"synthetic_{gb}gb.npy", gb)
            r = run_child(path, "on", args.threads, root / "run")
            path.unlink()
            print(f"{f'synthetic {gb} GB':>22s} {'stream':>7s} {r['epoch_s']:9.2f} {r['total_s']:9.2f} {r['peak_rss_mb']:12.1f}")
            table.append({"data": f"synthetic {gb} GB", "mode": "stream", **r})
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _common import load_mnist, write_json

        np.save(root / "mnist.npy", load_mnist()["x_train"][: args.mnist_limit])
        res = {}
        for mode in ("off", "on"):
            res[mode] = run_child(root / "mnist.npy", mode, args.threads, root / "run")
            label = "memory" if mode == "off" else "stream"
            r = res[mode]
            print(f"{f'MNIST {args.mnist_limit}':>22s} {label:>7s} {r['epoch_s']:9.2f} {r['total_s']:9.2f} {r['peak_rss_mb']:12.1f}")
            table.append({"data": f"MNIST {args.mnist_limit}", "mode": label, **r})
        ratio = res["on"]["epoch_s"] / res["off"]["epoch_s"]
        print(f"stream / memory epoch time: {ratio:.2f}x (target <= 1.3x)")
    write_json(args.json, {"benchmark": "stream", "settings": {"threads": args.threads, "sizes_gb": args.sizes_gb,
                                                               "mnist_limit": args.mnist_limit, "peak_rss": "VmHWM"},
                           "rows": table, "stream_over_memory": round(ratio, 3)})


if __name__ == "__main__":
    main()
