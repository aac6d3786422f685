"""The ONNX decoder in onnxruntime vs vaekit's PyTorch decode, side by side; export times per preset.

Decode: the shipped models (``pretrained:keras-conv``, ``pretrained:pytorch-example``) are exported,
then the same batch of codes z (batch 1 and 256) is decoded to E[x|z] by

* ``onnxruntime`` - ``decoder.onnx`` in an ``InferenceSession`` (CPU provider), ``run(["mean"], ...)``;
* ``pytorch``     - ``model.decode(z)`` (no grad, eval mode), what ``vaekit sample`` does.

Both at the same thread count (``--threads``, default 1: this machine has 2 cores and one is busy).
The two alternate: each round times ``--reps`` calls of one method then of the other, the order
flipping every round, so drift in machine load hits both alike. Reported: the median seconds per
call over the rounds with the interquartile range, and images per second from the median.

Export: ``vaekit export RUN --format onnx`` (a fresh process, import included; wall and CPU
seconds, the CPU time being what the wall time is when nothing else runs on the core) for the
shipped models, and the in-process export + onnxruntime verification of every preset's model (untrained,
verified on 256 MNIST test images).

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/bench_onnx.py --out benchmarks/results/onnx.json
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

import vaekit
from _common import print_table, write_json

MODELS = ["keras-conv", "pytorch-example"]
BATCHES = [1, 256]


def spread(seconds: list[float]) -> dict[str, float | list[float]]:
    q = statistics.quantiles(seconds, n=4) if len(seconds) > 1 else [seconds[0]] * 3
    return {"median": statistics.median(seconds), "p25": q[0], "p75": q[2], "min": min(seconds),
            "max": max(seconds), "seconds": seconds}


def readme_table(results: dict) -> str:
    """The README's Markdown table from the JSON (tests/export/test_readme_onnx.py checks they agree)."""
    def rate(r: dict, batch: int) -> str:  # images/s at the median, and at the quartiles of the time
        return f"{batch / r['median']:,.0f} ({batch / r['p75']:,.0f}–{batch / r['p25']:,.0f})"

    lines = ["| model | batch | onnxruntime, images/s (IQR) | PyTorch decode, images/s (IQR) | speed-up |",
             "|---|---|---|---|---|"]
    for name, by in results["decode"].items():
        for batch, r in by.items():
            b = int(batch)
            lines.append(f"| `pretrained:{name}` | {b} | {rate(r['onnxruntime'], b)} | {rate(r['pytorch'], b)} "
                         f"| {r['speedup']:.2f}x |")
    cli = ", ".join(f"`{n}` {r['seconds']:.1f} s ({r['cpu_seconds']:.1f} s CPU)" for n, r in results["cli_export"].items())
    slowest = max((r["seconds"], n) for n, r in results["presets"].items() if "seconds" in r)
    lines += ["", f"`vaekit export pretrained:NAME --format onnx` in a fresh process, import and verification "
                  f"included: {cli}. Export + verification of every preset's model in process: at most "
                  f"{slowest[0]:.1f} s (`{slowest[1]}`)."]
    return "\n".join(lines)


def time_calls(fn, reps: int) -> float:
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps


def bench_decode(name: str, rounds: int, threads: int, tmp: Path) -> dict:
    import onnxruntime as ort

    from vaekit.export.onnx import export_onnx

    run = vaekit.load_run(f"pretrained:{name}")
    export_onnx(run, tmp / name, log=lambda s: None)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(tmp / name / "decoder.onnx"), opts, providers=["CPUExecutionProvider"])
    out: dict = {}
    for batch in BATCHES:
        z = torch.randn(batch, run.model.latent_dim, generator=torch.Generator().manual_seed(0))
        zn = z.numpy()
        methods = {"onnxruntime": lambda: session.run(["mean"], {"z": zn}), "pytorch": lambda: run.model.decode(z)}
        diff = float((torch.from_numpy(methods["onnxruntime"]()[0]) - methods["pytorch"]()).abs().max())
        reps = max(1, int(0.25 / max(time_calls(methods["pytorch"], 3), 1e-6)))  # ~0.25 s per timing
        for fn in methods.values():  # warm-up
            time_calls(fn, reps)
        seconds: dict[str, list[float]] = {k: [] for k in methods}
        for r in range(rounds):
            order = list(methods) if r % 2 == 0 else list(reversed(methods))
            for k in order:
                seconds[k].append(time_calls(methods[k], reps))
        res = {k: spread(v) for k, v in seconds.items()}
        for k in res:
            res[k]["images_per_s"] = batch / res[k]["median"]
        res["speedup"] = res["pytorch"]["median"] / res["onnxruntime"]["median"]
        res["max_abs_diff"] = diff
        res["reps"] = reps
        out[str(batch)] = res
    return out


