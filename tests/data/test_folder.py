"""The ``folder`` source: pixel-exact decoding, class subfolders, resizing, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vaekit.config import DataConfig
from vaekit.data import open_data
from vaekit.data.folder import load_folder
from vaekit.errors import DataError

rng = np.random.default_rng(0)


def grey(h: int = 6, w: int = 7) -> np.ndarray:
    return rng.integers(0, 256, size=(h, w), dtype=np.uint8)


def rgb(h: int = 6, w: int = 7) -> np.ndarray:
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def save(path: Path, a: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)
    return path


def test_flat_grey_folder_is_pixel_exact(tmp_path: Path) -> None:
    imgs = [grey() for _ in range(5)]
    for i, a in enumerate(imgs):
        save(tmp_path / f"img{i}.png", a)
    (tmp_path / "README.txt").write_text("not an image, and not named like one")
    raw = load_folder(tmp_path)
    assert raw.x_train.dtype == np.uint8 and raw.x_train.shape == (5, 1, 6, 7)
    np.testing.assert_array_equal(raw.x_train[:, 0], np.stack(imgs))
    assert raw.y_train is None and raw.classes is None and raw.x_test is None


def test_rgb_and_mixed_modes(tmp_path: Path) -> None:
    c, g = rgb(), grey()
    save(tmp_path / "a.png", c)
    save(tmp_path / "b.bmp", g)
    raw = load_folder(tmp_path)  # one colour image makes the whole set RGB
    assert raw.x_train.shape == (2, 3, 6, 7)
    np.testing.assert_array_equal(raw.x_train[0], c.transpose(2, 0, 1))
    np.testing.assert_array_equal(raw.x_train[1], np.stack([g, g, g]))
    forced = load_folder(tmp_path, grayscale=True)
    assert forced.x_train.shape == (2, 1, 6, 7)
    np.testing.assert_array_equal(forced.x_train[0, 0], np.asarray(Image.fromarray(c).convert("L")))
    np.testing.assert_array_equal(forced.x_train[1, 0], g)


def test_jpeg_and_gif(tmp_path: Path) -> None:
    flat = np.full((8, 8, 3), (200, 40, 90), np.uint8)
    Image.fromarray(flat).save(tmp_path / "a.JPG", quality=95)  # upper-case extension too
    Image.fromarray(flat).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "b.gif")
    raw = load_folder(tmp_path)
    assert raw.x_train.shape == (2, 3, 8, 8)
    assert np.abs(raw.x_train[0].astype(int) - flat.transpose(2, 0, 1)).max() <= 4  # JPEG: lossy
    np.testing.assert_array_equal(raw.x_train[1], flat.transpose(2, 0, 1))  # palette: exact


def test_grey_folder_forced_rgb(tmp_path: Path) -> None:
    g = grey()
    save(tmp_path / "a.png", g)
    raw = load_folder(tmp_path, grayscale=False)
    np.testing.assert_array_equal(raw.x_train, np.stack([g, g, g])[None])


def test_class_subfolders_give_sorted_labels(tmp_path: Path) -> None:
    dog, cat1, cat2 = grey(), grey(), grey()
    save(tmp_path / "dog" / "x.png", dog)
    save(tmp_path / "cat" / "b.png", cat2)
    save(tmp_path / "cat" / "a.png", cat1)
    save(tmp_path / "cat" / "._a.png", grey())  # macOS resource-fork name: hidden, skipped
    (tmp_path / "empty").mkdir()  # no images: not a class
    raw = load_folder(tmp_path)
    assert raw.classes == ["cat", "dog"]
    assert raw.y_train.dtype == np.int64 and raw.y_train.tolist() == [0, 0, 1]
    np.testing.assert_array_equal(raw.x_train[:, 0], np.stack([cat1, cat2, dog]))


def test_resize_to_image_size(tmp_path: Path) -> None:
    save(tmp_path / "big.png", np.full((20, 30), 200, np.uint8))
    save(tmp_path / "small.png", np.full((5, 5), 10, np.uint8))
    raw = load_folder(tmp_path, image_size=[8, 12])
    assert raw.x_train.shape == (2, 1, 8, 12)
    np.testing.assert_array_equal(raw.x_train[0], 200)  # a flat image stays flat when resized
    np.testing.assert_array_equal(raw.x_train[1], 10)


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path: Path) -> None:
    a = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    Image.fromarray(a).save(tmp_path / "deep.png")
    raw = load_folder(tmp_path)
    assert raw.x_train.shape == (1, 1, 1, 4)
    assert raw.x_train.ravel().tolist() == [0, 1, 128, 255]


def test_open_data_through_registry(tmp_path: Path) -> None:
    a, b = grey(), grey()
    save(tmp_path / "zero" / "a.png", a)
    save(tmp_path / "one" / "b.png", b)
    data = open_data(DataConfig(source="folder", path=str(tmp_path)))
    assert data.shape == (1, 6, 7) and data.classes == ["one", "zero"] and data.test is None
    np.testing.assert_allclose(data.train.x[:, 0].numpy(), np.stack([b, a]) / 255.0, atol=1e-7)
    assert data.train.y.tolist() == [0, 1]


# ---------------------------------------------------------------------------------------------
# Errors: one DataError line naming the file


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_folder(tmp_path / "nope")


def test_path_is_a_file(tmp_path: Path) -> None:
    f = save(tmp_path / "one.png", grey())
    with pytest.raises(DataError, match="data.source=arrays"):
        load_folder(f)


def test_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "README.txt").write_text("hello")
    with pytest.raises(DataError, match="no image files found") as e:
        load_folder(tmp_path)
    assert str(tmp_path) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("grayscale", [None, True])
def test_text_file_named_png(tmp_path: Path, grayscale: bool | None) -> None:
    save(tmp_path / "good.png", grey())
    (tmp_path / "x.png").write_text("this is not a PNG")
    with pytest.raises(DataError) as e:
        load_folder(tmp_path, grayscale=grayscale)
    assert "x.png" in str(e.value) and "\n" not in str(e.value)


def test_truncated_png(tmp_path: Path) -> None:
    save(tmp_path / "good.png", grey())
    p = save(tmp_path / "broken.png", rgb(64, 64))
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])
    with pytest.raises(DataError, match="cannot be read: broken.png") as e:
        load_folder(tmp_path)
    assert "\n" not in str(e.value)


def test_mixed_sizes_name_both_files(tmp_path: Path) -> None:
    save(tmp_path / "a.png", grey(6, 7))
    save(tmp_path / "b.png", grey(6, 7))
    save(tmp_path / "c.png", grey(9, 9))
    with pytest.raises(DataError) as e:
        load_folder(tmp_path)
    msg = str(e.value)
    assert "a.png" in msg and "c.png" in msg and "6x7" in msg and "9x9" in msg
    assert "data.image_size=[6,7]" in msg


def test_loose_images_beside_class_folders(tmp_path: Path) -> None:
    save(tmp_path / "cls" / "a.png", grey())
    save(tmp_path / "stray.png", grey())
    with pytest.raises(DataError, match="stray.png"):
        load_folder(tmp_path)


def test_open_data_bad_folder_is_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no image files"):
        open_data(DataConfig(source="folder", path=str(tmp_path)))


# ---- transparency, folder and file order, what is skipped, bad files ---------------------------


def stroke() -> np.ndarray:
    """A drawing kept in the alpha channel: a filled square of alpha 255 on alpha 0."""
    a = np.zeros((6, 7), np.uint8)
    a[1:5, 2:6] = 255
    return a


@pytest.mark.parametrize("ink, mode", [(0, "RGBA"), (255, "RGBA"), (0, "LA"), (255, "LA")])
def test_transparent_drawings_stay_visible(tmp_path: Path, ink: int, mode: str) -> None:
    alpha = stroke()
    colour = np.full((6, 7, 3 if mode == "RGBA" else 1), ink, np.uint8)
    Image.fromarray(np.dstack([colour, alpha]).squeeze() if mode == "RGBA" else np.dstack([colour[..., 0], alpha]),
                    mode).save(tmp_path / "d.png")
    raw = load_folder(tmp_path)
    x = raw.x_train[0, 0].astype(int)
    # Dark ink goes on white, light ink on black: the drawing is the alpha mask either way.
    want = np.where(alpha > 0, ink, 255 - ink)
    np.testing.assert_array_equal(x, want)
    assert any("composited" in n for n in raw.notes)


def test_half_transparent_ink_is_blended(tmp_path: Path) -> None:
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 3] = [[255, 128], [0, 0]]  # black ink, one pixel half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "h.png")
    x = load_folder(tmp_path).x_train[0, 0]
    assert x.tolist() == [[0, 127], [255, 255]]


def test_opaque_rgba_is_unchanged(tmp_path: Path) -> None:
    c = rgb()
    Image.fromarray(np.dstack([c, np.full((6, 7), 255, np.uint8)]), "RGBA").save(tmp_path / "o.png")
    raw = load_folder(tmp_path)
    np.testing.assert_array_equal(raw.x_train[0], c.transpose(2, 0, 1))
    assert not raw.notes


def test_numbered_class_folders_in_numeric_order(tmp_path: Path) -> None:
    imgs = {name: grey() for name in ["1", "10", "2", "img"]}
    for name, a in imgs.items():
        save(tmp_path / name / "x.png", a)
    data = open_data(DataConfig(source="folder", path=str(tmp_path)))
    assert data.classes == ["1", "2", "10", "img"]  # alphabetical would be 1, 10, 2
    for label, name in enumerate(data.classes):  # Data.classes[label] is the folder of that label
        i = int((data.train.y == label).nonzero()[0])
        np.testing.assert_allclose(data.train.x[i, 0].numpy(), imgs[name] / 255.0, atol=1e-7)


def test_files_in_natural_order(tmp_path: Path) -> None:
    for i in (10, 9, 1):
        save(tmp_path / f"img{i}.png", np.full((2, 2), i, np.uint8))
    assert load_folder(tmp_path).x_train[:, 0, 0, 0].tolist() == [1, 9, 10]


def test_empty_class_folder_and_ignored_files_are_said(tmp_path: Path) -> None:
    save(tmp_path / "cat" / "a.png", grey())
    save(tmp_path / "cat" / ".hidden.png", grey())
    (tmp_path / "cat" / "notes.txt").write_text("x")
    (tmp_path / "dog").mkdir()
    (tmp_path / ".git").mkdir()
    data = open_data(DataConfig(source="folder", path=str(tmp_path)))
    assert data.classes == ["cat"]
    notes = data.log[1:]
    assert len(notes) == 2 and all("\n" not in n for n in notes)
    assert "1 subfolder(s)" in notes[0] and "dog" in notes[0]
    assert "1 non-image file(s) (e.g. cat/notes.txt) and 2 hidden" in notes[1]


def test_every_bad_file_is_named_in_one_error(tmp_path: Path) -> None:
    save(tmp_path / "good.png", grey())
    for i in range(12):
        (tmp_path / f"bad{i:02d}.png").write_text("not a png")
    p = save(tmp_path / "cut.png", rgb(64, 64))
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(DataError) as e:
        load_folder(tmp_path)
    msg = str(e.value)
    assert "13 of 14 image files cannot be read" in msg and "\n" not in msg
    assert "bad00.png" in msg and "bad09.png" in msg and "and 3 more" in msg and "data.skip_bad=true" in msg


def test_skip_bad_trains_on_the_rest_and_lists_them(tmp_path: Path) -> None:
    a, b = grey(), grey()
    save(tmp_path / "c0" / "a.png", a)
    save(tmp_path / "c1" / "b.png", b)
    (tmp_path / "c0" / "x.png").write_text("not a png")
    data = open_data(DataConfig(source="folder", path=str(tmp_path), skip_bad=True))
    assert len(data.train) == 2 and data.train.y.tolist() == [0, 1]
    assert [Path(p).name for p, _ in data.skipped] == ["x.png"]
    assert any("skipped 1 unreadable image file(s)" in line and "c0/x.png" in line for line in data.log)


def test_streamed_folder_names_every_bad_file_up_front(tmp_path: Path) -> None:
    from vaekit.data.folder_stream import ImageRows

    save(tmp_path / "a.png", grey())
    (tmp_path / "x.png").write_text("no")
    (tmp_path / "y.png").write_text("no")
    with pytest.raises(DataError, match="2 of 3 image files cannot be read: x.png .*y.png"):
        ImageRows(tmp_path, None, None)
    rows = ImageRows(tmp_path, None, None, skip_bad=True)
    assert len(rows) == 1 and len(rows.skipped) == 2
