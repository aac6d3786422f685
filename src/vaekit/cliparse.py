"""The ``vaekit`` command line: argument types, the help format, every command's flags.

Parsing only: :mod:`vaekit.cli` calls the library with what this parses. Flags are one line of
help each, with their default; a mistyped flag is one error line with the nearest valid one.
"""

from __future__ import annotations

import argparse
from typing import Any, Sequence


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and exit code 2) with a "did you mean", not a usage dump."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Help)
        kwargs.setdefault("allow_abbrev", False)  # --epoch must not silently mean --epochs
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"vaekit: error: {message}{_did_you_mean(self, message)} (see '{self.prog} --help')\n")


class _Help(argparse.HelpFormatter):
    """Every flag's help ends with its default, when it has one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default not in (None, False, [], argparse.SUPPRESS) and "default" not in text:
            text += " (default: %(default)s)"
        return text


def _did_you_mean(parser: argparse.ArgumentParser, message: str) -> str:
    """The nearest valid flag for each unrecognized one in an argparse error message."""
    import difflib

    if "unrecognized arguments:" not in message:
        return ""
    flags = [s for a in parser._actions for s in a.option_strings]
    hints = []
    for word in message.split("unrecognized arguments:", 1)[1].split():
        flag = word.split("=")[0]
        close = difflib.get_close_matches(flag, flags, n=1, cutoff=0.75) if word.startswith("-") else []
        if close:
            hints.append(f"{close[0]} for {flag}")
    if len(hints) == 1:
        return f" (did you mean {hints[0].split(' for ')[0]}?)"
    return f" (did you mean {', '.join(hints)}?)" if hints else ""


def _device(text: str) -> str:
    """argparse type: auto, cpu, cuda or cuda:N, checked against this machine (one line, exit 2)."""
    import re

    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device; use auto, cpu or cuda (cuda:N for one GPU)")
    if text.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text}: no CUDA device is available here; use --device cpu")
        if ":" in text and int(text.split(":")[1]) >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{text}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return text


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
    "threads": "train.threads",
    "latent_dim": "model.latent_dim",
    "beta": "model.beta",
    "likelihood": "model.likelihood",
    "kl": "model.kl",
    "samples": "model.samples",
    "model": "model.name",
    "limit": "data.limit",
    "binarize": "data.binarize",
    "stream": "data.stream",
    "precision": "train.precision",
    "compile": "train.compile",
}


def build_parser(command_modules: Sequence[str], handlers: dict[str, Any]) -> argparse.ArgumentParser:
    """The whole ``vaekit`` parser; ``command_modules`` add their commands, whose handlers go into ``handlers``."""
    p = _Parser(prog="vaekit", description="Variational autoencoders: train, evaluate, sample, reconstruct.")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    # train's numbers are checked by the config, whose messages name the key (train.epochs ...)
    t = sub.add_parser("train", help="train a model and write a run folder",
                       description="Train a model and write a run folder. Values come from the defaults, then the "
                                   "preset, then --config, then the flags and --set (later wins); a flag left "
                                   "unset (None) keeps the preset's value.")
    t.add_argument("--preset", help="a named preset (see 'vaekit presets'); default pytorch-example")
    t.add_argument("--config", help="a TOML, YAML or JSON config file")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any config key, e.g. model.beta=4")
    t.add_argument("--out", help="the run folder (default runs/<preset>, numbered when it exists)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    t.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")
    t.add_argument("--epochs", type=int, help="passes over the training data (train.epochs)")
    t.add_argument("--batch-size", type=int, help="examples per optimiser step (train.batch_size)")
    t.add_argument("--lr", type=float, help="Adam's learning rate (train.lr)")
    t.add_argument("--seed", type=int, help="seed of initialisation, batches and noise (train.seed)")
    t.add_argument("--threads", type=_count, help="torch CPU threads (train.threads; default: torch's choice)")
    t.add_argument("--device", type=_device, help="auto, cpu or cuda (train.device)")
    t.add_argument("--model", help="a registered model family (model.name; see 'vaekit models')")
    t.add_argument("--latent-dim", type=int, help="size of the latent code z (model.latent_dim)")
    t.add_argument("--beta", type=float, help="weight of the KL term (model.beta; 1 = the ELBO)")
    t.add_argument("--likelihood", help="p(x|z): bernoulli, gaussian or gaussian-learned (model.likelihood)")
    t.add_argument("--kl", help="analytic (SGVB estimator B) or mc (estimator A) (model.kl)")
    t.add_argument("--samples", type=int, help="posterior samples L per datapoint (model.samples)")
    t.add_argument("--data", metavar="SOURCE|PATH",
                   help="mnist or digits, or a PATH: an image folder, a .npy/.npz file or folder of .npy shards, "
                        "or a .csv table (the source is inferred from the path)")
    t.add_argument("--data-path", metavar="PATH", help="the same as --data PATH (data.path)")
    t.add_argument("--limit", type=int, help="train on the first N training examples only (data.limit)")
    t.add_argument("--binarize", help="none, threshold, static or dynamic (data.binarize)")
    t.add_argument("--stream", action="store_const", const="on",
                   help="stream a .npy / folder of .npy shards from disk (default: when it exceeds half the RAM)")
    t.add_argument("--nproc", type=_count, help="data-parallel processes on this machine (starts torchrun; see README)")
    t.add_argument("--bf16", dest="precision", action="store_const", const="bf16", help="CUDA: bf16 autocast")
    t.add_argument("--compile", action="store_const", const=True, help="CUDA: torch.compile the model")

    e = sub.add_parser("evaluate", help="negative ELBO, importance-sampled NLL and latent diagnostics of a run")
    e.add_argument("run", help="a run folder (written by vaekit train)")
    e.add_argument("--split", choices=["test", "val", "train"], help="default: test, else val, else train")
    e.add_argument("--k", type=_natural, default=1000, help="importance samples per datapoint for the NLL (0: skip it)")
    e.add_argument("--samples", type=_count, default=1, help="posterior samples per datapoint for the ELBO")
    e.add_argument("--batch-size", type=_count, default=100, help="images per importance-sampling batch")
    e.add_argument("--limit", type=_count, help="evaluate the first N examples of the split only")
    e.add_argument("--discretized", action="store_true", help="Gaussian likelihoods: NLL of 8-bit pixels and bits/dim")
    e.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    e.add_argument("--seed", type=int, default=0, help="seed of the z draws (same seed, same numbers)")
    e.add_argument("--threads", type=_count, help="torch CPU threads (default: torch's choice)")
    e.add_argument("--device", type=_device, default="cpu", help="auto, cpu or cuda")

    s = sub.add_parser("sample", help="decode draws from the prior into an image grid")
    s.add_argument("run", help="a run folder (written by vaekit train)")
    s.add_argument("-n", type=_count, default=64, help="how many samples")
    s.add_argument("-o", "--out", help="the PNG to write (default RUN/outputs/samples.png)")
    s.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")
    s.add_argument("--temperature", type=float, default=1.0, help="scale of the prior draws")
    s.add_argument("--seed", type=int, default=0, help="seed of the prior draws")
    s.add_argument("--label", type=int, help="conditional models (cvae): draw this class only")
    s.add_argument("--device", type=_device, default="cpu", help="auto, cpu or cuda")

    g = sub.add_parser("gradvar", help="variance of score-function vs reparameterised ELBO gradients (encoder)")
    g.add_argument("run", help="a run folder (written by vaekit train)")
    g.add_argument("--batch-size", type=_count, default=100, help="test images in the batch")
    g.add_argument("--draws", type=int, default=100, help="one-sample gradient draws per estimator")
    g.add_argument("--split", choices=["test", "val", "train"])
    g.add_argument("--seed", type=int, default=0, help="seed of the gradient draws")

    r = sub.add_parser("reconstruct", help="originals above their reconstructions, as an image grid")
    r.add_argument("run", help="a run folder (written by vaekit train)")
    r.add_argument("-n", type=_count, default=32, help="how many images (rows of up to 8 originals, each above "
                   "its reconstructions)")
    r.add_argument("-o", "--out", help="the PNG to write (default RUN/outputs/reconstructions.png)")
    r.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")
    r.add_argument("--split", choices=["test", "val", "train"], help="default: test, else val, else train")
    r.add_argument("--device", type=_device, default="cpu", help="auto, cpu or cuda")

    c = sub.add_parser("compare", help="VAE vs autoencoder vs PCA: reconstruction, probes, FID and IS")
    c.add_argument("--runs", nargs="+", metavar="RUN", help="compare these run folders instead of training")
    c.add_argument("--preset", default="pytorch-example", help="the preset both models train from")
    c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a key for VAE and AE")
    c.add_argument("--latent-dim", type=_count, help="size of the latent code (both models)")
    c.add_argument("--epochs", type=_count, help="training epochs (both models)")
    c.add_argument("--limit", type=int, help="use the first N training examples only")
    c.add_argument("--out", default="runs/compare", help="folder for the runs and comparison.json/.md")
    c.add_argument("--overwrite", action="store_true", help="replace runs already in --out")
    c.add_argument("--k", type=int, default=5, help="neighbours for the kNN accuracy")
    c.add_argument("--n-samples", type=int, default=10000, help="generated images per model for FID / IS")
    c.add_argument("--no-progress", action="store_true", help="no progress bar")

    m = sub.add_parser("embed", help="write a run's latent codes (mu, logvar) and labels to an .npz")
    m.add_argument("run", help="a run folder (written by vaekit train)")
    m.add_argument("--split", choices=["test", "val", "train"], help="which split to encode (default: test, else "
                   "val, else train)")
    m.add_argument("-o", "--out", help="the .npz to write (default RUN/outputs/latents.npz)")
    m.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")

    v = sub.add_parser("plot", help="pictures of what a model learned, into RUN/plots/*.png")
    v.add_argument("run", help="a run folder (written by vaekit train)")
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
    v.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    v.add_argument("--device", type=_device, default="cpu", help="auto, cpu or cuda")

    sc = sub.add_parser("score", help="per-row anomaly scores (negative ELBO, gaps filled by their expected cost) of a CSV under a table-trained run")
    sc.add_argument("run", help="a run folder (written by vaekit train)")
    sc.add_argument("--data", required=True, help="the CSV to score (the training columns, any rows)")
    sc.add_argument("-o", "--out", help="the CSV to write (default RUN/outputs/scores-NAME.csv)")
    sc.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")
    sc.add_argument("--samples", type=_count, default=10, help="posterior draws per row")
    sc.add_argument("--seed", type=int, default=0, help="seed of the posterior draws")

    h = sub.add_parser("report", help="one self-contained HTML page of a run: RUN/report.html")
    h.add_argument("run", help="a run folder (written by vaekit train)")
    h.add_argument("-o", "--out", help="the HTML file (default RUN/report.html)")
    h.add_argument("--no-plots", action="store_true", help="only embed plots already on disk; draw none")

    sub.add_parser("presets", help="list the named presets")
    sub.add_parser("models", help="list the registered model families")
    for module in command_modules:  # commands that live beside their library code
        import importlib

        name, handler = importlib.import_module(module).add_command(sub)
        handlers[name] = handler
    return p
