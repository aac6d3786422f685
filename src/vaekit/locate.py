"""Where a run is: every command and ``vaekit.load`` name a run the same ways, resolved here.

* a run folder, or a folder in the Hugging Face Hub layout (``vaekit export --format hub``): both
  hold ``config.json`` + ``model.safetensors``, so a Hub folder *is* a run folder;
* ``pretrained:NAME``: a small trained run shipped inside the package (:mod:`vaekit.pretrained`);
* ``hf://OWNER/NAME`` (``@REVISION`` optional): a Hub repository, downloaded into the Hugging Face
  cache by ``huggingface_hub`` (the ``hub`` extra), then read as a folder.

Before anything else is parsed, the weights' format version is checked, so a folder written by a
newer vaekit is refused in one line naming both versions rather than failing on a config key.
"""

from __future__ import annotations

from pathlib import Path

from . import checkpoint

PRETRAINED = "pretrained:"
HUB = "hf://"


def locate_run(spec: str | Path) -> Path:
    """The local folder of the run ``spec`` names (see the module docstring); its format checked."""
    text = str(spec)
    if text.startswith(PRETRAINED):
        from .pretrained import pretrained_path

        path = pretrained_path(text[len(PRETRAINED) :])
    elif text.startswith(HUB):
        from .export.hub import download

        path = download(text[len(HUB) :])
    else:
        path = Path(spec)
    weights = path / "model.safetensors"
    if not weights.is_file():
        weights = path / "checkpoints" / "last.safetensors"  # an interrupted run
    fmt = checkpoint.read_format(weights) if weights.is_file() else None
    if fmt is not None:  # a missing or torn file is reported by the loader, with its own message
        checkpoint.check_format(weights, fmt)
    return path


def is_read_only(path: Path) -> bool:
    """True for runs that must not be written into: shipped in the package or in the Hub cache."""
    from .export.hub import cache_dir
    from .pretrained import FILES

    resolved = path.resolve()
    return resolved.is_relative_to(FILES.resolve()) or resolved.is_relative_to(cache_dir().resolve())


__all__ = ["HUB", "PRETRAINED", "is_read_only", "locate_run"]
