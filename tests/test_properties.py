"""Property-based tests: random bytes, random arrays and random configs give a result or one
clear VaekitError (one line, naming the file when there is one), never another exception; what is
accepted is usable (pixels in [0, 1], a config that survives its own round trip)."""

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


def one_line(err: Exception) -> str:
    """The error's message, checked to be the one clear line the CLI prints."""
    msg = str(err)
    assert msg.strip() and "\n" not in msg, repr(msg)
    return msg


def _open(path: Path, source: str) -> None:
    try:
        data = open_data(DataConfig(source=source, path=str(path)))
    except DataError as err:
        one_line(err)
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
    except ConfigError as err:
        one_line(err)
        return
    assert Config.from_dict(cfg.to_dict()) == cfg


def _accepted_or_refused(raw: dict) -> None:
    """A config dict gives a Config that survives its own round trip, or one line saying why not."""
    try:
        cfg = Config.from_dict(raw)
    except VaekitError as err:
        one_line(err)
        return
    assert Config.from_dict(cfg.to_dict()) == cfg


# Random text, and dotted keys of 1-4 parts with values TOML reads or not.
OVERRIDES = st.text(max_size=40) | st.builds(
    lambda parts, value: ".".join(parts) + "=" + value,
    st.lists(st.text("abcdemolnrt_ ", max_size=8) | st.sampled_from(["model", "train", "beta", "hidden"]),
             min_size=1, max_size=4),
    st.text(max_size=12) | st.sampled_from(["4", "true", "[16, 8]", "'conv'", "{k = 5}", "cosine", "1e-3"]),
)


@SETTINGS
@given(OVERRIDES)
def test_random_overrides(text):
    try:
        over = parse_override(text)
    except ConfigError as err:
        assert "=" not in text and "section.key=value" in one_line(err)  # only a text without "=" is refused
        return
    # --set a.b.c=v puts the value at a -> b -> c and nowhere else
    *sections, key = text.split("=", 1)[0].strip().split(".")
    node = over
    for part in sections:
        assert list(node) == [part]
        node = node[part]
    assert list(node) == [key]
    _accepted_or_refused(over)


@SETTINGS
@given(st.binary(max_size=600), st.sampled_from(["c.toml", "c.yaml", "c.json", "c.txt"]))
def test_random_config_files(blob, name):
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / name).write_bytes(blob)
        try:
            raw = read_config_file(Path(d) / name)
        except ConfigError as err:
            assert name in one_line(err)  # the file is named in the message
            assert name != "c.txt" or "use .toml, .yaml/.yml or .json" in str(err)
            return
        assert name != "c.txt" and isinstance(raw, dict)  # an unknown suffix is never parsed
        _accepted_or_refused(raw)
