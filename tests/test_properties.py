"""Property-based tests: random bytes, random arrays and random configs give a result or one
clear VaekitError, never another exception."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from vaekit.config import Config, parse_override, read_config_file
from vaekit.data import open_data
from vaekit.config import DataConfig
from vaekit.errors import ConfigError, DataError, VaekitError

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _open(path: Path, source: str) -> None:
    try:
        data = open_data(DataConfig(source=source, path=str(path)))
    except DataError:
        return
    assert data.train.x.dtype.is_floating_point and len(data.train) > 0
    assert float(data.train.x.min()) >= 0 and float(data.train.x.max()) <= 1


@SETTINGS
@given(st.binary(max_size=4096), st.sampled_from(["x.npy", "x.npz"]))
def test_random_bytes_as_arrays(blob, name):
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / name).write_bytes(blob)
        _open(Path(d) / name, "arrays")


@SETTINGS
@given(st.binary(max_size=2048), st.sampled_from(["a.png", "a.jpg", "a.bmp", "a.gif"]))
def test_random_bytes_as_images(blob, name):
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / name).write_bytes(blob)
        _open(Path(d), "folder")


@SETTINGS
@given(st.binary(min_size=8, max_size=600))
def test_corrupted_real_png(noise):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(buf, format="PNG")
    raw = bytearray(buf.getvalue())
    pos = noise[0] % len(raw)
    raw[pos : pos + len(noise) - 1] = noise[1:]
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "a.png").write_bytes(bytes(raw))
        _open(Path(d), "folder")


ARRAYS = hnp.arrays(
    dtype=st.sampled_from([np.uint8, np.int16, np.int64, np.float16, np.float32, np.float64, np.bool_, np.complex64]),
    shape=hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=6),
)


@SETTINGS
@given(ARRAYS)
def test_random_arrays(x):
    with tempfile.TemporaryDirectory() as d:
        np.save(Path(d) / "x.npy", x)
        _open(Path(d) / "x.npy", "arrays")


VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
KEYS = st.sampled_from(["data", "model", "train", "preset", "source", "latent_dim", "hidden", "beta", "epochs", "x"])


@SETTINGS
@given(st.dictionaries(KEYS, VALUES | st.dictionaries(KEYS | st.text(max_size=8), VALUES, max_size=5), max_size=4))
def test_random_configs(raw):
    try:
        cfg = Config.from_dict(raw)
    except ConfigError:
        return
    assert Config.from_dict(cfg.to_dict()) == cfg


@SETTINGS
@given(st.text(max_size=40))
def test_random_overrides(text):
    try:
        over = parse_override(text)
        Config.from_dict(over)
    except VaekitError:
        pass


@SETTINGS
@given(st.binary(max_size=600), st.sampled_from(["c.toml", "c.yaml", "c.json", "c.txt"]))
def test_random_config_files(blob, name):
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / name).write_bytes(blob)
        try:
            Config.from_dict(read_config_file(Path(d) / name))
        except ConfigError:
            pass
