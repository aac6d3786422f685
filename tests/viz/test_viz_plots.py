"""Every plot of the catalogue on grey 8x8 digits, RGB 16x16 arrays and a plain autoencoder:
files exist, have the promised pixel size, are not blank, and skip with a reason when they must."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from vizkit import digits, model_for, rgb_npz

import vaekit
from vaekit.config import DataConfig
from vaekit.data import open_data
from vaekit.errors import VaekitError
from vaekit.models import MODELS
from vaekit.viz import plots as P
from vaekit.viz.catalog import PLOTS, PlotContext, PlotOptions, make_plots
from vaekit.viz.grid import image_grid, reconstruction_pairs

METRICS = [
    {"epoch": 1, "train_loss": 60.0, "train_recon": 55.0, "train_kl": 5.0, "test_loss": 50.0, "test_recon": 44.0, "test_kl": 6.0},
    {"epoch": 2, "train_loss": 45.0, "train_recon": 38.0, "train_kl": 7.0},  # no evaluation this epoch
    {"epoch": 3, "train_loss": 40.0, "train_recon": 32.0, "train_kl": 8.0, "test_loss": 41.0, "test_recon": 33.0, "test_kl": 8.0},
]


def _png(path):
    img = Image.open(path)
    img.load()
    return img


def _expected_size(name, data, latent_dim, terms=3):
    """Pixel size of each plot (width, height), from the documented figure sizes."""
    dpi = P.DPI
    c, h, w = data.shape
    steps = 10
    sizes = {
        "curves": (P.CURVE_PANEL[0] * terms, P.CURVE_PANEL[1]),
        "manifold": P.MANIFOLD_SIZE,
        "scatter": P.SCATTER_SIZE,
        "kl": P.KL_SIZE,
        "histogram": P.HIST_SIZE,
        "interpolation": P.strip_size(2, steps + 2, h, w),
        "traversal": P.strip_size(min(latent_dim, 10), steps + 1, h, w),
    }
    if name in ("samples", "reconstructions"):  # Pillow grids: 8 per row, 2 px gaps, scaled by 2
        return (2 * (8 * (w + 2) + 2), 2 * (8 * (h + 2) + 2))  # 64 samples or 32 pairs: 8 rows
    fw, fh = sizes[name]
    return (round(fw * dpi), round(fh * dpi))


@pytest.fixture(scope="module")
def rgb(tmp_path_factory):
    return open_data(DataConfig(source="arrays", path=str(rgb_npz(tmp_path_factory.mktemp("rgb")))))


def test_every_plot_on_rgb_16x16(rgb, tmp_path):
    assert rgb.shape == (3, 16, 16)
    model = model_for(rgb, latent_dim=3)
    out = make_plots(PlotContext(model, rgb, METRICS), None, tmp_path)
    assert [o.name for o in out] == list(PLOTS) and all(o.path is not None for o in out), out
    for o in out:
        img = _png(o.path)
        assert img.size == _expected_size(o.name, rgb, 3), o.name
        arr = np.asarray(img.convert("RGB"), dtype=np.float64)
        assert arr.std() > 0, o.name
    # The grids are exact: the PNG holds the model's samples / reconstructions pixel for pixel, in colour.
    torch.manual_seed(0)
    expected = image_grid(model.sample(64), nrow=8, scale=2)
    got = np.asarray(_png(tmp_path / "samples.png"))
    assert got.shape == expected.shape == (2 * 146, 2 * 146, 3) and np.array_equal(got, expected)
    x = rgb.test.x[:32]
    pairs = image_grid(reconstruction_pairs(x, model.reconstruct(x)), nrow=8, scale=2)
    assert np.array_equal(np.asarray(_png(tmp_path / "reconstructions.png")), pairs)
    # Colour survives: the originals' red/green/blue squares differ between channels.
    top = np.asarray(_png(tmp_path / "reconstructions.png"))[4:36, 4:36].astype(int)
    assert np.abs(top[..., 0] - top[..., 1]).max() > 100


def test_samples_follow_the_temperature(rgb, tmp_path):
    model = model_for(rgb, latent_dim=3)
    make_plots(PlotContext(model, rgb), ["samples"], tmp_path / "cold", PlotOptions(temperature=0.0, n=8))
    cold = np.asarray(_png(tmp_path / "cold" / "samples.png"))
    tile = cold[4:36, 4:36]
    # Temperature 0 decodes z = 0 for every sample: all tiles identical, and equal to decode(0).
    assert np.array_equal(tile, cold[4:36, 40:72])
    zero = image_grid(model.decode(torch.zeros(1, 3)), pad=0, scale=2)
    assert np.array_equal(tile, zero)


def test_autoencoder_skips_the_kl_plots_with_a_reason(tmp_path):
    data = digits()
    model = model_for(data, name="ae", latent_dim=4)
    metrics = [{k: v for k, v in r.items() if not k.endswith("_kl")} for r in METRICS]
    names = ["kl", "curves", "manifold", "histogram", "samples"]
    out = {o.name: o for o in make_plots(PlotContext(model, data, metrics), names, tmp_path)}
    assert out["kl"].path is None and "no posterior" in out["kl"].note
    assert not (tmp_path / "kl.png").exists()
    for name in names[1:]:
        img = _png(out[name].path)
        assert img.size == _expected_size(name, data, 4, terms=2), name  # curves: loss and recon only
        assert np.asarray(img.convert("L"), dtype=float).std() > 0, name


def test_digits_2d_manifold_and_scatter_are_drawn_in_z(tmp_path):
    data = digits()
    model = model_for(data, latent_dim=2)
    out = make_plots(PlotContext(model, data), ["manifold", "scatter", "traversal"], tmp_path,
                     PlotOptions(steps=6, method="tsne"))  # d = 2: no projection, tsne is ignored
    sizes = {o.name: _png(o.path).size for o in out}
    assert sizes["manifold"] == (900, 900) and sizes["scatter"] == (800, 700)
    assert sizes["traversal"] == tuple(round(v * P.DPI) for v in P.strip_size(2, 7, 8, 8))


def test_bad_requests_are_input_errors(tmp_path):
    ctx = PlotContext(model_for(digits(), latent_dim=2), digits())
    with pytest.raises(VaekitError, match="unknown plot 'manifld'"):
        make_plots(ctx, ["manifld"], tmp_path)
    with pytest.raises(VaekitError, match="--pair: image 999"):
        make_plots(ctx, ["interpolation"], tmp_path, PlotOptions(pair=(0, 999)))
    with pytest.raises(VaekitError, match="--traverse"):
        make_plots(ctx, ["traversal"], tmp_path, PlotOptions(traverse=[5]))
    with pytest.raises(VaekitError, match="--range"):
        make_plots(ctx, ["manifold"], tmp_path, PlotOptions(range=0))
    out = make_plots(PlotContext(model_for(digits(), latent_dim=1), digits()), ["manifold"], tmp_path)
    assert out[0].path is None and "1-D" in out[0].note


def test_training_writes_final_and_progress_pictures_without_changing_the_run(tmp_path):
    over = {"data": {"source": "digits"}, "model": {"latent_dim": 2, "hidden": [32]},
            "train": {"epochs": 2, "batch_size": 128, "progress": False, "tensorboard": False, "plot_every": 1}}
    watched = vaekit.train(vaekit.resolve(overrides=[over]), tmp_path / "a", log=lambda s: None)
    over["train"]["plot_every"] = 0
    plain = vaekit.train(vaekit.resolve(overrides=[over]), tmp_path / "b", log=lambda s: None)
    progress = sorted(p.name for p in (tmp_path / "a" / "progress").iterdir())
    assert progress == [f"{n}_epoch00{e}.png" for n in ("manifold", "reconstructions", "samples") for e in (1, 2)]
    assert not (tmp_path / "b" / "progress").exists()
    for run in ("a", "b"):
        assert {p.name for p in (tmp_path / run / "plots").iterdir()} == {"curves.png", "manifold.png"}
    # Pictures draw from a forked, seeded RNG: the watched run trained exactly like the plain one.
    for key, value in plain.model.state_dict().items():
        assert torch.equal(value, watched.model.state_dict()[key]), key
    saved = json.loads((tmp_path / "a" / "config.json").read_text())
    assert saved["train"]["plot_every"] == 1
    with pytest.raises(VaekitError, match="plot_every"):
        vaekit.resolve(overrides=[{"train": {"plot_every": -1}}])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_registered_model_can_be_pictured(name, tmp_path):
    """Model families differ (labels for a cvae, a full-covariance or hierarchical posterior, a
    learned prior): each plot must draw or say why not, never crash."""
    data = digits()
    model = model_for(data, name=name, latent_dim=2)
    names = ["samples", "traversal", "kl", "histogram"]
    out = make_plots(PlotContext(model, data), names, tmp_path, PlotOptions(steps=3, n=8, max_points=200))
    for o in out:
        if o.path is None:
            assert o.name == "kl" and ("no posterior" in o.note or "not N(0, I)" in o.note), (o.name, o.note)
        else:
            assert np.asarray(_png(o.path).convert("L"), dtype=float).std() > 0, o.name
    drawn = {o.name for o in out if o.path is not None}
    assert drawn >= {"samples", "traversal", "histogram"}
    assert ("kl" in drawn) == (hasattr(model, "posterior") and type(getattr(model, "prior", None)).__name__ == "StandardNormal")


@pytest.mark.parametrize("length, pictures", [(16, True), (10, False)])
def test_vector_data_is_shown_as_square_images_or_skipped(length, pictures, tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "vectors.npz"
    np.savez(path, x_train=rng.random((200, length), dtype=np.float32), x_test=rng.random((40, length), dtype=np.float32))
    data = open_data(DataConfig(source="arrays", path=str(path)))
    model = model_for(data, latent_dim=3)
    out = {o.name: o for o in make_plots(PlotContext(model, data, METRICS), None, tmp_path / "plots",
                                         PlotOptions(steps=3, n=8))}
    image_plots = {"samples", "reconstructions", "manifold", "interpolation", "traversal", "histogram"}
    for name, o in out.items():
        if name in image_plots and not pictures:
            assert o.path is None and "vectors of length 10" in o.note
        else:
            assert o.path is not None and _png(o.path).size[0] > 0, name
    if pictures:  # 16 = 4x4: the samples grid holds 4x4 tiles, 8 to a row
        assert _png(out["samples"].path).size == (2 * (8 * 6 + 2), 2 * (1 * 6 + 2))
