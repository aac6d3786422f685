"""The numbers behind the pictures: grids, paths, projections and per-example scores."""

import numpy as np
import pytest
import torch
from vizkit import digits, model_for

from vaekit.errors import VaekitError
from vaekit.evaluate import elbo
from vaekit.viz import latent as L
from vaekit.viz.catalog import PlotContext, PlotOptions, manifold
from vaekit.viz.grid import image_grid


def test_manifold_corners_are_the_decoded_corner_codes():
    model = model_for(digits(), latent_dim=2)
    xs, ys = torch.linspace(-2, 2, 5), torch.linspace(-1, 3, 4)
    z, images = L.manifold(model, torch.zeros(2), torch.eye(2), xs, ys)
    assert z.shape == (4, 5, 2) and images.shape == (4, 5, 1, 8, 8)
    # Keras's layout: columns run along x, rows along y from the top (largest y) down.
    corners = {(0, 0): (-2, 3), (0, 4): (2, 3), (3, 0): (-2, -1), (3, 4): (2, -1)}
    for (i, j), code in corners.items():
        assert z[i, j].tolist() == pytest.approx(list(code))
        expected = model.decode(torch.tensor([code], dtype=torch.float32))[0]
        assert torch.allclose(images[i, j], expected, atol=1e-6), (i, j)
    assert not torch.allclose(images[0, 0], images[3, 4])  # the decoder does depend on z


def test_manifold_plot_over_two_chosen_dims_keeps_the_others_at_zero(tmp_path, monkeypatch):
    model = model_for(digits(), latent_dim=4)
    seen = {}

    def spy(xs, ys, images, path, labels, title):  # capture what would be drawn
        seen.update(xs=xs, ys=ys, images=images, labels=labels)
        return path

    monkeypatch.setattr("vaekit.viz.plots.plot_manifold", spy)
    manifold(PlotContext(model, digits()), PlotOptions(dims=(1, 3), range=1.5, steps=3), tmp_path / "m.png")
    assert seen["labels"] == ("z[1]", "z[3]") and seen["xs"].tolist() == pytest.approx([-1.5, 0, 1.5])
    top_left = torch.tensor([[0.0, -1.5, 0.0, 1.5]])  # x = z[1] = -1.5, y = z[3] = +1.5, z[0] = z[2] = 0
    assert torch.allclose(seen["images"][0, 0], model.decode(top_left)[0], atol=1e-6)
    with pytest.raises(VaekitError, match="dimension 4 does not exist"):
        manifold(PlotContext(model, digits()), PlotOptions(dims=(0, 4)), tmp_path / "m.png")


def test_principal_directions_find_the_widest_spread():
    g = torch.Generator().manual_seed(0)
    codes = torch.randn(2000, 3, generator=g) * torch.tensor([0.1, 5.0, 1.0]) + torch.tensor([3.0, 0.0, -1.0])
    mean, dirs = L.principal_directions(codes)
    assert mean.tolist() == pytest.approx([3.0, 0.0, -1.0], abs=0.3)
    assert abs(float(dirs[0, 1])) == pytest.approx(1.0, abs=1e-3) and abs(float(dirs[1, 2])) == pytest.approx(1.0, abs=1e-2)
    assert torch.allclose(dirs @ dirs.T, torch.eye(2), atol=1e-5)
    pts, stem = L.project_2d(codes)
    assert stem == "PC" and pts.shape == (2000, 2) and pts[:, 0].std() > 4 * pts[:, 1].std()


def test_slerp_starts_and_ends_at_its_endpoints_and_keeps_the_norm():
    z0, z1 = torch.tensor([3.0, 0.0, 0.0]), torch.tensor([0.0, 3.0, 0.0])
    ts = torch.linspace(0, 1, 7)
    path = L.slerp(z0, z1, ts)
    assert torch.allclose(path[0], z0, atol=1e-6) and torch.allclose(path[-1], z1, atol=1e-6)
    assert torch.allclose(path.norm(dim=1), torch.full((7,), 3.0), atol=1e-5)  # on the arc, not the chord
    line = L.lerp(z0, z1, ts)
    assert torch.allclose(line[3], (z0 + z1) / 2) and float(line[3].norm()) < 2.2
    # Parallel codes: the arc is the line; no division by sin(0).
    assert torch.allclose(L.slerp(z0, 2 * z0, ts), L.lerp(z0, 2 * z0, ts))


def test_traversal_varies_exactly_one_dimension_per_row():
    base = torch.tensor([0.5, -1.0, 2.0, 0.0])
    values = torch.linspace(-3, 3, 5)
    z = L.traversal_codes(base, [1, 3], values)
    assert z.shape == (2, 5, 4)
    for row, dim in enumerate([1, 3]):
        assert z[row, :, dim].tolist() == pytest.approx(values.tolist())
        others = [k for k in range(4) if k != dim]
        assert torch.equal(z[row][:, others], base[others].expand(5, 3))


def test_kl_per_dim_adds_up_to_the_models_kl():
    data = digits()
    model = model_for(data, latent_dim=3)
    x = data.test.x[:100]
    per_dim = L.kl_per_dim(model, x, batch_size=32)
    assert per_dim.shape == (3,) and bool((per_dim >= 0).all())
    assert float(per_dim.sum()) == pytest.approx(float(model(x, reduce=False).kl.mean().detach()), rel=1e-5)


def test_per_example_loss_is_seeded_and_matches_the_evaluation():
    data = digits()
    model = model_for(data, latent_dim=3)
    a = L.per_example_loss(model, data.test.x, data.test.y, batch_size=2048, seed=4)
    b = L.per_example_loss(model, data.test.x, data.test.y, batch_size=2048, seed=4)
    assert a.shape == (300,) and torch.equal(a, b)
    assert float(a.double().mean()) == pytest.approx(elbo(model, data.test, seed=4)["loss"], rel=1e-5)


def test_tsne_projection_and_low_dimensional_codes():
    codes = torch.cat([torch.randn(30, 5), torch.randn(30, 5) + 6])
    pts, stem = L.project_2d(codes, "tsne")
    assert stem == "t-SNE" and pts.shape == (60, 2) and np.isfinite(pts).all()
    # The two clusters stay apart: every point is nearer its own cluster's centre.
    c0, c1 = pts[:30].mean(0), pts[30:].mean(0)
    assert (np.linalg.norm(pts[:30] - c0, axis=1) < np.linalg.norm(pts[:30] - c1, axis=1)).all()
    pts2, stem2 = L.project_2d(codes[:, :2])
    assert stem2 == "z" and np.array_equal(pts2, codes[:, :2].double().numpy())


def test_tick_labels_and_gapless_tiles():
    assert [L.nice(v) for v in (0.0, -0.0, 1.5, 2.0, -1.37, 0.004, 250.0)] == ["0", "0", "1.5", "2", "-1.37", "0.004", "2.5e+02"]
    imgs = torch.rand(2, 3, 3, 4, 5)  # (rows, cols, C, H, W), RGB
    from vaekit.viz.plots import _tiles

    tiled = _tiles(imgs)
    assert tiled.shape == (8, 15, 3)
    assert np.array_equal(tiled[4:8, 10:15], image_grid(imgs[1, 2:3], pad=0))
