"""The named plots of a run, and which of them apply to a given model and data.

``make_plots(ctx, names, out_dir, opts)`` writes ``<out_dir>/<name>.png`` for each name and says
why any plot was skipped (a plain autoencoder has no KL; vector data has no pictures; a 1-D latent
has no plane). The CLI's ``vaekit plot``, the trainer's end-of-run pictures and the HTML report
all go through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from ..errors import VaekitError
from . import latent as L
from . import plots as P
from .context import PlotContext, PlotOptions, Skip, open_context
from .grid import pair_columns, reconstruction_pairs, save_grid


def _is_image(ctx: PlotContext) -> None:
    shape = ctx.data.shape
    if len(shape) == 1 and int(shape[0] ** 0.5) ** 2 != shape[0]:
        raise Skip(f"the data are vectors of length {shape[0]}, not images")


def _pictures(ctx: PlotContext, t: Tensor) -> Tensor:
    """Examples (..., *S) as images (..., C, H, W): square vectors (..., s*s) become (..., 1, s, s)."""
    if len(ctx.data.shape) == 3:
        return t
    side = int(ctx.data.shape[0] ** 0.5)
    return t.reshape(*t.shape[:-1], 1, side, side)


def _frame(ctx: PlotContext, opts: PlotOptions) -> tuple[Tensor, Tensor, Tensor, list[str]]:
    """Where to look in latent space: (center (D,), basis (2, D), scale (2,), axis labels).

    Under a N(0, I) prior the plane goes through the origin and spans ``range`` prior standard
    deviations; for other models it goes through the codes' mean and spans ``range`` standard
    deviations of the codes along each axis, so the picture covers where the data actually are.
    """
    d = ctx.model.latent_dim
    if opts.dims is not None:
        basis = L.axis_basis(opts.dims, d)
        labels = [f"z[{opts.dims[0]}]", f"z[{opts.dims[1]}]"]
    elif d == 2:
        basis, labels = torch.eye(2), ["z[0]", "z[1]"]
    else:
        _, basis = L.principal_directions(ctx.codes(opts.max_points))
        labels = ["z · PC 1 (test codes)", "z · PC 2 (test codes)"]
    if L.has_standard_prior(ctx.model):
        return torch.zeros(d), basis, torch.ones(2), labels
    codes = ctx.codes(opts.max_points)
    proj = codes @ basis.T
    return codes.mean(0), basis, proj.std(0).clamp_min(1e-6), labels


def samples(ctx: PlotContext, opts: PlotOptions, path: Path) -> Path:
    _is_image(ctx)
    with torch.random.fork_rng():
        torch.manual_seed(opts.seed)
        x = ctx.model.sample(opts.n, opts.temperature)
    return save_grid(x, path, nrow=8)


def reconstructions(ctx: PlotContext, opts: PlotOptions, path: Path) -> Path:
    _is_image(ctx)
    x = ctx.split[1].x[:32]
    if len(x) < 8:
        raise Skip(f"the {ctx.split[0]} split has {len(x)} images; reconstructions show rows of 8")
    recon = L.decode_all(ctx.model, L.encode_all(ctx.model, x))
    return save_grid(reconstruction_pairs(x, recon), path, nrow=pair_columns(len(x)))


def curves(ctx: PlotContext, opts: PlotOptions, path: Path) -> Path:
    if not ctx.metrics:
        raise Skip("metrics.jsonl has no rows yet")
    has_kl = L.has_posterior(ctx.model)
    return P.plot_curves(ctx.metrics, path, ("loss", "recon", "kl") if has_kl else ("loss", "recon"))


def manifold(ctx: PlotContext, opts: PlotOptions, path: Path) -> Path:
    _is_image(ctx)
    if ctx.model.latent_dim < 2:
        raise Skip("the latent space is 1-D; see the traversal plot")
    center, basis, scale, labels = _frame(ctx, opts)
    # Split the center into its in-plane coordinates (the axes' values) and the rest (held fixed).
    coord = basis @ center
    rest = center - coord @ basis
    steps = opts.steps or 20
    xs = coord[0] + opts.range * scale[0] * L.linspace(-1, 1, steps)
    ys = coord[1] + opts.range * scale[1] * L.linspace(-1, 1, steps)
    _, images = L.manifold(ctx.model, rest, basis, xs, ys)
    images = _pictures(ctx, images)
    where = "other dims at 0" if L.has_standard_prior(ctx.model) and ctx.model.latent_dim > 2 else ""
    title = f"decoded latent grid, {steps}x{steps}" + (f" ({where})" if where else "")
    return P.plot_manifold(xs, ys, images, path, (labels[0], labels[1]), title)


def scatter(ctx: PlotContext, opts: PlotOptions, path: Path) -> Path:
    name, split = ctx.split
    limit = min(opts.max_points, 2000) if opts.method == "tsne" else opts.max_points
    codes = ctx.codes(limit)
    pts, stem = L.project_2d(codes, opts.method if ctx.model.latent_dim > 2 else "pca", opts.seed)
    labels = None if split.y is None else split.y[: len(codes)].numpy()
    how = {"z": "codes", "PC": "codes, PCA", "t-SNE": "codes, t-SNE"}[stem]
    title = f"{name} set: {len(codes)} posterior means ({how})" if L.has_posterior(ctx.model) else \
        f"{name} set: {len(codes)} codes ({how})"
    return P.plot_scatter(pts, labels, ctx.data.classes, path, stem, title)


def interpolation(ctx: PlotContext, opts: PlotOptions, path: Path) -> Path:
    _is_image(ctx)
    name, split = ctx.split
    i, j = opts.pair
    for k in (i, j):
        if not 0 <= k < len(split):
            raise VaekitError(f"--pair: image {k} does not exist (the {name} split has {len(split)})")
    z0, z1 = L.encode_all(ctx.model, split.x[[i, j]])
    x = _pictures(ctx, split.x[[i, j]])
    center = _frame(ctx, opts)[0]
    steps = opts.steps or 10
    ts = L.linspace(0, 1, steps) if steps > 1 else torch.tensor([0.0, 1.0])
    paths = torch.stack([L.lerp(z0, z1, ts), L.slerp(z0 - center, z1 - center, ts) + center])
    dec = L.decode_all(ctx.model, paths.reshape(-1, paths.shape[-1])).view(2, len(ts), *x.shape[1:])
    ends = x.view(1, 2, *x.shape[1:]).expand(2, 2, *x.shape[1:])
    tiles = torch.cat([ends[:, :1], dec, ends[:, 1:]], dim=1)
    cols = ["x_a"] + [L.nice(float(t)) for t in ts] + ["x_b"]
    return P.plot_strips(tiles, path, ["linear", "slerp"], f"{name} images #{i} -> #{j}: decoded paths", cols)


def traversal(ctx: PlotContext, opts: PlotOptions, path: Path) -> Path:
    _is_image(ctx)
    name, split = ctx.split
    if not 0 <= opts.index < len(split):
        raise VaekitError(f"--index: image {opts.index} does not exist (the {name} split has {len(split)})")
    d = ctx.model.latent_dim
    if opts.traverse:
        dims = list(opts.traverse)
        for k in dims:
            if not 0 <= k < d:
                raise VaekitError(f"--traverse: latent dimension {k} does not exist (the model has {d})")
    else:  # the most informative dims: highest KL (VAEs) or code variance (others)
        if L.has_posterior(ctx.model):
            score = L.kl_per_dim(ctx.model, split.x[:1000])
        else:
            score = ctx.codes(1000).var(0)
        dims = sorted(score.argsort(descending=True)[:10].tolist())
    base = L.encode_all(ctx.model, split.x[opts.index : opts.index + 1])[0]
    x = _pictures(ctx, split.x[opts.index : opts.index + 1])
    prior = L.has_standard_prior(ctx.model)
    codes = ctx.codes(opts.max_points)
    steps = opts.steps or 10
    rows = []
    for k in dims:  # each row spans its own dim: +-range prior sd, or +-range code sd around the mean
        if prior:
            mid, sd = 0.0, 1.0
        else:
            mid, sd = float(codes[:, k].mean()), float(codes[:, k].std().clamp_min(1e-6))
        values = mid + opts.range * sd * L.linspace(-1, 1, steps)
        rows.append(L.traversal_codes(base, [k], values))
    z = torch.cat(rows)  # (len(dims), steps, D)
    dec = L.decode_all(ctx.model, z.reshape(-1, d)).view(len(dims), steps, *x.shape[1:])
    tiles = torch.cat([x.expand(len(dims), *x.shape[1:]).unsqueeze(1), dec], dim=1)
    cols = ["x"] + ([f"{L.nice(-opts.range)}σ"] + [""] * (steps - 2) + [f"+{L.nice(opts.range)}σ"]
                    if steps > 1 else ["0"])
    title = f"{name} image #{opts.index}: one latent dimension varied, the others at its code"
    return P.plot_strips(tiles, path, [f"z[{k}]" for k in dims], title, cols)


def kl(ctx: PlotContext, opts: PlotOptions, path: Path) -> Path:
    if not L.has_posterior(ctx.model):
        raise Skip(f"the '{ctx.model.name}' model has no posterior q(z|x), so no KL term")
    if not L.has_standard_prior(ctx.model):
        raise Skip("the prior is not N(0, I): the KL does not split into per-dimension terms")
    return P.plot_kl_dims(L.kl_per_dim(ctx.model, ctx.split[1].x[: opts.max_points]), path)


def histogram(ctx: PlotContext, opts: PlotOptions, path: Path) -> Path:
    _is_image(ctx)
    name, split = ctx.split
    n = min(opts.max_points, len(split))
    y = None if split.y is None else split.y[:n]
    losses = L.per_example_loss(ctx.model, split.x[:n], y, seed=opts.seed)
    what = "negative ELBO [nats]" if L.has_posterior(ctx.model) else "loss (reconstruction error)"
    return P.plot_loss_histogram(losses, split.x[:n], path, f"{name} {what}")


PlotFn = Callable[[PlotContext, PlotOptions, Path], Path]

PLOTS: dict[str, tuple[PlotFn, str]] = {
    "samples": (samples, "decoded draws from the prior (--temperature, -n)"),
    "reconstructions": (reconstructions, "rows 1, 3, 5, ...: test images; rows 2, 4, 6, ...: the reconstruction of the image above it"),
    "curves": (curves, "loss, reconstruction and KL per epoch, train and held out"),
    "manifold": (manifold, "decoded grid over a latent plane (--range, --steps, --dims)"),
    "scatter": (scatter, "codes of the test set coloured by label (--method pca|tsne)"),
    "interpolation": (interpolation, "linear and spherical paths between two images (--pair)"),
    "traversal": (traversal, "one latent dimension varied at a time (--index, --traverse)"),
    "kl": (kl, "KL per latent dimension: posterior collapse at a glance"),
    "histogram": (histogram, "per-image negative ELBO with the most/least typical images"),
}


@dataclass
class Outcome:
    """One plot's result: the file written, or why it was skipped."""

    name: str
    path: Path | None
    note: str = ""


