"""The ``arrays`` source: NumPy ``.npy`` / ``.npz`` files.

Accepted ``x`` layouts: ``(N, D)`` vectors, ``(N, H, W)`` grey images, and ``(N, H, W, C)`` or
``(N, C, H, W)`` with C in {1, 3, 4}. An ``.npz`` holds ``x`` (and optionally ``y``), or
``x_train``/``y_train`` with optional ``x_test``/``y_test``. Files are always read with
``allow_pickle=False``: loading a pickle can run arbitrary code, and a data file has no need to.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DataError
from .sources import RawData, register_source

if TYPE_CHECKING:  # only for annotations: keeps the import graph one-way
    from ..config import DataConfig

CHANNELS = (1, 3, 4)
SHAPES = "(N, D), (N, H, W), (N, H, W, C) or (N, C, H, W) with C in 1, 3, 4"


def to_nchw(x: np.ndarray, where: str) -> np.ndarray:
    """Bring ``x`` to (N, C, H, W) or (N, D), deciding where a 4-D array keeps its channels."""
    if x.ndim not in (2, 3, 4):
        raise DataError(f"{where}: array of shape {x.shape} has rank {x.ndim}; expected {SHAPES}")
    if x.size == 0:
        raise DataError(f"{where}: array of shape {x.shape} is empty; it needs at least one example")
    if x.ndim == 2:
        return x
    if x.ndim == 3:
        return x[:, None]
    first, last = x.shape[1] in CHANNELS, x.shape[3] in CHANNELS
    if first and last:
        # Both could be channels, e.g. (N, 4, 4, 3): a tiny image. Pick the reading whose image is
        # square; if that does not decide it, channels-last (NumPy/PIL/TF's usual layout).
        first = x.shape[2] == x.shape[3] and x.shape[1] != x.shape[2]
        last = not first
    if last:
        return x.transpose(0, 3, 1, 2)
    if first:
        return x
    raise DataError(
        f"{where}: 4-D array of shape {x.shape} has no channel axis of size 1, 3 or 4 "
        "in position 1 or 3; expected (N, H, W, C) or (N, C, H, W)"
    )


def to_labels(y: np.ndarray, n: int, where: str) -> np.ndarray:
    """Check labels are ``n`` non-negative whole numbers (class indices) and return them as int64."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]  # (N, 1) column vectors are common; one-hot (N, K) is not accepted silently
    if y.ndim != 1:
        raise DataError(
            f"{where}: labels have shape {y.shape}; expected one class index per example, shape "
            f"({n},) (for one-hot labels save y.argmax(1))"
        )
    if len(y) != n:
        raise DataError(f"{where}: {len(y)} labels for {n} examples; they must match")
    if y.dtype == bool or np.issubdtype(y.dtype, np.integer):
        out = y.astype(np.int64)
    elif np.issubdtype(y.dtype, np.floating) and np.isfinite(y).all() and (y == np.round(y)).all():
        out = y.astype(np.int64)  # 0.0, 1.0, ... from tools that store everything as float
    else:
        raise DataError(
            f"{where}: labels must be whole numbers (class indices), got dtype {y.dtype}"
            + (" with fractional or non-finite values" if np.issubdtype(y.dtype, np.floating) else "")
        )
    if len(out) and out.min() < 0:
        raise DataError(f"{where}: labels must be >= 0 (class indices), found {out.min()}")
    return out


def _read(path: Path) -> tuple[dict[str, np.ndarray], bool]:
    """Every array in the file and whether it was an archive (.npz), read eagerly so that all
    errors surface here, with the file's name."""
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
        # np.load falls back to unpickling anything else; with pickles refused, it would then
        # blame "pickled data" for what is usually a CSV or an image saved under the wrong name.
        if not (magic == b"\x93NUMPY" or magic.startswith(b"PK")):
            raise DataError(
                f"{path}: is not a NumPy .npy/.npz file (it lacks the NumPy or zip header); "
                "save the data with np.save / np.savez"
            )
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return {"x": loaded}, False
        with loaded as z:
            return {k: z[k] for k in z.files}, True
    except (DataError, MemoryError):
        raise
    except Exception as err:  # ValueError, OSError, EOFError, zipfile.BadZipFile, ...
        if "pickle" in str(err).lower():
            raise DataError(
                f"{path}: holds Python objects (an object array), which vaekit does not load for "
                "safety; save a numeric array instead, e.g. np.save(f, x.astype(np.float32))"
            ) from None
        reason = " ".join(str(err).split()) or type(err).__name__
        raise DataError(f"{path}: cannot be read ({reason}); re-save it with np.save / np.savez") \
            from None


def load_arrays(path: str | Path) -> RawData:
    """Read a ``.npy`` or ``.npz`` file into :class:`RawData`; see the module docstring."""
    path = Path(path).expanduser()
    if path.suffix.lower() not in (".npy", ".npz"):
        raise DataError(
            f"{path}: the arrays source reads .npy or .npz files; for a folder of images use "
            "--set data.source=folder"
        )
    if not path.is_file():
        raise DataError(f"{path}: file does not exist; check data.path (--data-path)")
    arrays, archive = _read(path)
    if not archive:  # decided by content, not name: np.load does the same
        keys = ("x", None, None, None)
    elif "x_train" in arrays:
        keys = ("x_train", "y_train", "x_test", "y_test")
    elif "x" in arrays:
        keys = ("x", "y", None, None)
    else:
        found = ", ".join(sorted(arrays)) or "none"
        raise DataError(
            f"{path}: has no 'x' or 'x_train' array (found: {found}); save with "
            "np.savez(f, x=images, y=labels) or x_train=/y_train=/x_test=/y_test="
        )
    kx, ky, kxt, kyt = keys
    x = to_nchw(arrays[kx], f"{path} [{kx}]")
    y = to_labels(arrays[ky], len(x), f"{path} [{ky}]") if ky in arrays else None
    x_test = y_test = None
    if kxt in arrays:
        x_test = to_nchw(arrays[kxt], f"{path} [{kxt}]")
        if x_test.shape[1:] != x.shape[1:]:
            raise DataError(
                f"{path}: x_test examples have shape {x_test.shape[1:]} but x_train examples "
                f"{x.shape[1:]}; both splits must share one shape"
            )
        y_test = to_labels(arrays[kyt], len(x_test), f"{path} [{kyt}]") if kyt in arrays else None
    elif kyt in arrays:
        raise DataError(f"{path}: has 'y_test' but no 'x_test'; add x_test or drop y_test")
    labels = [a for a in (y, y_test) if a is not None]
    classes = [str(i) for i in range(int(max(a.max() for a in labels)) + 1)] if labels else None
    return RawData(x, y, x_test, y_test, classes)


@register_source("arrays", path=True, test_split=True)
def arrays_source(cfg: DataConfig) -> RawData:
    """Registered as ``data.source = "arrays"``: reads the ``.npy``/``.npz`` at ``cfg.path``."""
    if not cfg.path:
        raise DataError("data.path: the 'arrays' source needs a .npy or .npz file (--data-path PATH)")
    return load_arrays(cfg.path)
