"""Data: sources (MNIST, digits, image folders, arrays), splitting, binarization and batching.

``open_data(cfg)`` is the single entry point: it asks the registered source for raw arrays, then
scales pixels to [0, 1], takes subsets, holds out validation data, binarizes, and returns a
:class:`Data` of in-memory tensors that :class:`TensorLoader` batches by index.
"""

from __future__ import annotations

import numpy as np
import torch

from ..config import DataConfig
from ..errors import DataError
from . import arrays, folder, mnist, sources, tabular  # noqa: F401  (registers the sources)
from .core import Data, Loader, Split, TensorLoader, binarize, epoch_generator, to_unit_float
from .sources import RawData, get_source, register_source


def _tensor_split(x: np.ndarray, y: np.ndarray | None, where: str, unit: bool = True) -> Split:
    if y is not None and len(y) != len(x):
        raise DataError(f"{where}: {len(y)} labels for {len(x)} examples; they must match")
    # unit=False: a table, already standardised and checked by its source (not pixels in [0, 1])
    xt = torch.from_numpy(np.ascontiguousarray(to_unit_float(x, where) if unit else x.astype(np.float32)))
    yt = None if y is None else torch.from_numpy(np.asarray(y, dtype=np.int64))
    return Split(xt, yt)


def open_data(cfg: DataConfig) -> Data:
    """Load, split and binarize the data a config describes."""
    from . import stream

    if stream.wants_stream(cfg):  # memory-mapped .npy / .npy shards, larger than memory
        return stream.open_stream(cfg)
    raw: RawData = get_source(cfg.source)(cfg)
    where = cfg.path or cfg.source
    unit = raw.columns is None
    train = _tensor_split(raw.x_train, raw.y_train, f"{where} (train)", unit)
    test = None if raw.x_test is None else _tensor_split(raw.x_test, raw.y_test, f"{where} (test)", unit)
    if len(train) == 0:
        raise DataError(f"{where}: no training examples")
    if cfg.split == "all" and test is not None:
        ys = None if train.y is None or test.y is None else torch.cat([train.y, test.y])
        train, test = Split(torch.cat([train.x, test.x]), ys), None
    if cfg.limit is not None:
        train = train.subset(slice(0, cfg.limit))
        if test is not None:
            test = test.subset(slice(0, max(1, cfg.limit // 6)))
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
    name = cfg.source if cfg.source in ("mnist", "digits") else f"{cfg.source}:{cfg.path}"
    return Data(
        train=train,
        val=val,
        test=test,
        shape=tuple(train.x.shape[1:]),
        name=name,
        binarize=cfg.binarize,
        threshold=cfg.threshold,
        classes=raw.classes,
        columns=raw.columns,
    )


__all__ = [
    "Data",
    "Loader",
    "RawData",
    "Split",
    "TensorLoader",
    "open_data",
    "register_source",
]
