"""Streaming from memory-mapped .npy files and shards: order, resume, sharding, the automatic choice."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import vaekit
from vaekit.config import DataConfig
from vaekit.data import memmap, open_data, stream
from vaekit.data.stream import Rows, StreamLoader
from vaekit.errors import DataError

from conftest import small_config


def rows_with_ids(tmp_path: Path, n: int = 1000, shards: int = 1) -> Path:
    """(n, 3) uint8 rows whose first two values encode the row index: i = 256 * x0 + x1."""
    i = np.arange(n)
    x = np.stack([i // 256, i % 256, np.full(n, 7)], 1).astype(np.uint8)
    if shards == 1:
        np.save(tmp_path / "x.npy", x)
        return tmp_path / "x.npy"
    (tmp_path / "shards").mkdir()
    for k, part in enumerate(np.array_split(x, shards)):
        np.save(tmp_path / "shards" / f"{k:03d}.npy", part)
    return tmp_path / "shards"


def ids(batch: torch.Tensor) -> list[int]:
    b = (batch * 255).round().long()
    return (b[:, 0] * 256 + b[:, 1]).tolist()


def test_every_row_once_per_epoch_in_a_seeded_order(tmp_path: Path):
    loader = StreamLoader(Rows([rows_with_ids(tmp_path)]), 64, seed=1, block=100)
    first = [i for x, _ in loader for i in ids(x)]
    assert len(loader) == 16 and sorted(first) == list(range(1000))
    assert first == [i for x, _ in loader for i in ids(x)]  # same epoch, same order
    loader.set_epoch(1)
    assert [i for x, _ in loader for i in ids(x)] != first
    assert first[:100] != sorted(first[:100])  # shuffled inside blocks too


def test_resume_at_any_batch_gives_the_remaining_batches(tmp_path: Path):
    loader = StreamLoader(Rows([rows_with_ids(tmp_path)]), 48, seed=2, block=100)
    loader.set_epoch(3)
    full = [x for x, _ in loader]
    for k in (1, 2, 7, 20):  # 48-row batches straddle the 100-row blocks
        loader.set_epoch(3, k)
        rest = [x for x, _ in loader]
        assert len(rest) == len(full) - k and all(torch.equal(a, b) for a, b in zip(rest, full[k:]))


def test_shards_read_as_one_array(tmp_path: Path):
    one = Rows([rows_with_ids(tmp_path)])
    many = Rows(stream.files_of(rows_with_ids(tmp_path, shards=3)))
    assert len(many) == 1000 and torch.equal(one[0:1000], many[0:1000])
    assert ids(many[330:340]) == list(range(330, 340))  # across the first shard boundary (334)


def test_ranks_split_each_global_batch(tmp_path: Path):
    rows = Rows([rows_with_ids(tmp_path)])
    whole = [ids(x) for x, _ in StreamLoader(rows, 64, seed=4, block=128)]
    ranks = [[ids(x) for x, _ in StreamLoader(rows, 32, seed=4, block=128, rank=r, world=2)] for r in range(2)]
    assert [sorted(a + b) for a, b in zip(*ranks)] == [sorted(w) for w in whole]


def test_automatic_choice_and_override(tmp_path: Path, monkeypatch):
    path = str(rows_with_ids(tmp_path))  # 1000 x 3 float32: 12 kB
    monkeypatch.setattr(stream, "available_memory", lambda: 20_000)
    assert isinstance(open_data(DataConfig(source="arrays", path=path)).train.x, Rows)  # > half of RAM
    assert isinstance(open_data(DataConfig(source="arrays", path=path, stream="off")).train.x, torch.Tensor)
    monkeypatch.setattr(stream, "available_memory", lambda: 10**9)
    assert isinstance(open_data(DataConfig(source="arrays", path=path)).train.x, torch.Tensor)
    assert isinstance(open_data(DataConfig(source="arrays", path=path, stream="on")).train.x, Rows)


def test_stream_errors(tmp_path: Path):
    np.savez(tmp_path / "x.npz", x=np.zeros((4, 3), np.uint8))
    with pytest.raises(DataError, match="an .npz cannot be memory-mapped"):
        open_data(DataConfig(source="arrays", path=str(tmp_path / "x.npz"), stream="on"))
    (tmp_path / "s").mkdir()
    np.save(tmp_path / "s" / "a.npy", np.zeros((4, 3), np.uint8))
    np.save(tmp_path / "s" / "b.npy", np.zeros((4, 5), np.uint8))
    with pytest.raises(DataError, match="all shards must match"):
        open_data(DataConfig(source="arrays", path=str(tmp_path / "s")))
    with pytest.raises(DataError, match="does not support data.val_size"):
        open_data(DataConfig(source="arrays", path=str(rows_with_ids(tmp_path)), stream="on", val_size=0.1))


def test_streamed_training_resumes_bit_identically(tmp_path: Path):
    x = (np.random.default_rng(0).random((600, 16)) * 255).astype(np.uint8)
    np.save(tmp_path / "x.npy", x)
    cfg = small_config(model={"hidden": [16], "latent_dim": 2}, data={"source": "arrays", "path": str(tmp_path / "x.npy"),
                       "stream": "on", "limit": None}, train={"epochs": 2, "batch_size": 64})
    full = vaekit.train(cfg, tmp_path / "full")
    one = vaekit.Config.from_dict({**cfg.to_dict(), "train": {**cfg.to_dict()["train"], "epochs": 1}})
    vaekit.train(one, tmp_path / "cut")
    resumed = vaekit.train(cfg, tmp_path / "cut", resume=True)
    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "cut" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert full.metrics[-1]["train_loss"] == resumed.metrics[-1]["train_loss"]


def image_folder(tmp_path: Path, n: int = 30) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        d = tmp_path / "imgs" / ("cat" if i % 3 else "dog")
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (6, 5), dtype=np.uint8)).save(d / f"{i:03d}.png")
    return tmp_path / "imgs"


def test_folder_decoded_on_the_fly_batches_like_memory(tmp_path: Path):
    # Same files, same seeded permutation: the workers' batches equal TensorLoader's on the
    # in-memory decode, labels included, and a resumed epoch continues with the same batches.
    from vaekit.data.core import TensorLoader
    from vaekit.data.folder_stream import FolderLoader, ImageRows

    root = str(image_folder(tmp_path))
    streamed = open_data(DataConfig(source="folder", path=root, stream="on"))
    memory = open_data(DataConfig(source="folder", path=root, stream="off"))
    assert isinstance(streamed.train.x, ImageRows) and streamed.shape == memory.shape == (1, 6, 5)
    assert torch.equal(streamed.train.x[3:9], memory.train.x[3:9])
    mem = [(x, y) for x, y in TensorLoader(memory.train, 8, seed=5)]
    fly = FolderLoader(streamed.train.x, 8, seed=5, workers=2)
    got = list(fly)
    assert len(got) == len(mem) == 4
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(got, mem))
    fly.set_epoch(0, 2)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(fly, mem[2:]))


def test_folder_stream_auto(tmp_path: Path, monkeypatch):
    from vaekit.data.folder_stream import ImageRows

    root = str(image_folder(tmp_path, 4))
    monkeypatch.setattr(stream, "available_memory", lambda: 500)  # 4 x 30 px x 4 B = 480 B > 250
    assert isinstance(open_data(DataConfig(source="folder", path=root)).train.x, ImageRows)
    monkeypatch.setattr(stream, "available_memory", lambda: 10**9)
    assert isinstance(open_data(DataConfig(source="folder", path=root)).train.x, torch.Tensor)


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))


@pytest.fixture(scope="module")
def big_npy(tmp_path_factory) -> Iterator[Path]:
    """One 256 MB uint8 (N, 784) .npy for the module, written with plain writes (no mapping of our
    own that would hold pages) and deleted afterwards."""
    n, row = 256 * 1024 * 1024 // 784, 784
    path = tmp_path_factory.mktemp("big") / "big.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": (n, row)})
        chunk = np.random.default_rng(0).integers(0, 256, (16384, row), dtype=np.uint8).tobytes()
        for i in range(0, n, 16384):
            f.write(chunk[: min(16384, n - i) * row])
    yield path
    path.unlink()


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmRSS from Linux /proc")
@pytest.mark.parametrize("release", [True, False])
def test_a_pass_over_the_file_keeps_memory_flat(big_npy: Path, monkeypatch, release: bool):
    """Over an epoch of a 256 MB file, resident memory stops growing once the first blocks are
    in flight: the rows read are copied and their mapped pages let go. (The fixed overhead, a few
    blocks plus allocator slack, is reached in the first quarter.) Without the release the whole
    file stays resident (~170 MB more over the last three quarters): the control case shows the
    test can tell."""
    if not release:
        monkeypatch.setattr(memmap, "_release", lambda *a: None)
    loader = StreamLoader(Rows([big_npy]), 1024, seed=0, block=4096)  # 3 MB blocks: fine-grained RSS steps
    rss, rows = [], 0
    for x, _ in loader:
        rows += len(x)
        rss.append(_rss_mb())
    assert rows == len(Rows([big_npy]))
    quarter = len(rss) // 4
    late_growth = max(rss[quarter:]) - max(rss[:quarter])  # over the last 192 MB read
    if release:
        assert late_growth < 30, f"resident memory grew {late_growth:.0f} MB over the last 3/4 of a 256 MB file"
    else:
        assert late_growth > 100
