"""The ``vaekit`` command: parse arguments, call the library, print. Nothing else lives here."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from .errors import VaekitError


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2), not a usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"vaekit: error: {message} (see '{self.prog} --help')\n")


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
    t.add_argument("--data", help="mnist, digits, folder or arrays")
    t.add_argument("--data-path", help="image folder or .npy/.npz file for --data folder/arrays")
    t.add_argument("--limit", type=int, help="train on the first N examples only")
    t.add_argument("--binarize", help="none, threshold, static or dynamic")

    e = sub.add_parser("evaluate", help="negative ELBO, reconstruction and KL of a run, as JSON")
    e.add_argument("run")
    e.add_argument("--split", choices=["test", "val", "train"], help="default: test, else val, else train")
    e.add_argument("--samples", type=int, default=1, help="posterior samples per datapoint")
    e.add_argument("--batch-size", type=int, default=2048)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--device", default="cpu")

    s = sub.add_parser("sample", help="decode draws from the prior into an image grid")
    s.add_argument("run")
    s.add_argument("-n", type=int, default=64, help="how many samples")
    s.add_argument("-o", "--out", default="samples.png")
    s.add_argument("--temperature", type=float, default=1.0, help="scale of the prior draws")
    s.add_argument("--seed", type=int, default=0)

    r = sub.add_parser("reconstruct", help="originals above their reconstructions, as an image grid")
    r.add_argument("run")
    r.add_argument("-n", type=int, default=32, help="how many images (a multiple of 8)")
    r.add_argument("-o", "--out", default="reconstructions.png")
    r.add_argument("--split", choices=["test", "val", "train"])

    sub.add_parser("presets", help="list the named presets")
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
    from .evaluate import elbo
    from .run import load_run

    run = load_run(args.run, args.device)
    name, split = _split(run, args.split)
    terms = elbo(run.model, split, samples=args.samples, batch_size=args.batch_size, seed=args.seed)
    out = {"run": str(run.dir), "split": name, "n": len(split), "samples": args.samples, **terms}
    print(json.dumps(out, indent=2))
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import torch

    from .run import load
    from .viz import save_grid

    model = load(args.run)
    torch.manual_seed(args.seed)
    print(f"wrote {save_grid(model.sample(args.n, args.temperature), args.out)}")
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


def cmd_presets(args: argparse.Namespace) -> int:
    from .config import preset_description, preset_names

    for name in preset_names():
        print(f"{name:18s} {preset_description(name)}")
    return 0


COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "sample": cmd_sample,
    "reconstruct": cmd_reconstruct,
    "presets": cmd_presets,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
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
        return 2
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as err:
        print(f"vaekit: error: {err.strerror}: {err.filename}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vaekit: interrupted", file=sys.stderr)
        return 130
