"""The ``vaekit`` command: parse arguments, call the library, print. Nothing else lives here."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from .errors import VaekitError


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2), not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"vaekit: error: {message} (see '{self.prog} --help')\n")


def _count(text: str) -> int:
    """argparse type: a whole number >= 1 (a bad value is a one-line usage error, exit 2)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _natural(text: str) -> int:
    """argparse type: a whole number >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


# Flag -> config key, for the flags that set one config value each.
FLAG_KEYS = {
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "lr": "train.lr",
    "seed": "train.seed",
    "device": "train.device",
    "latent_dim": "model.latent_dim",
    "beta": "model.beta",
    "likelihood": "model.likelihood",
    "kl": "model.kl",
    "samples": "model.samples",
    "model": "model.name",
    "data": "data.source",
    "data_path": "data.path",
    "limit": "data.limit",
    "binarize": "data.binarize",
    "stream": "data.stream",
    "precision": "train.precision",
    "channels_last": "train.channels_last",
    "compile": "train.compile",
}


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vaekit", description="Variational autoencoders: train, evaluate, sample, reconstruct.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    t = sub.add_parser("train", help="train a model and write a run folder")
    t.add_argument("--preset", help="a named preset (see 'vaekit presets'); default pytorch-example")
    t.add_argument("--config", help="a TOML, YAML or JSON config file")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key, e.g. model.beta=4")
    t.add_argument("--out", help="the run folder (default runs/<preset>, numbered when it exists)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--seed", type=int)
    t.add_argument("--device", help="auto, cpu or cuda")
    t.add_argument("--model", help="a registered model name (default vae)")
    t.add_argument("--latent-dim", type=int)
    t.add_argument("--beta", type=float, help="weight of the KL term")
    t.add_argument("--likelihood", help="bernoulli, gaussian or gaussian-learned")
    t.add_argument("--kl", help="analytic (SGVB estimator B) or mc (estimator A)")
    t.add_argument("--samples", type=int, help="posterior samples L per datapoint")
    t.add_argument("--data", help="mnist, digits, folder, arrays or csv")
    t.add_argument("--data-path", help="image folder, .npy/.npz file or folder of .npy shards, or .csv table")
    t.add_argument("--limit", type=int, help="train on the first N examples only")
    t.add_argument("--binarize", help="none, threshold, static or dynamic")
    t.add_argument("--stream", action="store_const", const="on",
                   help="stream a .npy / folder of .npy shards from disk (default: when it exceeds half the RAM)")
    t.add_argument("--nproc", type=int, help="data-parallel processes on this machine (starts torchrun; see README)")
    t.add_argument("--bf16", dest="precision", action="store_const", const="bf16", help="CUDA: bf16 autocast")
    t.add_argument("--channels-last", action="store_const", const=True, help="CUDA: channels-last memory layout")
    t.add_argument("--compile", action="store_const", const=True, help="CUDA: torch.compile the model")

    e = sub.add_parser("evaluate", help="negative ELBO, importance-sampled NLL and latent diagnostics of a run")
    e.add_argument("run")
    e.add_argument("--split", choices=["test", "val", "train"], help="default: test, else val, else train")
    e.add_argument("--k", type=_natural, default=1000, help="importance samples per datapoint for the NLL (0: skip it)")
    e.add_argument("--samples", type=_count, default=1, help="posterior samples per datapoint for the ELBO")
    e.add_argument("--batch-size", type=_count, default=100, help="images per importance-sampling batch")
    e.add_argument("--limit", type=_count, help="evaluate the first N examples of the split only")
    e.add_argument("--discretized", action="store_true", help="Gaussian likelihoods: NLL of 8-bit pixels and bits/dim")
    e.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--device", default="cpu")

    s = sub.add_parser("sample", help="decode draws from the prior into an image grid")
    s.add_argument("run")
    s.add_argument("-n", type=_count, default=64, help="how many samples")
    s.add_argument("-o", "--out", default="samples.png")
    s.add_argument("--temperature", type=float, default=1.0, help="scale of the prior draws")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--label", type=int, help="conditional models (cvae): draw this class only")

    g = sub.add_parser("gradvar", help="variance of score-function vs reparameterised ELBO gradients (encoder)")
    g.add_argument("run")
    g.add_argument("--batch-size", type=_count, default=100, help="test images in the batch")
    g.add_argument("--draws", type=int, default=100, help="one-sample gradient draws per estimator")
    g.add_argument("--split", choices=["test", "val", "train"])
    g.add_argument("--seed", type=int, default=0)

    r = sub.add_parser("reconstruct", help="originals above their reconstructions, as an image grid")
    r.add_argument("run")
    r.add_argument("-n", type=_count, default=32, help="how many images (a multiple of 8)")
    r.add_argument("-o", "--out", default="reconstructions.png")
    r.add_argument("--split", choices=["test", "val", "train"])

    c = sub.add_parser("compare", help="VAE vs autoencoder vs PCA: reconstruction, probes, FID and IS")
    c.add_argument("--runs", nargs="+", metavar="RUN", help="compare these run folders instead of training")
    c.add_argument("--preset", default="pytorch-example", help="the preset both models train from")
    c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a key for VAE and AE")
    c.add_argument("--latent-dim", type=int)
    c.add_argument("--epochs", type=int)
    c.add_argument("--limit", type=int, help="use the first N training examples only")
    c.add_argument("--out", default="runs/compare", help="folder for the runs and comparison.json/.md")
    c.add_argument("--overwrite", action="store_true", help="replace runs already in --out")
    c.add_argument("--k", type=int, default=5, help="neighbours for the kNN accuracy")
    c.add_argument("--n-samples", type=int, default=10000, help="generated images per model for FID / IS")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")

    m = sub.add_parser("embed", help="write a run's latent codes (mu, logvar) and labels to an .npz")
    m.add_argument("run")
    m.add_argument("--split", choices=["test", "val", "train"], default="test")
    m.add_argument("-o", "--out", default="latents.npz")

    v = sub.add_parser("plot", help="pictures of what a model learned, into RUN/plots/*.png")
    v.add_argument("run")
    v.add_argument("names", nargs="*", metavar="NAME",
                   help="samples reconstructions curves manifold scatter interpolation traversal kl histogram "
                        "(default: all that apply)")
    v.add_argument("-o", "--out-dir", help="where to write the PNGs (default RUN/plots)")
    v.add_argument("--temperature", type=float, default=1.0, help="samples: scale of the prior draws")
    v.add_argument("-n", type=_count, default=64, help="samples: how many")
    v.add_argument("--steps", type=int, help="manifold tiles per axis (default 20); interpolation/traversal steps (10)")
    v.add_argument("--range", type=float, default=2.0, help="manifold/traversal span: +-RANGE standard deviations")
    v.add_argument("--dims", type=int, nargs=2, metavar=("I", "J"), help="manifold plane: two latent dimensions "
                   "(default: z itself when d = 2, else the test codes' two leading principal directions)")
    v.add_argument("--traverse", type=int, nargs="+", metavar="D", help="traversal: latent dimensions to vary")
    v.add_argument("--method", choices=["pca", "tsne"], default="pca", help="scatter for d > 2")
    v.add_argument("--pair", type=int, nargs=2, default=[0, 1], metavar=("A", "B"),
                   help="interpolation: two image indices in the test split")
    v.add_argument("--index", type=int, default=0, help="traversal: the image whose code is held fixed")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--device", default="cpu")

    sc = sub.add_parser("score", help="per-row anomaly scores (negative ELBO, gaps filled by their expected cost) of a CSV under a table-trained run")
    sc.add_argument("run")
    sc.add_argument("--data", required=True, help="the CSV to score (the training columns, any rows)")
    sc.add_argument("-o", "--out", default="scores.csv")
    sc.add_argument("--samples", type=_count, default=10, help="posterior draws per row")
    sc.add_argument("--seed", type=int, default=0)

    h = sub.add_parser("report", help="one self-contained HTML page of a run: RUN/report.html")
    h.add_argument("run")
    h.add_argument("-o", "--out", help="the HTML file (default RUN/report.html)")
    h.add_argument("--no-plots", action="store_true", help="only embed plots already on disk; draw none")

    sub.add_parser("presets", help="list the named presets")
    for module in COMMAND_MODULES:  # commands that live beside their library code
        import importlib

        name, handler = importlib.import_module(module).add_command(sub)
        COMMANDS[name] = handler
    return p


def _overrides(args: argparse.Namespace) -> list[dict[str, Any]]:
    from .config import parse_override

    out = [parse_override(item) for item in args.set]
    for flag, key in FLAG_KEYS.items():
        value = getattr(args, flag, None)
        if value is not None:
            section, name = key.split(".")
            out.append({section: {name: value}})
    if args.no_progress:
        out.append({"train": {"progress": False}})
    return out


def cmd_train(args: argparse.Namespace) -> int:
    from . import config as C
    from .train import train

    if args.resume and not args.out:
        raise VaekitError("--resume needs --out RUN: the run folder to continue")
    from .distributed import env, launch

    if args.nproc is not None and env().world == 1 and "WORLD_SIZE" not in os.environ:
        return launch(args.nproc, args.argv)  # torchrun re-runs this command line on every rank
    if args.resume and not (args.preset or args.config):
        # Continue with the run's own config; flags may still extend it (e.g. --epochs).
        saved = C.load_json(Path(args.out) / "config.json").to_dict()
        raw = saved
        for over in _overrides(args):
            raw = C.merge(raw, over)
        cfg = C.Config.from_dict(raw)
    else:
        preset = args.preset if (args.preset or args.config) else "pytorch-example"
        cfg = C.resolve(preset=preset, file=args.config, overrides=_overrides(args))
    run = train(cfg, args.out, resume=args.resume, overwrite=args.overwrite)
    if not env().is_main:
        return 0  # rank 0 reports for the job
    final = run.metrics[-1] if run.metrics else {}
    summary = {k: round(v, 4) for k, v in final.items() if k.endswith(("_loss", "_recon", "_kl"))}
    print(f"wrote {run.dir}")
    if summary:
        print(json.dumps(summary))
    return 0


def _split(run: Any, name: str | None) -> tuple[str, Any]:
    from .data import open_data

    data = open_data(run.config.data)
    if name is None:
        return ("test", data.test) if data.test is not None else data.eval_split
    split = getattr(data, name)
    if split is None:
        raise VaekitError(f"--split {name}: this run's data has no {name} split")
    return name, split


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_run, format_report

    report = evaluate_run(args.run, split=args.split, limit=args.limit, device=args.device, k=args.k,
                          samples=args.samples, batch_size=args.batch_size, seed=args.seed,
                          discretize=args.discretized, progress=not args.no_progress)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import torch

    from .run import load
    from .viz import save_grid

    model = load(args.run)
    extra = {}
    if args.label is not None:
        if getattr(model, "num_classes", None) is None:
            raise VaekitError(f"--label: a '{model.name}' model is not conditional on labels (train a cvae)")
        extra["label"] = args.label
    torch.manual_seed(args.seed)
    print(f"wrote {save_grid(model.sample(args.n, args.temperature, **extra), args.out)}")
    return 0


def cmd_gradvar(args: argparse.Namespace) -> int:
    from .gradients import gradient_variance
    from .run import load_run

    run = load_run(args.run)
    name, split = _split(run, args.split)
    x = split.x[: args.batch_size]  # --batch-size >= 1 is enforced by argparse (_count)
    out = {"run": str(run.dir), "split": name, **gradient_variance(run.model, x, draws=args.draws, seed=args.seed)}
    print(json.dumps(out, indent=2))
    return 0


def cmd_reconstruct(args: argparse.Namespace) -> int:
    from .run import load_run
    from .viz import save_grid
    from .viz.grid import reconstruction_pairs

    run = load_run(args.run)
    _, split = _split(run, args.split)
    x = split.x[: args.n]
    print(f"wrote {save_grid(reconstruction_pairs(x, run.model.reconstruct(x)), args.out, nrow=8)}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare, markdown
    from .config import resolve

    cfg = None if args.runs else resolve(preset=args.preset, overrides=_overrides(args))
    result = compare(cfg, args.out, runs=args.runs, k=args.k, n_samples=args.n_samples, overwrite=args.overwrite)
    print(markdown(result), end="")
    print(f"wrote {Path(args.out) / 'comparison.json'} and comparison.md")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from .compare import save_embeddings

    shapes = save_embeddings(args.run, args.out, args.split)
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v}" for k, v in shapes.items()))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from .viz.catalog import PlotOptions, check_names, make_plots, open_context

    check_names(args.names)  # before the model and data are loaded
    opts = PlotOptions(temperature=args.temperature, n=args.n, steps=args.steps, range=args.range,
                       dims=tuple(args.dims) if args.dims else None, traverse=args.traverse, method=args.method,
                       pair=tuple(args.pair), index=args.index, seed=args.seed)
    out_dir = Path(args.out_dir) if args.out_dir else Path(args.run) / "plots"
    for o in make_plots(open_context(args.run, args.device), args.names or None, out_dir, opts):
        print(f"wrote {o.path}" if o.path else f"skipped {o.name}: {o.note}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .viz.catalog import PLOTS, make_plots, open_context
    from .viz.report import write_report

    notes = []
    missing = [n for n in PLOTS if not (Path(args.run) / "plots" / f"{n}.png").is_file()]
    if missing and not args.no_plots:  # draw the plots this run does not have yet
        for o in make_plots(open_context(args.run), missing, Path(args.run) / "plots"):
            if o.path is None:
                notes.append(f"{o.name}: skipped, {o.note}")
    print(f"wrote {write_report(args.run, args.out, notes)}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from .score import score_csv

    s = score_csv(args.run, args.data, args.out, samples=args.samples, seed=args.seed)
    top = (-s["score"]).argsort()[:5]  # nan (rows with no value) last
    empty = f" ({int((s['observed'] == 0).sum())} with no value: score nan)" if (s["observed"] == 0).any() else ""
    print(f"wrote {args.out}: {len(s['score'])} rows{empty}; most anomalous lines: {', '.join(str(i + 2) for i in top)}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from .config import preset_description, preset_names

    for name in preset_names():
        print(f"{name:18s} {preset_description(name)}")
    return 0


# Modules with ``add_command(sub) -> (name, handler)``: a command with its own module (its parser
# and its handler together) registers here, so adding one touches a single line of this file.
COMMAND_MODULES: tuple[str, ...] = ("vaekit.export.command", "vaekit.export.push_command")

COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "sample": cmd_sample,
    "reconstruct": cmd_reconstruct,
    "presets": cmd_presets,
    "compare": cmd_compare,
    "embed": cmd_embed,
    "plot": cmd_plot,
    "report": cmd_report,
    "gradvar": cmd_gradvar,
    "score": cmd_score,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # `train --nproc` re-runs it under torchrun
    if args.version:
        from . import __version__

        print(f"vaekit {__version__}")
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except VaekitError as err:
        print(f"vaekit: error: {err}", file=sys.stderr)
        return err.exit_code
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as err:
        print(f"vaekit: error: {err.strerror}: {err.filename}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vaekit: interrupted", file=sys.stderr)
        return 130
