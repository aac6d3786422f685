"""Small trained runs shipped in the package, addressed as ``pretrained:NAME`` wherever a run is.

Each is a run folder under ``files/NAME``: ``config.json``, ``model.safetensors`` and
``evaluation.json`` (test -ELBO and IS NLL), written by ``scripts/make_pretrained.py``, whose rerun
reproduces them byte for byte. ``vaekit sample pretrained:keras-conv``,
``vaekit.load("pretrained:pytorch-example")``, ``vaekit export pretrained:keras-conv ...``.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import CheckpointError

FILES = Path(__file__).resolve().parent / "files"


def pretrained_names() -> list[str]:
    """Names of the shipped models."""
    return sorted(p.name for p in FILES.iterdir() if (p / "model.safetensors").is_file()) if FILES.is_dir() else []


def pretrained_path(name: str) -> Path:
    """The folder of the shipped model ``name``; an unknown name is one line listing the known ones."""
    names = pretrained_names()
    if name not in names:
        import difflib

        close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
        hint = f"did you mean 'pretrained:{close[0]}'?" if close else f"shipped: {', '.join(names) or 'none'}"
        raise CheckpointError(f"pretrained:{name} does not exist ({hint})")
    return FILES / name


__all__ = ["FILES", "pretrained_names", "pretrained_path"]
