"""The ``vaekit`` command: parse arguments, call the library, print. Nothing else lives here."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from .cliparse import FLAG_KEYS, build_parser
from .errors import VaekitError


def _parser() -> argparse.ArgumentParser:
    return build_parser(COMMAND_MODULES, COMMANDS)


def _overrides(args: argparse.Namespace) -> list[dict[str, Any]]:
    from .config import parse_override

    out = [parse_override(item) for item in args.set]
    if getattr(args, "data", None) is not None or getattr(args, "data_path", None) is not None:
        from .data.infer import resolve_data_flags

        out.append({"data": resolve_data_flags(args.data, args.data_path)})
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
    if run.written:  # a finished run resumed writes nothing; "wrote RUN" would claim a write
        print(f"wrote {run.dir}")
    if summary:
        print(json.dumps(summary))
    return 0


def _split(run: Any, name: str | None) -> tuple[str, Any]:
    from .data import open_data

    return open_data(run.config.data).pick_split(name)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from . import evaluations
    from .evaluate import evaluate_run, format_report
    from .run import run_writes
    from .runlock import lock_run

    with lock_run(args.run, "evaluate"):
        report = evaluate_run(args.run, split=args.split, limit=args.limit, device=args.device, k=args.k,
                              samples=args.samples, batch_size=args.batch_size, seed=args.seed,
                              discretize=args.discretized, progress=not args.no_progress, save=False)
        # Printed before it is saved: a read-only or full disk must not lose the numbers just computed.
        print(json.dumps(report, indent=2) if args.json else format_report(report), flush=True)
        with run_writes(args.run, "the evaluation", flag=None, note="the results printed above stand"):
            path = evaluations.save(Path(report["run"]), report)
    print(f"saved {path}", file=sys.stderr)
    return 0


def _output(args: argparse.Namespace, default: str) -> Path:
    """Where a command writes: ``-o`` as given, else ``RUN/outputs/DEFAULT`` for a run folder (the
    current folder for other runs). A missing folder is refused rather than created, an existing
    file is replaced only with ``--overwrite``."""
    if args.out is not None:
        path = Path(args.out)
        if not path.parent.is_dir():
            raise VaekitError(f"-o {path}: the folder {path.parent} does not exist; create it or choose another -o")
    else:
        run = _run_folder_to_write(args.run)
        path = run / "outputs" / default if run is not None else Path(default)
    if path.is_dir():
        raise VaekitError(f"-o {path} is a folder; give a file name")
    if path.exists() and not args.overwrite:
        raise VaekitError(f"{path} already exists; pass --overwrite to replace it, or choose another -o")
    return path


def _writing(args: argparse.Namespace, path: Path, what: str) -> Any:
    """The run folder's lock while ``path`` (inside it, by default) is written; none elsewhere
    (:func:`~vaekit.runlock.lock_run` takes none for a path outside the run or a run that is no folder)."""
    from .runlock import lock_run

    return lock_run(args.run, what, writes_to=[path])


def cmd_sample(args: argparse.Namespace) -> int:
    import torch

    from .run import load
    from .viz import save_grid

    path = _output(args, "samples.png")
    model = load(args.run, args.device)
    extra = {}
    if args.label is not None:
        if not model.conditional:
            raise VaekitError(f"--label: a '{model.name}' model is not conditional on labels (train a cvae)")
        extra["label"] = args.label
    torch.manual_seed(args.seed)
    with _writing(args, path, "sample"):
        print(f"wrote {save_grid(model.sample(args.n, args.temperature, **extra), path)}")
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
    from .viz.grid import pair_columns, reconstruction_pairs

    path = _output(args, "reconstructions.png")
    run = load_run(args.run, args.device)
    name, split = _split(run, args.split)
    x = split.x[: args.n].to(args.device)
    if len(x) < args.n:
        print(f"note: the {name} split has {len(x)} examples; showing all of them", file=sys.stderr)
    grid = reconstruction_pairs(x, run.model.reconstruct(x))
    with _writing(args, path, "reconstruct"):
        save_grid(grid, path, nrow=pair_columns(len(x)))
    print(f"wrote {path} ({len(x)} {name} images: each row of originals above its reconstructions)")
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
    from .embed import save_embeddings

    path = _output(args, f"latents-{args.split}.npz" if args.split else "latents.npz")
    with _writing(args, path, "embed"):
        shapes = save_embeddings(args.run, path, args.split)
    print(f"wrote {path}: " + ", ".join(f"{k} {v}" for k, v in shapes.items()))
    return 0


def _run_folder_to_write(run: str) -> Path | None:
    """``run`` when it is a folder vaekit may write into by default; None for a name that is no
    folder here (``pretrained:NAME``, ``hf://...``) and for a shipped or downloaded model's folder
    given by its path, which is never written (the rule :func:`_writable_run` applies too)."""
    from .locate import is_read_only

    path = Path(run)
    return path if path.is_dir() and not is_read_only(path) else None


def _writable_run(run: str, flag: str) -> Path:
    """The run folder a command writes into by default; a shipped (``pretrained:``) or downloaded
    (``hf://``) model's folder is never written (the rule :func:`_run_folder_to_write` applies too):
    the user names another place with ``flag``."""
    from .locate import is_read_only, locate_run

    if is_read_only(locate_run(run)):
        raise VaekitError(f"{run} is a shipped or downloaded model whose folder vaekit does not write; give {flag}")
    return Path(run)


def cmd_plot(args: argparse.Namespace) -> int:
    from .viz.catalog import PlotOptions, check_names, make_plots, open_context

    check_names(args.names)  # before the model and data are loaded
    opts = PlotOptions(temperature=args.temperature, n=args.n, steps=args.steps, range=args.range,
                       dims=tuple(args.dims) if args.dims else None, traverse=args.traverse, method=args.method,
                       pair=tuple(args.pair), index=args.index, seed=args.seed)
    out_dir = Path(args.out_dir) if args.out_dir else _writable_run(args.run, "-o DIR") / "plots"
    from .run import run_writes
    from .runlock import lock_run

    # One writer per run folder (a concurrent train or evaluate would interleave files with ours); a
    # write the OS refuses (full disk, read-only) is one line naming the cause, not a traceback.
    with lock_run(args.run, "plot", writes_to=[out_dir]), run_writes(out_dir, "plots", flag="-o"):
        for o in make_plots(open_context(args.run, args.device), args.names or None, out_dir, opts):
            print(f"wrote {o.path}" if o.path else f"skipped {o.name}: {o.note}", flush=True)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .viz.catalog import PLOTS, make_plots, open_context
    from .viz.report import write_report

    notes = []
    if args.out is None or not args.no_plots:
        _writable_run(args.run, "-o FILE.html and --no-plots")
    missing = [n for n in PLOTS if not (Path(args.run) / "plots" / f"{n}.png").is_file()]
    from .run import run_writes
    from .runlock import lock_run

    # Locked and its write errors turned into one line, as for plot
    writes = [Path(args.out or Path(args.run) / "report.html")] + [Path(args.run) / "plots"] * bool(missing and not args.no_plots)
    with lock_run(args.run, "report", writes_to=writes), \
            run_writes(args.run, "the report", flag="-o", note="--no-plots draws nothing into the run folder"):
        if missing and not args.no_plots:  # draw the plots this run does not have yet
            for o in make_plots(open_context(args.run), missing, Path(args.run) / "plots"):
                if o.path is None:
                    notes.append(f"{o.name}: skipped, {o.note}")
        print(f"wrote {write_report(args.run, args.out, notes)}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from .score import score_csv

    path = _output(args, f"scores-{Path(args.data).stem}.csv")
    with _writing(args, path, "score"):
        s = score_csv(args.run, args.data, path, samples=args.samples, seed=args.seed)
    top = (-s["score"]).argsort()[:5]  # nan (rows with no value) last
    empty = f" ({int((s['observed'] == 0).sum())} with no value: score nan)" if (s["observed"] == 0).any() else ""
    print(f"wrote {path}: {len(s['score'])} rows{empty}; most anomalous lines: {', '.join(str(i + 2) for i in top)}")
    return 0


def _name_column(rows: list[tuple[str, str]]) -> None:
    """``name  description`` lines, the names padded to the longest (presets, models)."""
    width = max(len(name) for name, _ in rows) + 2
    for name, text in rows:
        print(f"{name:{width}s}{text}")


def cmd_models(args: argparse.Namespace) -> int:
    from .models import MODELS

    _name_column([(name, (cls.__doc__ or "").strip().split("\n")[0]) for name, cls in sorted(MODELS.items())])
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from .config import preset_description, preset_names

    _name_column([(name, preset_description(name)) for name in preset_names()])
    return 0


# Modules with ``add_command(sub) -> (name, handler)``: a command with its own module (its parser
# and its handler together) registers here, so adding one touches a single line of this file.
COMMAND_MODULES: tuple[str, ...] = ("vaekit.explore.command", "vaekit.export.command", "vaekit.export.push_command")

COMMANDS: dict[str, Any] = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "sample": cmd_sample,
    "reconstruct": cmd_reconstruct,
    "presets": cmd_presets,
    "models": cmd_models,
    "compare": cmd_compare,
    "embed": cmd_embed,
    "plot": cmd_plot,
    "report": cmd_report,
    "gradvar": cmd_gradvar,
    "score": cmd_score,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:  # a usage error is one line on stderr and exit code 2, in-process (vaekit.cli.main) too
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # reported by the subcommand's parser, which knows its flags (did you mean ...?)
            subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
            (subs.choices.get(args.command) or parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else 2
    args.argv = list(sys.argv[1:] if argv is None else argv)  # `train --nproc` re-runs it under torchrun
    if args.version:
        from . import __version__

        print(f"vaekit {__version__}")
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    if args.command != "train" and getattr(args, "device", None) == "auto":
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.command != "train" and getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
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
    except BrokenPipeError:  # `vaekit presets | head`: the reader left; nothing to report
        sys.stderr.close()
        return 0
