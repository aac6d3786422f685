"""Verified downloads: MNIST from a mirror, checked against sha256 sums before anything uses it.

Every file is streamed to a temporary name beside its destination, hashed on the way, and renamed
into place only when the hash matches, so the cache never holds a partial or tampered file. For
MNIST the sums are of the *decompressed* IDX payloads: that pins the pixels themselves and does not
depend on how a mirror happened to gzip them.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from .sources import RawData

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
# sha256 of each file's decompressed IDX bytes. Derived from the embedded files/mnist.npz, whose
# pixels equal the official files byte for byte (the rebuilt raw train-images has the published
# md5 6bbc9ace898e44ae57da46a324031adb; tests/data/test_download.py re-derives all four).
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
IDX_IMAGES, IDX_LABELS = 0x00000803, 0x00000801  # ubyte data, 3 dims / 1 dim


def default_cache_dir() -> Path:
    """Where downloads are kept: ``$VAEKIT_CACHE/mnist``, else ``~/.cache/vaekit/mnist``."""
    base = os.environ.get("VAEKIT_CACHE")
    return (Path(base).expanduser() if base else Path.home() / ".cache" / "vaekit") / "mnist"


def download_file(url: str, dest: str | Path, sha256: str, *, gunzip: bool = False,
                  timeout: float = 60.0) -> Path:
    """Fetch ``url`` to ``dest`` only if its sha256 matches (of the gunzipped stream if ``gunzip``).

    The bytes stored are always the bytes served; ``gunzip`` only changes what is hashed.
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Same folder as dest, so the final os.replace is an atomic rename on one filesystem.
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    except OSError as err:
        raise DataError(f"cannot write to {dest.parent} ({err.strerror or err}); "
                        "set VAEKIT_CACHE to a writable folder") from None
    tmp = Path(tmp_name)
    h = hashlib.sha256()
    unzip = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS) if gunzip else None
    try:
        try:
            request = urllib.request.Request(url, headers={"User-Agent": "vaekit"})
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as resp:
                while block := resp.read(1 << 20):
                    out.write(block)
                    h.update(unzip.decompress(block) if unzip else block)
            if unzip is not None:
                h.update(unzip.flush())
                if not unzip.eof:
                    raise DataError(f"download of {url} is truncated (the gzip stream ends early); retry")
            got = h.hexdigest()
            if got != sha256:
                raise DataError(
                    f"download of {url} failed verification: sha256 {got} != expected {sha256}; "
                    "the mirror is serving a different or damaged file, try another data.url"
                )
            os.replace(tmp, dest)
        except urllib.error.HTTPError as err:
            raise DataError(f"download of {url} failed: HTTP {err.code} {err.reason}; "
                            "check data.url") from None
        except zlib.error:
            raise DataError(f"download of {url} is not gzip data; check data.url") from None
        except (OSError, ValueError, http.client.HTTPException) as err:  # DNS, refused, timeout
            reason = getattr(err, "reason", None) or err
            raise DataError(f"download of {url} failed ({reason}); check your connection or "
                            "data.url, or drop --download to use the embedded MNIST") from None
    finally:
        # Whatever happened (a bad hash, a network error, Ctrl-C), no partial file is left; after
        # a successful rename the temporary name no longer exists and this does nothing.
        tmp.unlink(missing_ok=True)
    return dest


def parse_idx(data: bytes, magic: int, where: str) -> np.ndarray:
    """Decode an IDX file (big-endian magic, one uint32 per dimension, then raw uint8 data)."""
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header or int.from_bytes(data[:4], "big") != magic:
        got = data[:4].hex() if len(data) >= 4 else f"{len(data)} bytes"
        raise DataError(f"{where}: not an IDX file of the expected kind (magic {got}, "
                        f"expected {magic:08x}); delete it and download again")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    if len(data) != header + int(np.prod(dims)):
        raise DataError(f"{where}: {len(data) - header} data bytes for dims {dims} "
                        f"(expected {int(np.prod(dims))}); delete it and download again")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _fetch(base: str, name: str, folder: Path, sha256: str) -> bytes:
    """The verified, decompressed payload of one file, from the cache or else from ``base``."""
    path = folder / name
    for attempt in range(2):
        if not path.is_file():
            download_file(base + name, path, sha256, gunzip=True)
        try:
            data = gzip.decompress(path.read_bytes())
        except (OSError, EOFError, zlib.error):
            data = b""
        if hashlib.sha256(data).hexdigest() == sha256:
            return data
        # A cached file that no longer verifies (disk damage, an older mirror, a hand edit):
        # drop it and fetch a fresh copy once, rather than asking the user to clean up.
        path.unlink(missing_ok=True)
    raise DataError(f"{path}: fails verification even after a fresh download; delete {folder}")


def download_mnist(base_url: str | None, cache_dir: Path | None = None,
                   manifest: dict[str, str] | None = None) -> RawData:
    """MNIST from ``base_url`` (default: the public mirror), cached and verified by ``manifest``.

    ``manifest`` maps each of :data:`MNIST_FILES` to the sha256 of its decompressed IDX content.
    """
    base = (base_url or MNIST_URL).rstrip("/") + "/"
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    sums = MNIST_SHA256 if manifest is None else manifest
    missing = [n for n in MNIST_FILES if n not in sums]
    if missing:
        raise DataError(f"MNIST manifest has no sha256 for {', '.join(missing)}")
    payload = {n: _fetch(base, n, folder, sums[n]) for n in MNIST_FILES}
    arrays = []
    for n in MNIST_FILES:
        magic = IDX_IMAGES if "images" in n else IDX_LABELS
        arrays.append(parse_idx(payload[n], magic, str(folder / n)))
    x_train, y_train, x_test, y_test = arrays
    for x, y, split in ((x_train, y_train, "train"), (x_test, y_test, "t10k")):
        if len(x) != len(y):
            raise DataError(f"{folder}: {split} has {len(x)} images but {len(y)} labels; "
                            "delete the folder and download again")
    return RawData(
        x_train=x_train[:, None],  # (N, 1, 28, 28) uint8
        y_train=y_train.astype(np.int64),
        x_test=x_test[:, None],
        y_test=y_test.astype(np.int64),
        classes=[str(i) for i in range(10)],
    )
