import numpy as np
import pytest
import torch

from vaekit.config import DataConfig
from vaekit.data import Split, TensorLoader, open_data
from vaekit.data.mnist import MNIST_NPZ_SHA256, embedded_path, load_npz, sha256_file
from vaekit.errors import DataError


def test_embedded_mnist_is_verified_and_standard():
    assert sha256_file(embedded_path()) == MNIST_NPZ_SHA256
    raw = load_npz(embedded_path())
    assert raw.x_train.shape == (60000, 1, 28, 28) and raw.x_train.dtype == np.uint8
    assert raw.x_test.shape == (10000, 1, 28, 28)
    assert np.bincount(raw.y_train).tolist()[:2] == [5923, 6742]  # the original label counts


def test_corrupt_mnist_copy_is_refused(tmp_path):
    bad = tmp_path / "mnist.npz"
    data = bytearray(embedded_path().read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(DataError, match="is corrupt: sha256"):
        load_npz(bad)


def test_open_mnist_scales_and_splits():
    data = open_data(DataConfig(limit=600, val_size=0.1, test_limit=100))
    assert data.shape == (1, 28, 28) and data.name == "mnist"
    assert len(data.train) == 540 and len(data.val) == 60 and len(data.test) == 100
    assert data.train.x.dtype == torch.float32 and 0 <= data.train.x.min() and data.train.x.max() <= 1
    assert data.eval_split[0] == "val"
    everything = open_data(DataConfig(split="all"))
    assert len(everything.train) == 70000 and everything.test is None


def test_pick_split_defaults_to_test_then_val_then_train_and_names_a_missing_one():
    from vaekit.data import Data
    from vaekit.errors import VaekitError

    def part(n):
        return Split(torch.zeros(n, 2))

    train, val, test = part(5), part(3), part(2)
    full = Data(train, val, test, (2,), "t")
    assert full.pick_split() == ("test", test) and full.eval_split == ("val", val)  # commands vs epochs
    assert Data(train, val, None, (2,), "t").pick_split() == ("val", val)
    assert Data(train, None, None, (2,), "t").pick_split() == ("train", train)
    assert [full.pick_split(n)[1] is s for n, s in (("train", train), ("val", val), ("test", test))] == [True] * 3
    with pytest.raises(VaekitError, match="--split val: this run's data has no val split"):
        Data(train, None, test, (2,), "t").pick_split("val")


def test_binarization_modes():
    cont = open_data(DataConfig(limit=300))
    thr = open_data(DataConfig(limit=300, binarize="threshold"))
    torch.testing.assert_close(thr.train.x, (cont.train.x > 0.5).float())
    static = open_data(DataConfig(limit=300, binarize="static"))
    assert set(static.train.x.unique().tolist()) == {0.0, 1.0}
    torch.testing.assert_close(static.train.x, open_data(DataConfig(limit=300, binarize="static")).train.x)
    # E[Bernoulli(p)] = p: the draw keeps the grey levels as probabilities.
    assert abs(static.train.x.mean().item() - cont.train.x.mean().item()) < 0.01
    dyn = open_data(DataConfig(limit=300, binarize="dynamic"))
    torch.testing.assert_close(dyn.train.x, cont.train.x)  # drawn per epoch by the loader
    assert set(dyn.test.x.unique().tolist()) == {0.0, 1.0}  # the test set once, with a fixed seed
    torch.testing.assert_close(dyn.test.x, open_data(DataConfig(limit=300, binarize="dynamic")).test.x)


def test_dynamic_binarization_redraws_every_epoch():
    split = Split(torch.full((64, 1, 2, 2), 0.5))
    loader = TensorLoader(split, 64, binarize="dynamic", shuffle=False)
    loader.set_epoch(0)
    a = next(iter(loader))[0]
    assert torch.equal(a, next(iter(loader))[0])  # same epoch: same draw (resumable)
    loader.set_epoch(1)
    b = next(iter(loader))[0]
    assert set(a.unique().tolist()) == {0.0, 1.0} and not torch.equal(a, b)


def test_loader_visits_every_example_once_per_epoch():
    split = Split(torch.arange(103, dtype=torch.float32)[:, None], torch.arange(103))
    loader = TensorLoader(split, 10, seed=3)
    assert len(loader) == 11
    loader.set_epoch(0)
    seen = torch.cat([y for _, y in loader])
    assert sorted(seen.tolist()) == list(range(103))
    loader.set_epoch(1)
    assert not torch.equal(seen, torch.cat([y for _, y in loader]))  # reshuffled


def test_loader_shards_are_disjoint():
    split = Split(torch.zeros(100, 1), torch.arange(100))
    shards = []
    for rank in range(3):
        loader = TensorLoader(split, 8, seed=1, rank=rank, world=3)
        shards.append(torch.cat([y for _, y in loader]).tolist())
        assert len(loader) == 5  # 33 examples each, the tail dropped so every rank steps alike
    flat = sum(shards, [])
    assert len(flat) == len(set(flat)) == 99


def test_digits_source():
    data = open_data(DataConfig(source="digits"))
    assert data.shape == (1, 8, 8) and len(data.train) == 1497 and len(data.test) == 300
    assert data.train.x.max() == 1.0


def test_val_size_too_large():
    with pytest.raises(DataError, match="val_size=600 leaves 0 of 600"):
        open_data(DataConfig(limit=600, val_size=600))
