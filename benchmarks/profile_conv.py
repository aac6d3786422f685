"""Per-layer milliseconds of one ``keras-conv`` training step: forward and backward of every layer.

Runs one real step to capture, for every leaf layer, its input, its output and the gradient that
reaches its output (in the memory formats the model really produces), then times each layer alone:
forward, and forward + backward (``torch.autograd.grad`` w.r.t. its input when the model needs it
and its parameters); backward = the difference. Layers are timed round-robin, ``--rounds`` times,
so load from other processes hits every layer alike; the tables show medians. By default the clock
is the thread's CPU time, which time-slicing with other processes does not inflate. "before" is
the model built with torch's own layers (``vaekit.nn.conv.reference_layers``), "after" vaekit's.
Then whole training steps, alternating: torch's or vaekit's layers, with glibc's malloc defaults
or with ``vaekit.memory.keep_freed_memory`` (what ``vaekit.train`` uses).

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/profile_conv.py --rounds 10 \
        --out benchmarks/results/profile-conv.json

``--keras N`` adds the same layers in TensorFlow (``_keras_layers.py`` in the TensorFlow venv) and
a whole training step of each library, alternating N times between this process and a TensorFlow
child, all on the wall clock (TensorFlow runs its ops on pool threads; pin the process to one
core): per layer, vaekit's convolution plus its activation against Keras's layer (which applies
its activation itself), medians over the alternations.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Callable

import torch
from torch import nn

import vaekit
from _common import HERE, VENV_ROOT, keras_python, run_child, write_json
from vaekit.memory import keep_freed_memory
from vaekit.models import build
from vaekit.nn.conv import fast_layers, reference_layers

BATCH = 128
STEPS = 3


def batch(seed: int = 0) -> torch.Tensor:
    """128 MNIST-like images: a real batch of the embedded MNIST (pixels in [0, 1])."""
    from vaekit.data import open_data

    data = open_data(vaekit.resolve("keras-conv").data)
    g = torch.Generator().manual_seed(seed)
    return data.train.x[torch.randperm(len(data.train), generator=g)[:BATCH]].float()


def leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if not list(m.children()) and n]


def capture(model: nn.Module, x: torch.Tensor) -> dict[str, tuple]:
    """One forward + backward; for every leaf layer: (input, output, gradient at the output)."""
    seen: dict[str, list] = {}
    hooks = []
    for name, m in leaves(model):
        def fwd(mod, inp, out, name=name):
            seen[name] = [inp[0].detach(), out, None]
            out.register_hook(lambda g, name=name: seen[name].__setitem__(2, g.detach()))
        hooks.append(m.register_forward_hook(fwd))
    model(x, None).loss.backward()
    for h in hooks:
        h.remove()
    model.zero_grad(set_to_none=True)
    return {n: (i, o.detach(), g) for n, (i, o, g) in seen.items() if g is not None}


def layer_fns(model: nn.Module, cap: dict[str, tuple], needs_input_grad: set[str]) -> dict[str, tuple]:
    """name -> (forward fn, forward+backward fn)."""
    mods = dict(leaves(model))
    fns = {}
    for name, (inp, _, g) in cap.items():
        m = mods[name]
        x = inp.clone().requires_grad_(name in needs_input_grad)
        wrt = ([x] if x.requires_grad else []) + [p for p in m.parameters()]
        # An in-place activation needs a non-leaf input: x * 1 (its cost is timed and subtracted).
        inplace = getattr(m, "inplace", False)

        def fwd(m=m, x=x, inplace=inplace) -> None:
            with torch.no_grad():
                m(x.clone() if inplace else x)

        def both(m=m, x=x, wrt=wrt, g=g, inplace=inplace) -> None:
            if wrt:
                torch.autograd.grad(m(x * 1 if inplace else x), wrt, g)

        fns[name] = (fwd, both)
        if inplace:  # what the in-place layer's timings include on top of the layer itself
            fns[name + "/copy"] = (lambda x=x: x.clone(), lambda x=x, g=g: torch.autograd.grad(x * 1, [x], g))
    return fns


def race(fns: dict[str, Callable[[], None]], rounds: int, clock: Callable[[], float]) -> dict[str, list[float]]:
    """Call every fn once per round, in turn; ms per call per round."""
    for f in fns.values():
        f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            t = clock()
            f()
            times[k].append((clock() - t) * 1e3)
    return times


def profile(model: nn.Module, x: torch.Tensor, rounds: int, clock: Callable[[], float]) -> list[dict]:
    """Per layer: forward and backward ms (medians over rounds), in-place copies subtracted."""
    cap = capture(model, x)
    first = leaves(model)[0][0]  # the encoder's first layer: the data needs no gradient
    fns = layer_fns(model, cap, {n for n in cap if n != first})
    flat = {f"{n}/f": f for n, (f, _) in fns.items()} | {f"{n}/fb": b for n, (_, b) in fns.items()}
    t = race(flat, rounds, clock)
    med = {k: statistics.median(v) for k, v in t.items()}
    mods = dict(leaves(model))
    rows = []
    for n in mods:
        if n not in cap:
            continue
        f, fb = med[f"{n}/f"], med[f"{n}/fb"]
        if f"{n}/copy/f" in med:
            f, fb = f - med[f"{n}/copy/f"], fb - med[f"{n}/copy/fb"]
        m = mods[n]
        kind = type(m).__module__.split(".")[0] + "." + type(m).__name__
        rows.append({"layer": n, "type": kind + (" (in place)" if getattr(m, "inplace", False) else ""),
                     "forward_ms": round(f, 3), "backward_ms": round(fb - f, 3)})
    return rows


def step_fn(model: nn.Module, x: torch.Tensor, keep: bool) -> Callable[[], None]:
    """One training step as vaekit.train takes it (fused Adam), with or without keep_freed_memory."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7, fused=True)

    def step() -> None:
        with keep_freed_memory(keep):
            for _ in range(STEPS):  # several steps per switch of the malloc policy
                loss = model(x, None).loss
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

    return step


