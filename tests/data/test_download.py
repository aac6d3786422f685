"""Verified MNIST download, served from a local HTTP server (never the internet)."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import socket
import threading
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from vaekit.config import DataConfig
from vaekit.data import open_data
from vaekit.data.download import (
    MNIST_FILES,
    MNIST_SHA256,
    default_cache_dir,
    download_file,
    download_mnist,
    parse_idx,
)
from vaekit.data.mnist import embedded_path
from vaekit.errors import DataError

KEYS = dict(zip(MNIST_FILES, ("x_train", "y_train", "x_test", "y_test")))


def idx(a: np.ndarray) -> bytes:
    """The raw IDX file for a uint8 array: magic 0x0803 (3-D) / 0x0801 (1-D), dims, data."""
    return np.array([0x800 + a.ndim, *a.shape], dtype=">u4").tobytes() + a.tobytes()


@functools.lru_cache(maxsize=None)
def embedded() -> dict[str, np.ndarray]:
    with np.load(embedded_path()) as z:
        return {k: z[k] for k in z.files}


def write_set(folder: Path, n: int | None) -> dict[str, str]:
    """Gzipped IDX files of the first ``n`` embedded examples; returns their manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for name, key in KEYS.items():
        a = embedded()[key] if n is None else embedded()[key][:n]
        raw = idx(np.ascontiguousarray(a))
        (folder / name).write_bytes(gzip.compress(raw, compresslevel=1, mtime=0))
        manifest[name] = hashlib.sha256(raw).hexdigest()
    return manifest


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """An HTTP server on 127.0.0.1 (ephemeral port) serving ``tmp_path/www``."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)  # a configured proxy must not see loopback traffic
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_small_set_downloads_verifies_and_caches(serve, tmp_path: Path) -> None:  # noqa: ANN001
    url, root = serve
    manifest = write_set(root, 100)
    cache = tmp_path / "cache"
    raw = download_mnist(url.rstrip("/"), cache_dir=cache, manifest=manifest)  # no trailing slash
    e = embedded()
    assert raw.x_train.shape == (100, 1, 28, 28) and raw.x_train.dtype == np.uint8
    np.testing.assert_array_equal(raw.x_train[:, 0], e["x_train"][:100])
    np.testing.assert_array_equal(raw.x_test[:, 0], e["x_test"][:100])
    assert raw.y_train.dtype == np.int64
    np.testing.assert_array_equal(raw.y_train, e["y_train"][:100])
    np.testing.assert_array_equal(raw.y_test, e["y_test"][:100])
    assert sorted(p.name for p in cache.iterdir()) == sorted(MNIST_FILES)  # no .part left over
    # A second load is served from the cache: the URL below has nothing listening.
    again = download_mnist("http://127.0.0.1:9/", cache_dir=cache, manifest=manifest)
    np.testing.assert_array_equal(again.x_train, raw.x_train)


def test_corrupted_download_is_rejected_and_not_kept(serve, tmp_path: Path) -> None:  # noqa: ANN001
    url, root = serve
    manifest = write_set(root, 100)
    bad = embedded()["x_train"][:100].copy()
    bad[3, 10, 10] ^= 0xFF  # one pixel: still a valid gzip and IDX file, just not the right one
    name = "train-images-idx3-ubyte.gz"
    (root / name).write_bytes(gzip.compress(idx(bad), mtime=0))
    cache = tmp_path / "cache"
    with pytest.raises(DataError) as e:
        download_mnist(url, cache_dir=cache, manifest=manifest)
    msg = str(e.value)
    assert url + name in msg and manifest[name] in msg and hashlib.sha256(idx(bad)).hexdigest() in msg
    assert "sha256" in msg and "\n" not in msg
    assert list(cache.iterdir()) == []  # neither the file nor a temporary is left behind


def test_corrupt_cache_file_is_replaced(serve, tmp_path: Path) -> None:  # noqa: ANN001
    url, root = serve
    manifest = write_set(root, 20)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "t10k-labels-idx1-ubyte.gz").write_bytes(b"garbage")
    raw = download_mnist(url, cache_dir=cache, manifest=manifest)
    np.testing.assert_array_equal(raw.y_test, embedded()["y_test"][:20])
    name = "t10k-labels-idx1-ubyte.gz"
    assert (cache / name).read_bytes() == (root / name).read_bytes()


def test_http_404(serve, tmp_path: Path) -> None:  # noqa: ANN001
    url, root = serve
    manifest = write_set(root, 10)
    (root / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="404") as e:
        download_mnist(url, cache_dir=tmp_path / "cache", manifest=manifest)
    assert url + "t10k-labels-idx1-ubyte.gz" in str(e.value)
    assert not (tmp_path / "cache" / "t10k-labels-idx1-ubyte.gz").exists()


def test_not_gzip_and_connection_refused(serve, tmp_path: Path) -> None:  # noqa: ANN001
    url, root = serve
    (root / "page.gz").write_bytes(b"<html>captive portal</html>")
    with pytest.raises(DataError, match="not gzip"):
        download_file(url + "page.gz", tmp_path / "c" / "page.gz", "0" * 64, gunzip=True)
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = f"http://127.0.0.1:{port}/x.gz"
    with pytest.raises(DataError, match="failed") as e:
        download_file(dead, tmp_path / "c" / "x.gz", "0" * 64)
    assert dead in str(e.value)
    assert list((tmp_path / "c").iterdir()) == []


def test_truncated_gzip(serve, tmp_path: Path) -> None:  # noqa: ANN001
    url, root = serve
    whole = gzip.compress(idx(embedded()["y_test"][:500]), mtime=0)
    (root / "cut.gz").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="truncated"):
        download_file(url + "cut.gz", tmp_path / "c" / "cut.gz", "0" * 64, gunzip=True)
    assert list((tmp_path / "c").iterdir()) == []


def test_cache_dir_honours_vaekit_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAEKIT_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "mnist"
    monkeypatch.delenv("VAEKIT_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "vaekit" / "mnist"


def test_plain_download_file(serve, tmp_path: Path) -> None:  # noqa: ANN001
    url, root = serve
    (root / "blob.bin").write_bytes(b"hello" * 1000)
    digest = hashlib.sha256(b"hello" * 1000).hexdigest()
    out = download_file(url + "blob.bin", tmp_path / "d" / "blob.bin", digest)
    assert out.read_bytes() == b"hello" * 1000


def test_parse_idx_rejects_bad_files() -> None:
    good = idx(np.zeros((2, 3, 3), np.uint8))
    assert parse_idx(good, 0x803, "f").shape == (2, 3, 3)
    with pytest.raises(DataError, match="magic"):
        parse_idx(good, 0x801, "labels.idx")
    with pytest.raises(DataError, match="data bytes"):
        parse_idx(good[:-1], 0x803, "f")
    with pytest.raises(DataError, match="magic"):
        parse_idx(b"\x00", 0x803, "f")


def test_default_manifest_matches_embedded_mnist() -> None:
    """The default sums are those of the official IDX files, rebuilt from the embedded npz."""
    e = embedded()
    rebuilt = {name: idx(e[key]) for name, key in KEYS.items()}
    # The published md5 of the uncompressed official train-images-idx3-ubyte.
    md5 = hashlib.md5(rebuilt["train-images-idx3-ubyte.gz"]).hexdigest()
    assert md5 == "6bbc9ace898e44ae57da46a324031adb"
    assert {n: hashlib.sha256(b).hexdigest() for n, b in rebuilt.items()} == MNIST_SHA256


def test_open_data_mnist_download_end_to_end(serve, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """The full 70k set through the registry with the default manifest and VAEKIT_CACHE."""
    url, root = serve
    write_set(root, None)
    monkeypatch.setenv("VAEKIT_CACHE", str(tmp_path / "vk"))
    data = open_data(DataConfig(source="mnist", download=True, url=url, limit=600, test_limit=100))
    assert (tmp_path / "vk" / "mnist" / "train-images-idx3-ubyte.gz").is_file()
    assert data.shape == (1, 28, 28) and len(data.train) == 600 and len(data.test) == 100
    e = embedded()
    np.testing.assert_array_equal((data.train.x[:, 0].numpy() * 255).round(), e["x_train"][:600])
    np.testing.assert_array_equal(data.test.y.numpy(), e["y_test"][:100])
