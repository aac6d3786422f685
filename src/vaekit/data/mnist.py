"""MNIST: the copy embedded in the package, and a verified download for users with internet.

MNIST (Y. LeCun, C. Cortes, C. J. C. Burges; CC BY-SA 3.0): 60,000 training and 10,000 test
images, uint8 28x28. The embedded ``files/mnist.npz`` is checked against its sha256 on every load,
so a corrupted install fails loudly instead of training on garbage.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import DataError
from .sources import RawData, register_source

MNIST_NPZ_SHA256 = "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def embedded_path() -> Path:
    return Path(str(resources.files("vaekit.data") / "files" / "mnist.npz"))


def load_npz(path: str | Path, sha256: str | None = MNIST_NPZ_SHA256) -> RawData:
    """Read an MNIST ``.npz`` (keys x_train, y_train, x_test, y_test), verifying its checksum."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"MNIST file {path} is missing; reinstall vaekit or use --download")
    if sha256 is not None:
        got = sha256_file(path)
        if got != sha256:
            raise DataError(f"MNIST file {path} is corrupt: sha256 {got[:12]}... != {sha256[:12]}...")
    with np.load(path, allow_pickle=False) as z:
        return RawData(
            x_train=z["x_train"][:, None],  # (N, 1, 28, 28) uint8
            y_train=z["y_train"].astype(np.int64),
            x_test=z["x_test"][:, None],
            y_test=z["y_test"].astype(np.int64),
            classes=[str(i) for i in range(10)],
        )


@functools.lru_cache(maxsize=1)
def _embedded() -> RawData:
    # Decompressing and hashing 55 MB takes ~0.5 s; evaluation and comparison open it repeatedly.
    # Callers never write into these arrays (open_data converts them to new float tensors).
    return load_npz(embedded_path())


@register_source("mnist", test_split=True)
def load_mnist(cfg) -> RawData:  # noqa: ANN001 - DataConfig, imported lazily to avoid a cycle
    if cfg.download:
        from .download import download_mnist

        return download_mnist(cfg.url)
    return _embedded()