def table(rows: list[dict]) -> str:
    lines = ["| layer | type | forward ms | backward ms |", "|---|---|---|---|"]
    lines += [f"| {r['layer']} | {r['type']} | {r['forward_ms']:.2f} | {r['backward_ms']:.2f} |" for r in rows]
    lines.append(f"| sum | | {sum(r['forward_ms'] for r in rows):.2f} | {sum(r['backward_ms'] for r in rows):.2f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                    help="cpu: this thread's CPU time (robust to other processes; 1 thread only); wall")
    ap.add_argument("--out", default=None, help="write the tables as JSON here")
    ap.add_argument("--keras", type=int, default=0, metavar="N",
                    help="also time Keras/TensorFlow's layers and step, alternating N times (wall clock)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    clock = time.thread_time if args.clock == "cpu" else time.perf_counter
    if args.clock == "cpu" and args.threads != 1:
        raise SystemExit("--clock cpu measures one thread: use --threads 1, or --clock wall")
    cfg = vaekit.resolve("keras-conv").model
    x = batch()
    torch.manual_seed(0)
    with fast_layers():
        model = build(cfg, (1, 28, 28))
    with reference_layers():
        torch.manual_seed(0)
        ref = build(cfg, (1, 28, 28))
    with keep_freed_memory():  # per layer: both with the trainer's malloc policy
        layers = {"before": profile(ref, x, args.rounds, clock), "after": profile(model, x, args.rounds, clock)}
    head = f"keras-conv, batch {BATCH}, {args.threads} thread(s), {args.clock} time, median of {args.rounds} rounds"
    for k, rows in layers.items():
        print(f"{head}, {k} (ms per step)\n{table(rows)}\n")
    variants = {"torch layers, glibc malloc defaults (before)": step_fn(ref, x, False),
                "torch layers, keep_freed_memory": step_fn(ref, x, True),
                "conv_ops layers, glibc malloc defaults": step_fn(model, x, False),
                "conv_ops layers, keep_freed_memory (after)": step_fn(model, x, True)}
    t = race(variants, args.rounds, clock)
    steps = {k: {"median_ms": round(statistics.median(v) / STEPS, 2), "min_ms": round(min(v) / STEPS, 2)}
             for k, v in t.items()}
    print(f"whole training step (forward, backward, fused Adam), alternating, {STEPS} steps per turn:")
    for k, v in steps.items():
        print(f"  {k:48s} median {v['median_ms']:7.2f} ms  min {v['min_ms']:7.2f} ms")
    settings = {"threads": args.threads, "rounds": args.rounds, "clock": args.clock, "batch": BATCH,
                "torch": torch.__version__, "loadavg": os.getloadavg()}
    result = {"benchmark": "profile-conv", "settings": settings, "layers": layers, "steps": steps}
    if args.keras:
        result["vs_keras"] = vs_keras(model, x, args)
    write_json(args.out, result)


KERAS_LAYERS = {  # Keras's layer (activation included) -> vaekit's convolution and its activation
    "encoder.conv.0": ["encoder.conv.0", "encoder.conv.1"],
    "encoder.conv.2": ["encoder.conv.2", "encoder.conv.3"],
    "decoder.deconv.0": ["decoder.deconv.0", "decoder.deconv.1"],
    "decoder.deconv.2": ["decoder.deconv.2", "decoder.deconv.3"],
    "decoder.deconv.4": ["decoder.deconv.4"],  # vaekit's loss takes logits: no sigmoid layer
}


def vs_keras(model: nn.Module, x: torch.Tensor, args: argparse.Namespace) -> dict:
    """The five convolution layers and a whole step, vaekit (this process) against TensorFlow (a
    child), alternating ``args.keras`` times, wall clock; medians over the alternations."""
    py = keras_python(VENV_ROOT / "tf")
    step = step_fn(model, x, True)
    ours: list[dict] = []
    theirs: list[dict] = []
    for turn in range(args.keras):
        print(f"[vs keras {turn + 1}/{args.keras}] vaekit, then keras", flush=True)
        with keep_freed_memory():
            rows = {r["layer"]: r for r in profile(model, x, args.rounds, time.perf_counter)}
            steps = race({"step": step}, args.rounds, time.perf_counter)["step"]
        ours.append({"layers": {k: {"forward_ms": sum(rows[n]["forward_ms"] for n in names),
                                    "backward_ms": sum(rows[n]["backward_ms"] for n in names)}
                                for k, names in KERAS_LAYERS.items()},
                     "step_ms": statistics.median(steps) / STEPS})
        res = run_child(py, HERE / "_keras_layers.py", ["--rounds", str(args.rounds), "--threads", str(args.threads)],
                        args.threads)
        theirs.append({"layers": {r["layer"]: r for r in res["layers"]}, "step_ms": res["step_ms"]})
        versions = {"tensorflow": res["tensorflow"], "keras": res["keras"]}
    med = lambda runs, *keys: round(statistics.median(_dig(r, keys) for r in runs), 3)  # noqa: E731
    layers = [{"layer": k, "vaekit": {"forward_ms": med(ours, "layers", k, "forward_ms"),
                                      "backward_ms": med(ours, "layers", k, "backward_ms")},
               "keras": {"forward_ms": med(theirs, "layers", k, "forward_ms"),
                         "backward_ms": med(theirs, "layers", k, "backward_ms")}} for k in KERAS_LAYERS]
    out = {"clock": "wall", "alternations": args.keras, "rounds_each": args.rounds, **versions, "layers": layers,
           "step_ms": {"vaekit": med(ours, "step_ms"), "keras": med(theirs, "step_ms")},
           "runs": {"vaekit": ours, "keras": theirs}}
    for side in ("vaekit", "keras"):
        conv = sum(r[side]["forward_ms"] + r[side]["backward_ms"] for r in layers)
        out[f"{side}_conv_layers_ms"] = round(conv, 3)
        print(f"{side}: five conv layers {conv:.2f} ms of a {out['step_ms'][side]:.2f} ms step")
    print("| layer | vaekit fwd | keras fwd | vaekit bwd | keras bwd |\n|---|---|---|---|---|")
    for r in layers:
        print(f"| {r['layer']} | {r['vaekit']['forward_ms']:.2f} | {r['keras']['forward_ms']:.2f} | "
              f"{r['vaekit']['backward_ms']:.2f} | {r['keras']['backward_ms']:.2f} |")
    return out


def _dig(d: dict, keys: tuple) -> float:
    for k in keys:
        d = d[k]
    return d


if __name__ == "__main__":
    main()
