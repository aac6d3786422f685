"""``vaekit push RUN OWNER/NAME`` (registered in ``COMMAND_MODULES`` of :mod:`vaekit.cli`)."""

from __future__ import annotations

import argparse


def add_command(sub: argparse._SubParsersAction) -> tuple[str, object]:
    p = sub.add_parser("push", help="upload a run to the Hugging Face Hub (needs vaekit[hub] and a token)")
    p.add_argument("run", help="a run folder, pretrained:NAME or a Hub folder")
    p.add_argument("repo", help="OWNER/NAME on the Hub (HF_ENDPOINT selects another server)")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--message", default="Upload a vaekit model", help="the commit message")
    p.add_argument("--license", metavar="ID",
                   help="the weights' license on the model card, a Hub identifier (mit, apache-2.0, cc-by-sa-3.0, "
                        "...); without it the card says 'unknown'")
    return "push", run_push


def run_push(args: argparse.Namespace) -> int:
    from .hub import push

    url = push(args.run, args.repo, private=args.private, message=args.message, license=args.license)
    print(f"pushed to {url}")
    return 0