def check_names(names: list[str]) -> None:
    """Refuse a plot name that is not in the catalogue, naming the valid ones."""
    unknown = [n for n in names if n not in PLOTS]
    if unknown:
        raise VaekitError(f"unknown plot '{unknown[0]}' (choose from: {', '.join(PLOTS)})")


def make_plots(ctx: PlotContext, names: list[str] | None, out_dir: str | Path,
               opts: PlotOptions | None = None, suffix: str = "") -> list[Outcome]:
    """Write ``out_dir/<name><suffix>.png`` for each name (default: all); skipped plots carry a note."""
    opts = opts or PlotOptions()
    check_names(names or [])
    if (opts.steps is not None and opts.steps < 1) or opts.range <= 0 or opts.n < 1 or opts.temperature < 0:
        raise VaekitError("--steps and -n must be at least 1, --range > 0 and --temperature >= 0")
    was = ctx.model.training
    ctx.model.eval()
    out = []
    try:
        for name in names or list(PLOTS):
            try:
                out.append(Outcome(name, PLOTS[name][0](ctx, opts, Path(out_dir) / f"{name}{suffix}.png")))
            except Skip as why:
                out.append(Outcome(name, None, str(why)))
    finally:
        ctx.model.train(was)
    return out


__all__ = ["PLOTS", "check_names", "open_context", "Outcome", "PlotContext", "PlotOptions", "make_plots"]
