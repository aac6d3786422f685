"""The ``arrays`` source: every accepted layout, npz keys, labels, and one-line errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from vaekit.config import DataConfig
from vaekit.data import open_data
from vaekit.data.arrays import load_arrays
from vaekit.errors import DataError

rng = np.random.default_rng(1)


def u8(*shape: int) -> np.ndarray:
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def npy(tmp_path: Path, x: np.ndarray, name: str = "x.npy") -> Path:
    p = tmp_path / name
    np.save(p, x)
    return p


@pytest.mark.parametrize(
    "shape, nchw",
    [
        ((5, 6, 7), lambda x: x[:, None]),  # (N, H, W) grey
        ((5, 6, 7, 1), lambda x: x.transpose(0, 3, 1, 2)),  # channels-last
        ((5, 6, 7, 3), lambda x: x.transpose(0, 3, 1, 2)),
        ((5, 6, 7, 4), lambda x: x.transpose(0, 3, 1, 2)),
        ((5, 1, 6, 7), lambda x: x),  # channels-first
        ((5, 3, 6, 7), lambda x: x),
        ((5, 4, 6, 7), lambda x: x),
        ((5, 4, 4, 3), lambda x: x.transpose(0, 3, 1, 2)),  # both fit: 4x4 RGB beats 4ch 4x3
        ((5, 3, 4, 4), lambda x: x),  # both fit: 3ch 4x4 beats 4ch 3x4
        ((5, 3, 3, 3), lambda x: x.transpose(0, 3, 1, 2)),  # a true tie: channels-last
        ((5, 12), lambda x: x),  # vectors
    ],
)
def test_layouts(tmp_path: Path, shape: tuple[int, ...], nchw) -> None:  # noqa: ANN001
    x = u8(*shape)
    raw = load_arrays(npy(tmp_path, x))
    expected = nchw(x)
    assert raw.x_train.shape == expected.shape
    np.testing.assert_array_equal(raw.x_train, expected)
    assert raw.y_train is None and raw.x_test is None


def test_npz_x_y(tmp_path: Path) -> None:
    x, y = u8(4, 5, 5), np.array([2, 0, 1, 2], dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    raw = load_arrays(tmp_path / "d.npz")
    np.testing.assert_array_equal(raw.x_train, x[:, None])
    assert raw.y_train.dtype == np.int64 and raw.y_train.tolist() == [2, 0, 1, 2]
    assert raw.classes == ["0", "1", "2"]


def test_npz_train_test_and_float_labels(tmp_path: Path) -> None:
    xtr, xte = u8(6, 5, 5, 3), u8(2, 5, 5, 3)
    np.savez_compressed(tmp_path / "d.npz", x_train=xtr, y_train=np.arange(6.0),
                        x_test=xte, y_test=np.array([[1], [7]]))
    raw = load_arrays(tmp_path / "d.npz")
    np.testing.assert_array_equal(raw.x_train, xtr.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(raw.x_test, xte.transpose(0, 3, 1, 2))
    assert raw.y_train.tolist() == list(range(6)) and raw.y_test.tolist() == [1, 7]
    assert len(raw.classes) == 8


def test_open_data_npz_and_npy(tmp_path: Path) -> None:
    x = rng.random((10, 3, 4, 4)).astype(np.float32)
    np.savez(tmp_path / "f.npz", x_train=x[:8], y_train=np.arange(8) % 2, x_test=x[8:])
    data = open_data(DataConfig(source="arrays", path=str(tmp_path / "f.npz")))
    assert data.shape == (3, 4, 4) and len(data.train) == 8 and len(data.test) == 2
    np.testing.assert_array_equal(data.train.x.numpy(), x[:8])
    assert data.train.y.tolist() == [0, 1] * 4 and data.test.y is None
    flat = open_data(DataConfig(source="arrays", path=str(npy(tmp_path, u8(3, 10)))))
    assert flat.shape == (10,)


# ---------------------------------------------------------------------------------------------
# Errors: a DataError naming the file, on one line


def raises(path: Path, pattern: str, cfg: bool = False) -> str:
    with pytest.raises(DataError, match=pattern) as e:
        if cfg:
            open_data(DataConfig(source="arrays", path=str(path)))
        else:
            load_arrays(path)
    msg = str(e.value)
    assert path.name in msg and "\n" not in msg, msg
    return msg


def test_nan_is_rejected_by_open_data(tmp_path: Path) -> None:
    x = rng.random((4, 3, 3)).astype(np.float32)
    x[2, 1, 1] = np.nan
    raises(npy(tmp_path, x, "nan.npy"), "NaN or Inf .first at example 2", cfg=True)


def test_out_of_range_floats(tmp_path: Path) -> None:
    raises(npy(tmp_path, np.full((2, 4), 3.0), "big.npy"), r"must lie in \[0, 1\]", cfg=True)


def test_missing_file_and_wrong_extension(tmp_path: Path) -> None:
    raises(tmp_path / "absent.npy", "does not exist")
    (tmp_path / "table.csv").write_text("1,2,3\n")
    raises(tmp_path / "table.csv", r"\.npy or \.npz")


@pytest.mark.parametrize("shape", [(7,), (2, 3, 4, 5, 6)])
def test_wrong_rank(tmp_path: Path, shape: tuple[int, ...]) -> None:
    raises(npy(tmp_path, np.zeros(shape, np.uint8), "rank.npy"), f"rank {len(shape)}")


def test_empty_array(tmp_path: Path) -> None:
    raises(npy(tmp_path, np.zeros((0, 28, 28), np.uint8), "empty.npy"), "empty")


def test_four_d_without_channel_axis(tmp_path: Path) -> None:
    raises(npy(tmp_path, u8(2, 5, 6, 7), "odd.npy"), "no channel axis")


def test_object_array_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "obj.npy"
    np.save(p, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    raises(p, "Python objects")
    np.savez(tmp_path / "obj.npz", x=np.array([[1, "a"]], dtype=object))
    raises(tmp_path / "obj.npz", "Python objects")


def test_pickle_and_garbage_named_npy(tmp_path: Path) -> None:
    (tmp_path / "pkl.npy").write_bytes(pickle.dumps(np.zeros((2, 2))))
    raises(tmp_path / "pkl.npy", "not a NumPy")


def test_truncated_files(tmp_path: Path) -> None:
    p = npy(tmp_path, u8(50, 8, 8), "cut.npy")
    p.write_bytes(p.read_bytes()[:200])
    raises(p, "cannot be read")
    np.savez(tmp_path / "cut.npz", x=u8(50, 8, 8))
    z = tmp_path / "cut.npz"
    z.write_bytes(z.read_bytes()[:300])
    raises(z, "cannot be read")


def test_label_errors(tmp_path: Path) -> None:
    x = u8(4, 3, 3)
    np.savez(tmp_path / "short.npz", x=x, y=np.arange(3))
    raises(tmp_path / "short.npz", "3 labels for 4 examples")
    np.savez(tmp_path / "frac.npz", x=x, y=np.array([0.5, 1, 2, 3]))
    raises(tmp_path / "frac.npz", "whole numbers")
    np.savez(tmp_path / "text.npz", x=x, y=np.array(["a", "b", "c", "d"]))
    raises(tmp_path / "text.npz", "whole numbers")
    np.savez(tmp_path / "onehot.npz", x=x, y=np.eye(4))
    raises(tmp_path / "onehot.npz", "argmax")
    np.savez(tmp_path / "neg.npz", x=x, y=np.array([0, -1, 1, 1]))
    raises(tmp_path / "neg.npz", ">= 0")
    np.savez(tmp_path / "test.npz", x_train=x, x_test=x[:2], y_test=np.arange(3))
    raises(tmp_path / "test.npz", "3 labels for 2 examples")


def test_npz_missing_keys_lists_found(tmp_path: Path) -> None:
    np.savez(tmp_path / "keys.npz", images=u8(2, 3, 3), labels=np.arange(2))
    msg = raises(tmp_path / "keys.npz", "no 'x' or 'x_train'")
    assert "images, labels" in msg


def test_split_shapes_must_match(tmp_path: Path) -> None:
    np.savez(tmp_path / "mm.npz", x_train=u8(4, 5, 5), x_test=u8(2, 6, 6))
    raises(tmp_path / "mm.npz", "share one shape")
