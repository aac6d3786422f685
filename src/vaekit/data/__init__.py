"""Data: sources (MNIST, digits, image folders, arrays), splitting, binarization and batching.

``open_data(cfg)`` is the single entry point: it asks the registered source for raw arrays, then
scales pixels to [0, 1] (one scale per dataset, see :func:`~vaekit.data.core.pixel_scale`), takes
subsets (``data.limit`` of the training examples, ``data.test_limit`` of the test examples),
resizes and converts images (``data.image_size``, ``data.grayscale``), holds out validation data,
binarizes, and returns a :class:`Data` of in-memory tensors that :class:`TensorLoader` batches by
index, with ``Data.log``: what was loaded and how, in lines for the trainer's log.
"""

from __future__ import annotations

import numpy as np
import torch

from ..config import DataConfig
from ..errors import DataError
# Registers the built-in sources, in the order messages list them.
from . import mnist, digits, folder, arrays, tabular  # noqa: F401, I001
from .core import Data, Loader, Split, TensorLoader, binarize, epoch_generator, pixel_scale, to_unit_float
from .images import adapt_images
from .resolve import resolve_for_data
from .sources import SOURCES, RawData, Source, get_source, register_source


def _tensor_split(x: np.ndarray, y: np.ndarray | None, where: str, scale: float | None) -> Split:
    if y is not None and len(y) != len(x):
        raise DataError(f"{where}: {len(y)} labels for {len(x)} examples; they must match")
    # scale None: a table, already standardised and checked by its source (not pixels in [0, 1])
    xt = torch.from_numpy(np.ascontiguousarray(x.astype(np.float32) if scale is None else to_unit_float(x, where, scale)))
    yt = None if y is None else torch.from_numpy(np.asarray(y, dtype=np.int64))
    return Split(xt, yt)


def _first(s: Split, n: int | None) -> Split:
    return s if n is None else s.subset(slice(0, n))


def open_data(cfg: DataConfig) -> Data:
    """Load, split and binarize the data a config describes."""
    from . import stream

    if stream.wants_stream(cfg):  # memory-mapped .npy / .npy shards, larger than memory
        return stream.open_stream(cfg)
    source = get_source(cfg.source)
    raw: RawData = source(cfg)
    where = cfg.path or cfg.source
    if raw.columns is None:
        scale, stored = pixel_scale([raw.x_train, raw.x_test], where)
    else:
        scale, stored = None, f"a table of {len(raw.columns)} columns, numeric ones standardised"
    train = _tensor_split(raw.x_train, raw.y_train, f"{where} (train)", scale)
    test = None if raw.x_test is None else _tensor_split(raw.x_test, raw.y_test, f"{where} (test)", scale)
    if len(train) == 0:
        raise DataError(f"{where}: no training examples")
    if test is None and (cfg.split == "all" or cfg.test_limit is not None):
        key = "data.split=all" if cfg.split == "all" else "data.test_limit"
        raise DataError(f"{where}: {key} needs a test split and this data has none (an .npz needs x_test); remove it")
    if cfg.split == "all" and test is not None:
        ys = None if train.y is None or test.y is None else torch.cat([train.y, test.y])
        train, test = Split(torch.cat([train.x, test.x]), ys), None
    # data.limit takes training examples only: the test set stays whole unless data.test_limit says
    # otherwise, so runs of any size report test_loss on the same examples.
    n_train, n_test = len(train), None if test is None else len(test)
    train, test = _first(train, cfg.limit), None if test is None else _first(test, cfg.test_limit)
    shape_before = tuple(train.x.shape[1:])
    train, changed = _adapt(train, cfg, where)
    test = None if test is None else _adapt(test, cfg, where)[0]
    val = None
    if cfg.val_size:
        n_val = int(round(cfg.val_size * len(train))) if cfg.val_size < 1 else int(cfg.val_size)
        if not 0 < n_val < len(train):
            raise DataError(
                f"data.val_size={cfg.val_size} leaves {len(train) - n_val} of {len(train)} "
                "examples for training; choose a smaller validation size"
            )
        perm = torch.randperm(len(train), generator=epoch_generator(cfg.seed, -1))
        val, train = train.subset(perm[:n_val]), train.subset(perm[n_val:])
    if cfg.binarize != "none":
        # Held-out data is binarized once, with a fixed seed (the published protocol); training
        # data too unless the binarization is dynamic (a fresh draw every epoch, in the loader).
        def fixed(s: Split | None, offset: int) -> Split | None:
            if s is None:
                return None
            g = epoch_generator(cfg.test_binarize_seed, offset)
            return Split(binarize(s.x, cfg.binarize, cfg.threshold, g), s.y)

        test, val = fixed(test, 0), fixed(val, 1)
        if cfg.binarize != "dynamic":
            train = fixed(train, 2)  # type: ignore[assignment]
    name = f"{cfg.source}:{cfg.path}" if source.path else cfg.source
    counts = [f"{len(train)} train" + (f" (first {len(train) + (len(val) if val else 0)} of {n_train}, data.limit)"
                                       if cfg.limit is not None and cfg.limit < n_train else "")]
    if val is not None:
        counts.append(f"{len(val)} validation")
    if test is not None:
        counts.append(f"{len(test)} test" + (f" (first {len(test)} of {n_test}, data.test_limit)" if len(test) < (n_test or 0) else " (all)"))
    shape = tuple(train.x.shape[1:])
    what = "x".join(map(str, shape)) + (" (channels x height x width)" if len(shape) == 3 else " values")
    summary = (f"data {name}: {', '.join(counts)} examples of {what}; {stored}"
               + (f"; {', '.join(changed)} (from {'x'.join(map(str, shape_before))})" if changed else "")
               + (f"; binarized: {cfg.binarize}" if cfg.binarize != "none" else ""))
    return Data(
        train=train,
        val=val,
        test=test,
        shape=shape,
        name=name,
        binarize=cfg.binarize,
        threshold=cfg.threshold,
        classes=raw.classes,
        columns=raw.columns,
        log=[summary, *raw.notes],
        skipped=list(raw.skipped),
    )


def _adapt(s: Split, cfg: DataConfig, where: str) -> tuple[Split, list[str]]:
    """data.image_size and data.grayscale, for every image source (folders already decoded so)."""
    x, changed = adapt_images(s.x, cfg.image_size, cfg.grayscale, where)
    return Split(x, s.y), changed


__all__ = [
    "Data",
    "Loader",
    "RawData",
    "SOURCES",
    "Source",
    "Split",
    "TensorLoader",
    "open_data",
    "register_source",
    "resolve_for_data",
]
