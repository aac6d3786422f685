"""The ``folder`` source: a directory of image files, optionally one subfolder per class.

Layouts::

    photos/                 flat: every image, no labels
      a.png  b.jpg ...
    digits/                 classes: each subfolder is a class, labels follow the names in
      0/ a.png ...          natural order (2 before 10), ``Data.classes[label]`` is the name
      1/ b.png ...

Images are decoded once with Pillow at load time into one uint8 array ``(N, C, H, W)``; after that
training never touches the files again, so a plain loop here costs nothing per epoch. Every file is
tried before an error is raised, so one run names every unreadable file (``data.skip_bad`` trains
on the rest); transparent images are composited (see :func:`flatten_alpha`); empty subfolders,
non-image and hidden files are left out and counted in the log.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

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


def natural_key(name: str) -> tuple:
    """Sort key reading digit runs as numbers: "2" < "10", "img9" < "img10" (alphabetical order
    would give folders 1, 10, 2 the labels 0, 1, 2)."""
    return tuple((0, int(t), t) if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", name) if t)


def _natural(paths: Iterable[Path], root: Path) -> list[Path]:
    return sorted(paths, key=lambda p: tuple(natural_key(part) for part in p.relative_to(root).parts))


@dataclass
class Listing:
    """What :func:`list_images` found: image files (labels and class names with subfolders), and
    what it left out, for one log line."""

    files: list[Path]
    labels: list[int] | None
    classes: list[str] | None
    empty: list[str] = field(default_factory=list)  # subfolders without images: not classes
    other: list[Path] = field(default_factory=list)  # files of other types (README.txt, labels.csv)
    hidden: int = 0  # dotfiles and dot-folders (macOS "._x.png" forks, .ipynb_checkpoints, .git)

    def notes(self, root: Path) -> list[str]:
        out = []
        if self.empty:
            out.append(f"data: {len(self.empty)} subfolder(s) of {root} hold no images and are not classes: "
                       + ", ".join(self.empty[:10]) + (" ..." if len(self.empty) > 10 else ""))
        if self.other or self.hidden:
            eg = f" (e.g. {self.other[0].relative_to(root)})" if self.other else ""
            out.append(f"data: ignored {len(self.other)} non-image file(s){eg} and {self.hidden} hidden "
                       f"file(s) or folder(s) under {root}")
        return out


def _scan(paths: Iterable[Path], root: Path, listing: Listing) -> list[Path]:
    """The image files among ``paths``; counts the rest in ``listing``. Dotfiles and dot-folders
    are hidden: macOS leaves "._name.png" resource forks (not images) and tools leave
    ".ipynb_checkpoints". Other extensions (README.txt, labels.csv) are not images."""
    found = []
    for p in paths:
        if any(part.startswith(".") for part in p.relative_to(root).parts):
            listing.hidden += 1
        elif p.is_file():
            (found if p.suffix.lower() in IMAGE_EXTS else listing.other).append(p)
    return found


def list_images(root: Path) -> Listing:
    """Image files under ``root`` in natural order, plus labels and class names if it has subfolders."""
    entries = list(root.iterdir())
    listing = Listing([], None, None)
    subdirs = _natural((p for p in entries if p.is_dir() and not p.name.startswith(".")), root)
    listing.hidden += sum(p.is_dir() and p.name.startswith(".") for p in entries)
    top = _natural(_scan((p for p in entries if not p.is_dir()), root, listing), root)
    if not subdirs:
        listing.files = top
        return listing
    if top:  # dropping them silently, or inventing a label for them, would both surprise someone
        raise DataError(
            f"{root}: has both class subfolders and loose images (e.g. {top[0].name}); "
            "move the images into a class subfolder, or remove the subfolders"
        )
    labels: list[int] = []
    classes: list[str] = []
    for d in subdirs:  # natural order of names, so label i is classes[i] and "10" comes after "9"
        found = _natural(_scan(d.rglob("*"), root, listing), root)
        if not found:
            listing.empty.append(d.name)  # an empty or helper folder is not a class: said in the log
            continue
        labels += [len(classes)] * len(found)
        classes.append(d.name)
        listing.files += found
    listing.labels, listing.classes = labels, classes
    return listing


class BadImage(Exception):
    """A file that Pillow cannot decode; the message is the reason."""


def _grey_u8(im):  # noqa: ANN001, ANN202 - PIL.Image in, PIL.Image out
    """16/32-bit grey to 8-bit "L" by scaling: Pillow's own convert("L") clips at 255 instead."""
    from PIL import Image

    if im.mode.startswith("I"):
        a = np.clip(np.asarray(im, dtype=np.int64), 0, 65535)
        return Image.fromarray(((a * 255 + 32767) // 65535).astype(np.uint8), "L")
    return im.convert("L")


def flatten_alpha(im):  # noqa: ANN001, ANN201 - PIL.Image in, (PIL.Image, background or None) out
    """Composite a transparent image onto a background that contrasts with its drawing.

    Dropping alpha loses a drawing kept in the alpha channel (black or white strokes on a fully
    transparent canvas become a blank image). The rule: the background is white when the drawing
    (the alpha-weighted mean luma of the visible pixels) is dark, black when it is light, so black
    strokes on transparent become black on white and white strokes become white on black (MNIST's
    convention); a fully transparent image becomes black. Opaque images pass unchanged.
    """
    from PIL import Image

    if not (im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info) or im.mode.startswith("I"):
        return im, None
    rgba = np.asarray(im.convert("RGBA"), dtype=np.float32) / 255  # (H, W, 4)
    alpha = rgba[..., 3:]
    if alpha.min() >= 1:
        return im.convert("RGB"), None
    luma = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)  # (H, W)
    weight = float(alpha.sum())
    light = weight > 0 and float((luma * alpha[..., 0]).sum()) / weight >= 0.5
    bg = 0.0 if light or weight == 0 else 1.0
    rgb = rgba[..., :3] * alpha + bg * (1 - alpha)
    return Image.fromarray(np.round(rgb * 255).astype(np.uint8), "RGB"), ("white" if bg else "black")


def read_image(path: Path, mode: str, size: tuple[int, int] | None,
               backgrounds: dict[str, int] | None = None) -> np.ndarray:
    """One image as (H, W, C) uint8 in ``mode`` ("L" or "RGB"), resized to ``size`` (H, W) if given;
    :class:`BadImage` with the reason when it cannot be decoded. ``backgrounds`` counts the
    transparent images composited onto each background."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()  # decode now, so a truncated file fails here, with its name
            im, bg = flatten_alpha(im)
            if bg is not None and backgrounds is not None:
                backgrounds[bg] = backgrounds.get(bg, 0) + 1
            im = _grey_u8(im) if mode == "L" else im.convert("RGB")
            if size is not None and im.size != (size[1], size[0]):
                # Pillow's bilinear filter widens its support when shrinking, i.e. it antialiases.
                im = im.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            a = np.asarray(im, dtype=np.uint8)
    except MemoryError:
        raise
    except Exception as err:  # PIL raises OSError, SyntaxError, struct.error... for broken files
        raise BadImage(" ".join(str(err).split()) or type(err).__name__) from None
    return a[:, :, None] if a.ndim == 2 else a


def _decode(path: Path, mode: str, size: tuple[int, int] | None) -> np.ndarray:
    """:func:`read_image`, a broken file being one :class:`DataError` line (streamed folders)."""
    try:
        return read_image(path, mode, size)
    except BadImage as err:
        raise DataError(f"{path}: cannot be decoded as an image ({err}); replace or delete the file") from None


def _mode_of(path: Path) -> str | None:
    """The image's mode from its header only (no pixel decoding), or None when it is no image."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.mode
    except MemoryError:
        raise
    except Exception:
        return None


def bad_files_error(root: Path, bad: list[tuple[Path, str]], total: int) -> DataError:
    """Every unreadable file in one line: the count, the first ten with their reasons, the fix."""
    shown = "; ".join(f"{p.relative_to(root)} ({why})" for p, why in bad[:10])
    more = f"; ... and {len(bad) - 10} more" if len(bad) > 10 else ""
    return DataError(f"{root}: {len(bad)} of {total} image files cannot be read: {shown}{more}; replace or "
                     "delete them, or set data.skip_bad=true to train on the rest")


def skipped_note(root: Path, bad: list[tuple[Path, str]]) -> str:
    shown = ", ".join(str(p.relative_to(root)) for p, _ in bad[:10]) + (" ..." if len(bad) > 10 else "")
    return f"data: skipped {len(bad)} unreadable image file(s) (data.skip_bad): {shown}"


def load_folder(root: str | Path, image_size: list[int] | None = None,
                grayscale: bool | None = None, skip_bad: bool = False) -> RawData:
    """Decode every image under ``root`` into uint8 ``(N, C, H, W)``; see the module docstring.

    Every file is tried before any error is raised, so one run names all unreadable files."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"{root}: folder does not exist; check data.path (--data-path)")
    if not root.is_dir():
        raise DataError(
            f"{root}: is a file, not a folder; for .npy/.npz files use --set data.source=arrays"
        )
    listing = list_images(root)
    files = listing.files
    if not files:
        raise DataError(
            f"{root}: no image files found (looked for {', '.join(sorted(IMAGE_EXTS))}); "
            "point data.path at a folder of images or of class subfolders"
        )
    if grayscale is None:  # grey only if every image is: one colour image makes the set RGB
        grayscale = all(m in GREY_MODES for m in map(_mode_of, files) if m is not None)
    mode = "L" if grayscale else "RGB"
    size = None if image_size is None else (int(image_size[0]), int(image_size[1]))
    out: np.ndarray | None = None
    keep: list[int] = []
    bad: list[tuple[Path, str]] = []
    backgrounds: dict[str, int] = {}
    for i, p in enumerate(files):
        try:
            a = read_image(p, mode, size, backgrounds)
        except BadImage as err:
            bad.append((p, str(err)))
            continue
        if out is None:  # one preallocated block: no list of arrays plus a stacked copy
            out = np.empty((len(files), a.shape[2], a.shape[0], a.shape[1]), dtype=np.uint8)
            first = p
        elif a.shape[:2] != out.shape[2:]:
            (h0, w0), (h, w) = out.shape[2:], a.shape[:2]
            raise DataError(
                f"{root}: images differ in size: {first.relative_to(root)} is {h0}x{w0} but "
                f"{p.relative_to(root)} is {h}x{w} (height x width); resize them all with "
                f"--set data.image_size=[{h0},{w0}]"
            )
        out[len(keep)] = a.transpose(2, 0, 1)
        keep.append(i)
    if bad and (not skip_bad or out is None):
        raise bad_files_error(root, bad, len(files))
    assert out is not None
    notes = listing.notes(root)
    if backgrounds:
        notes.append(f"data: {sum(backgrounds.values())} transparent image(s) composited onto a background that "
                     "contrasts with the drawing: " + ", ".join(f"{n} on {bg}" for bg, n in sorted(backgrounds.items())))
    if bad:
        notes.append(skipped_note(root, bad))
    y = None if listing.labels is None else np.asarray(listing.labels, dtype=np.int64)[keep]
    return RawData(x_train=out[: len(keep)], y_train=y, classes=listing.classes, notes=notes,
                   skipped=[(str(p), why) for p, why in bad])


@register_source("folder", path=True)
def folder_source(cfg: DataConfig) -> RawData:
    """Registered as ``data.source = "folder"``: reads ``cfg.path`` (no test split)."""
    if not cfg.path:
        raise DataError("data.path: the 'folder' source needs a folder (--data-path PATH)")
    return load_folder(cfg.path, cfg.image_size, cfg.grayscale, cfg.skip_bad)
