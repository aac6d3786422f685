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
    p.add_argument("--license", metavar="ID",
                   help="hub: the weights' license on the model card, a Hub identifier (mit, apache-2.0, "
                        "cc-by-sa-3.0, ...); without it the card says 'unknown'")
    return "export", run_export


def run_export(args: argparse.Namespace) -> int:
    from ..errors import VaekitError
    from ..run import load_run

    if args.format == "onnx" and args.license is not None:  # an option acts or is refused
        raise VaekitError("--license applies to --format hub (the model card); vaekit-onnx.json states no license")
    run = load_run(args.run)
    if args.format == "onnx":
        from .onnx import export_onnx

        export_onnx(run, args.out)
    else:
        from .hub import export_hub

        repo = args.run[len("hf://"):].partition("@")[0] if args.run.startswith("hf://") else "OWNER/NAME"
        print(f"wrote {export_hub(run, args.out, repo=repo, license=args.license)}")
    return 0
