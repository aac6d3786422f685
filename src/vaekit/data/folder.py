"""The ``folder`` source: a directory of image files, optionally one subfolder per class.

Layouts::

    photos/                 flat: every image, no labels
      a.png  b.jpg ...
    digits/                 classes: each subfolder is a class, labels follow sorted names
      0/ a.png ...
      1/ b.png ...

Images are decoded once with Pillow at load time into one uint8 array ``(N, C, H, W)``; after that
training never touches the files again, so a plain loop here costs nothing per epoch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DataError
from .sources import RawData, register_source

if TYPE_CHECKING:  # only for annotations: keeps the import graph one-way
    from ..config import DataConfig

IMAGE_EXTS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)
# Modes that carry no colour. "P" (palette) counts as colour even when its palette is grey:
# telling would mean inspecting every palette, and --set data.grayscale=true covers that case.
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


def _is_image_file(p: Path, root: Path) -> bool:
    # Dotfiles and dot-folders are skipped: macOS leaves "._name.png" resource forks (not images)
    # and tools leave ".ipynb_checkpoints". Other extensions (README.txt, labels.csv) are ignored.
    hidden = any(part.startswith(".") for part in p.relative_to(root).parts)
    return not hidden and p.suffix.lower() in IMAGE_EXTS and p.is_file()


def list_images(root: Path) -> tuple[list[Path], list[int] | None, list[str] | None]:
    """Image files under ``root`` in a stable order, plus labels and class names if it has subfolders."""
    entries = sorted(p for p in root.iterdir() if not p.name.startswith("."))
    subdirs = [p for p in entries if p.is_dir()]
    top = [p for p in entries if _is_image_file(p, root)]
    if not subdirs:
        return top, None, None
    if top:  # dropping them silently, or inventing a label for them, would both surprise someone
        raise DataError(
            f"{root}: has both class subfolders and loose images (e.g. {top[0].name}); "
            "move the images into a class subfolder, or remove the subfolders"
        )
    files: list[Path] = []
    labels: list[int] = []
    classes: list[str] = []
    for d in subdirs:  # sorted by name, so label i is classes[i]
        found = sorted(p for p in d.rglob("*") if _is_image_file(p, root))
        if not found:
            continue  # an empty or helper folder is not a class
        labels += [len(classes)] * len(found)
        classes.append(d.name)
        files += found
    return files, labels, classes


def _grey_u8(im):  # noqa: ANN001, ANN202 - PIL.Image in, PIL.Image out
    """16/32-bit grey to 8-bit "L" by scaling: Pillow's own convert("L") clips at 255 instead."""
    from PIL import Image

    if im.mode.startswith("I"):
        a = np.clip(np.asarray(im, dtype=np.int64), 0, 65535)
        return Image.fromarray(((a * 255 + 32767) // 65535).astype(np.uint8), "L")
    return im.convert("L")


def _decode(path: Path, mode: str, size: tuple[int, int] | None) -> np.ndarray:
    """One image as (H, W, C) uint8 in ``mode`` ("L" or "RGB"), resized to ``size`` (H, W) if given."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()  # decode now, so a truncated file fails here, with its name
            im = _grey_u8(im) if mode == "L" else im.convert("RGB")
            if size is not None and im.size != (size[1], size[0]):
                # Pillow's bilinear filter widens its support when shrinking, i.e. it antialiases.
                im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            a = np.asarray(im, dtype=np.uint8)
    except MemoryError:
        raise
    except Exception as err:  # PIL raises OSError, SyntaxError, struct.error... for broken files
        reason = " ".join(str(err).split()) or type(err).__name__
        raise DataError(
            f"{path}: cannot be decoded as an image ({reason}); replace or delete the file"
        ) from None
    return a[:, :, None] if a.ndim == 2 else a


def _mode_of(path: Path) -> str:
    """The image's mode from its header only (no pixel decoding): cheap enough for a first pass."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.mode
    except MemoryError:
        raise
    except Exception:
        raise DataError(
            f"{path}: is not an image file Pillow can read, despite its extension; "
            "replace or delete it"
        ) from None


def load_folder(root: str | Path, image_size: list[int] | None = None,
                grayscale: bool | None = None) -> RawData:
    """Decode every image under ``root`` into uint8 ``(N, C, H, W)``; see the module docstring."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"{root}: folder does not exist; check data.path (--data-path)")
    if not root.is_dir():
        raise DataError(
            f"{root}: is a file, not a folder; for .npy/.npz files use --set data.source=arrays"
        )
    files, labels, classes = list_images(root)
    if not files:
        raise DataError(
            f"{root}: no image files found (looked for {', '.join(sorted(IMAGE_EXTS))}); "
            "point data.path at a folder of images or of class subfolders"
        )
    if grayscale is None:  # grey only if every image is: one colour image makes the set RGB
        grayscale = all(_mode_of(p) in GREY_MODES for p in files)
    mode = "L" if grayscale else "RGB"
    size = None if image_size is None else (int(image_size[0]), int(image_size[1]))
    out: np.ndarray | None = None
    for i, p in enumerate(files):
        a = _decode(p, mode, size)
        if out is None:  # one preallocated block: no list of arrays plus a stacked copy
            out = np.empty((len(files), a.shape[2], a.shape[0], a.shape[1]), dtype=np.uint8)
        elif a.shape[:2] != out.shape[2:]:
            (h0, w0), (h, w) = out.shape[2:], a.shape[:2]
            raise DataError(
                f"{root}: images differ in size: {files[0].relative_to(root)} is {h0}x{w0} but "
                f"{p.relative_to(root)} is {h}x{w} (height x width); resize them all with "
                f"--set data.image_size=[{h0},{w0}]"
            )
        out[i] = a.transpose(2, 0, 1)
    assert out is not None
    y = None if labels is None else np.asarray(labels, dtype=np.int64)
    return RawData(x_train=out, y_train=y, classes=classes)


@register_source("folder")
def folder_source(cfg: DataConfig) -> RawData:
    """Registered as ``data.source = "folder"``: reads ``cfg.path`` (no test split)."""
    if not cfg.path:
        raise DataError("data.path: the 'folder' source needs a folder (--data-path PATH)")
    return load_folder(cfg.path, cfg.image_size, cfg.grayscale)
