"""``vaekit export RUN --format onnx|hub -o DIR`` (registered in ``COMMAND_MODULES`` of :mod:`vaekit.cli`)."""

from __future__ import annotations

import argparse


def add_command(sub: argparse._SubParsersAction) -> tuple[str, object]:
    p = sub.add_parser("export", help="write a run as ONNX graphs or as a Hugging Face Hub folder")
    p.add_argument("run", help="a run folder, pretrained:NAME, hf://OWNER/NAME or a Hub folder")
    p.add_argument("--format", choices=["onnx", "hub"], required=True,
                   help="onnx: encoder.onnx + decoder.onnx, verified with onnxruntime; hub: config.json, "
                        "model.safetensors and a README.md model card")
    p.add_argument("-o", "--out", required=True, help="the folder to write")
    return "export", run_export


def run_export(args: argparse.Namespace) -> int:
    from ..run import load_run

    run = load_run(args.run)
    if args.format == "onnx":
        from .onnx import export_onnx

        export_onnx(run, args.out)
    else:
        from .hub import export_hub

        repo = args.run[len("hf://"):].partition("@")[0] if args.run.startswith("hf://") else "OWNER/NAME"
        print(f"wrote {export_hub(run, args.out, repo=repo)}")
    return 0