def bench_cli_export(name: str, tmp: Path) -> dict:
    start, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-m", "vaekit", "export", f"pretrained:{name}", "--format", "onnx",
                           "-o", str(tmp / f"cli-{name}")], capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # CPU time: what the wall time is on an idle core
    cpu_seconds = after.ru_utime - cpu.ru_utime + after.ru_stime - cpu.ru_stime
    meta = json.loads((tmp / f"cli-{name}" / "vaekit-onnx.json").read_text())
    diffs = meta["verification"]["max_abs_diff"]
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "max_abs_diff": max(v for d in diffs.values() for v in d.values()),
            "output": proc.stdout.strip().splitlines()}


def bench_presets(tmp: Path) -> dict:
    from vaekit.export.onnx import ExportRefused, export_onnx
    from vaekit.models import build

    x = vaekit.open_data(vaekit.DataConfig(source="mnist")).test.x[:256]
    out = {}
    for preset in vaekit.preset_names():
        cfg = vaekit.resolve(preset)
        torch.manual_seed(0)
        run = vaekit.Run(dir=tmp, config=cfg, model=build(cfg.model, (1, 28, 28)).eval())
        start = time.perf_counter()
        try:
            meta = export_onnx(run, tmp / f"preset-{preset}", inputs=x, log=lambda s: None)
        except ExportRefused as err:
            out[preset] = {"refused": str(err)}
            continue
        diffs = meta["verification"]["max_abs_diff"]
        out[preset] = {"seconds": time.perf_counter() - start,
                       "max_abs_diff": max(v for d in diffs.values() for v in d.values())}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=15, help="alternating rounds per method and batch")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", help="write the results as JSON here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cli = {name: bench_cli_export(name, tmp) for name in MODELS}
        presets = bench_presets(tmp)
        decode = {name: bench_decode(name, args.rounds, args.threads, tmp) for name in MODELS}
    rows = [[name, batch, f"{r['onnxruntime']['images_per_s']:,.0f}", f"{r['pytorch']['images_per_s']:,.0f}",
             f"{r['speedup']:.2f}x", f"{r['max_abs_diff']:.1e}"]
            for name, by in decode.items() for batch, r in by.items()]
    print_table(["model", "batch", "onnxruntime img/s", "pytorch img/s", "ort speed-up", "max |diff|"], rows)
    print_table(["run", "vaekit export, fresh process: wall s", "CPU s", "max |diff|"],
                [[n, f"{r['seconds']:.1f}", f"{r['cpu_seconds']:.1f}", f"{r['max_abs_diff']:.1e}"] for n, r in cli.items()])
    print_table(["preset", "export + verify (s, in process)", "max |diff|"],
                [[n, "refused" if "refused" in r else f"{r['seconds']:.2f}",
                  "-" if "refused" in r else f"{r['max_abs_diff']:.1e}"] for n, r in presets.items()])
    payload = {
        "benchmark": "onnx",
        "settings": {"threads": args.threads, "rounds": args.rounds, "batches": BATCHES, "torch": torch.__version__,
                     "onnxruntime": ort.__version__, "python": platform.python_version(),
                     "machine": platform.machine(), "vaekit": vaekit.__version__},
        "decode": decode, "cli_export": cli, "presets": presets,
    }
    print(readme_table(payload))
    write_json(args.out, payload)


if __name__ == "__main__":
    main()
