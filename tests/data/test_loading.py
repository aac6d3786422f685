"""What open_data does with every source: one pixel scale per dataset,
image_size and grayscale on every image source, data.limit on training examples only, and the one
log line that says all of it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vaekit.config import DataConfig
from vaekit.data import open_data
from vaekit.errors import DataError


def digits_mask() -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().images[:200] > 7  # (200, 8, 8) bool: 0/1 pictures


def npz(tmp_path: Path, name: str, **arrays: np.ndarray) -> str:
    p = tmp_path / name
    np.savez(p, **arrays)
    return str(p)


# ---- 0/1 integers stay 0/1 whatever their dtype -------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.int32, bool])
def test_binary_integers_stay_binary_in_every_dtype(tmp_path: Path, dtype) -> None:
    mask = digits_mask()
    data = open_data(DataConfig(source="arrays", path=npz(tmp_path, "m.npz", x=mask.astype(dtype))))
    torch.testing.assert_close(data.train.x[:, 0], torch.from_numpy(mask.astype(np.float32)))
    assert "kept as 0/1" in data.log[0] and "\n" not in data.log[0]


def test_uint8_levels_are_divided_by_255_and_the_log_says_so(tmp_path: Path) -> None:
    x = np.arange(256, dtype=np.uint8).reshape(4, 8, 8)
    data = open_data(DataConfig(source="arrays", path=npz(tmp_path, "l.npz", x=x)))
    torch.testing.assert_close(data.train.x[:, 0], torch.from_numpy(x / np.float32(255)))
    line = data.log[0]
    for part in ("uint8 values 0..255", "divided by 255", "1x8x8", "4 train"):
        assert part in line, line


def test_one_scale_for_both_splits(tmp_path: Path) -> None:
    # The test split alone holds only 0/1 here: deciding per split would scale it differently.
    x = np.full((4, 3, 3), 200, np.uint8)
    xt = np.ones((2, 3, 3), np.uint8)
    data = open_data(DataConfig(source="arrays", path=npz(tmp_path, "s.npz", x_train=x, x_test=xt)))
    assert data.test.x.max().item() == pytest.approx(1 / 255)


def test_streamed_uint8_binary_stays_binary(tmp_path: Path) -> None:
    p = tmp_path / "m.npy"
    np.save(p, digits_mask().astype(np.uint8))
    data = open_data(DataConfig(source="arrays", path=str(p), stream="on"))
    assert data.train.x[0:200].max().item() == 1.0 and "kept as 0/1" in data.log[0]


def test_streamed_binary_head_then_levels_is_refused(tmp_path: Path, monkeypatch) -> None:
    from vaekit.data import memmap

    monkeypatch.setattr(memmap, "HEAD_BYTES", 400)  # the scale is decided on the first 100 rows
    x = np.ones((20000, 2, 2), np.uint8)
    x[-1] = 200
    np.save(tmp_path / "x.npy", x)
    rows = memmap.Rows([tmp_path / "x.npy"])
    with pytest.raises(DataError, match="hold only 0/1"):
        rows[19990:20000]


# ---- image_size and grayscale on every image source ---------------------------------------


@pytest.mark.parametrize("source", ["digits", "mnist", "arrays"])
def test_image_size_and_grayscale_apply_to_every_image_source(tmp_path: Path, source: str) -> None:
    path = npz(tmp_path, "rgb.npz", x=np.random.default_rng(0).random((10, 8, 8, 3))) if source == "arrays" else None
    base = dict(source=source, path=path, limit=10, test_limit=5 if source != "arrays" else None)
    rgb = open_data(DataConfig(**base, image_size=[16, 12], grayscale=False))
    assert rgb.shape == (3, 16, 12) and rgb.train.x.shape == (10, 3, 16, 12)
    assert rgb.test is None or rgb.test.x.shape[1:] == (3, 16, 12)
    grey = open_data(DataConfig(**base, image_size=[4, 4], grayscale=True))
    assert grey.shape == (1, 4, 4) and 0 <= grey.train.x.min() and grey.train.x.max() <= 1
    assert "resized" in grey.log[0] and ("RGB -> grey" in grey.log[0]) == (source == "arrays")


def test_grey_from_rgb_arrays_is_pillows_luma(tmp_path: Path) -> None:
    from PIL import Image

    x = np.random.default_rng(1).integers(0, 256, (3, 5, 6, 3), dtype=np.uint8)
    data = open_data(DataConfig(source="arrays", path=npz(tmp_path, "c.npz", x=x), grayscale=True))
    want = np.stack([np.asarray(Image.fromarray(a).convert("L")) for a in x]) / 255
    np.testing.assert_allclose(data.train.x[:, 0].numpy(), want, atol=1 / 255 + 1e-6)  # Pillow rounds to uint8


def test_resize_matches_a_flat_image(tmp_path: Path) -> None:
    x = np.full((2, 20, 30), 0.25, np.float32)
    data = open_data(DataConfig(source="arrays", path=npz(tmp_path, "f.npz", x=x), image_size=[7, 9]))
    torch.testing.assert_close(data.train.x, torch.full((2, 1, 7, 9), 0.25))


def test_image_options_on_vectors_are_refused(tmp_path: Path) -> None:
    path = npz(tmp_path, "v.npz", x=np.random.default_rng(0).random((5, 12)))
    for key in ({"image_size": [2, 6]}, {"grayscale": True}):
        with pytest.raises(DataError, match=f"data.{next(iter(key))} applies to images"):
            open_data(DataConfig(source="arrays", path=path, **key))


# ---- data.limit takes training examples only ----------------------------------------------


def test_limit_keeps_the_whole_test_set() -> None:
    data = open_data(DataConfig(source="digits", limit=60))
    assert len(data.train) == 60 and len(data.test) == 300
    assert "60 train (first 60 of 1497, data.limit)" in data.log[0] and "300 test (all)" in data.log[0]


def test_test_limit_is_explicit_and_logged() -> None:
    data = open_data(DataConfig(source="digits", limit=60, test_limit=50))
    assert len(data.train) == 60 and len(data.test) == 50
    full = open_data(DataConfig(source="digits"))
    torch.testing.assert_close(data.test.x, full.test.x[:50])  # the first 50 of the same test set
    assert "50 test (first 50 of 300, data.test_limit)" in data.log[0]


def test_test_limit_without_a_test_split_is_refused(tmp_path: Path) -> None:
    path = npz(tmp_path, "x.npz", x=np.zeros((4, 2, 2), np.uint8))
    with pytest.raises(DataError, match="data.test_limit needs a test split"):
        open_data(DataConfig(source="arrays", path=path, test_limit=2))
    with pytest.raises(DataError, match="data.split=all needs a test split"):
        open_data(DataConfig(source="arrays", path=path, split="all"))
