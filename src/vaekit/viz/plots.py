"""Matplotlib figures of a model's latent space, losses and training curves.

Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas directly: headless,
thread-safe, and without touching pyplot's global backend or state. Every figure has a fixed size
in inches at :data:`DPI`, and is saved without ``bbox_inches="tight"``, so a PNG's pixel size is
known in advance (``figsize * DPI``) and tests can check it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib
import numpy as np
from matplotlib.ticker import MaxNLocator
from torch import Tensor

from .grid import image_grid
from .latent import nice

DPI = 100
CURVE_PANEL = (4.2, 3.4)  # inches per training-curve panel
MANIFOLD_SIZE = (9.0, 9.0)
SCATTER_SIZE = (8.0, 7.0)
KL_SIZE = (8.0, 4.0)
HIST_SIZE = (10.0, 7.0)
STRIP_WIDTH = 10.0


def _figure(size: tuple[float, float]) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, facecolor="white")
    return path


def _show(ax: Any, array: np.ndarray) -> None:
    """imshow a uint8 grid from :func:`image_grid`: grey (H, W) or RGB (H, W, 3), no smoothing."""
    if array.ndim == 2:
        ax.imshow(array, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(array, interpolation="nearest")


def _tiles(images: Tensor) -> np.ndarray:
    """(rows, cols, C, H, W) in [0, 1] -> one uint8 picture without gaps (rows*H, cols*W[, C])."""
    rows, cols = images.shape[:2]
    return image_grid(images.reshape(rows * cols, *images.shape[2:]), nrow=cols, pad=0)


def plot_curves(rows: list[dict[str, Any]], path: str | Path,
                terms: Sequence[str] = ("loss", "recon", "kl")) -> Path:
    """Per-epoch training curves from ``metrics.jsonl`` rows: one panel per term, train and held out.

    The figure is ``len(terms) * CURVE_PANEL[0]`` by ``CURVE_PANEL[1]`` inches.
    """
    fig = _figure((CURVE_PANEL[0] * len(terms), CURVE_PANEL[1]))
    axes = fig.subplots(1, len(terms), squeeze=False)[0]
    styles = {"train": ("C0", "o"), "trainset": ("C3", "D"), "val": ("C1", "s"), "test": ("C2", "^")}
    for ax, term in zip(axes, terms):
        for split, (colour, marker) in styles.items():
            pts = [(r["epoch"], r[f"{split}_{term}"]) for r in rows if f"{split}_{term}" in r]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, color=colour, marker=marker, markersize=3, label=split)
        ax.set_title({"loss": "loss (negative ELBO)", "recon": "reconstruction", "kl": "KL"}.get(term, term))
        ax.set_xlabel("epoch")
        ax.set_ylabel("nats per example")  # every term is a per-example mean of -log densities or a KL
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_manifold(xs: Tensor, ys: Tensor, images: Tensor, path: str | Path, labels: tuple[str, str],
                  title: str) -> Path:
    """The tiled decoded grid (rows, cols, C, H, W) with z values on the axes (Keras's plot_latent_space)."""
    fig = _figure(MANIFOLD_SIZE)
    ax = fig.add_subplot(1, 1, 1)
    rows, cols, _, h, w = images.shape
    _show(ax, _tiles(images))
    step = max(1, cols // 10)  # at most ~10 labelled ticks per axis
    ax.set_xticks([j * w + (w - 1) / 2 for j in range(0, cols, step)])
    ax.set_xticklabels([nice(float(v)) for v in xs[::step]], fontsize=8)
    ys_down = ys.flip(0)  # row i shows ys reversed: y grows upwards
    ax.set_yticks([i * h + (h - 1) / 2 for i in range(0, rows, step)])
    ax.set_yticklabels([nice(float(v)) for v in ys_down[::step]], fontsize=8)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path)


def plot_scatter(points: np.ndarray, labels: np.ndarray | None, classes: list[str] | None, path: str | Path,
                 stem: str, title: str) -> Path:
    """Codes (N, 2) as points, coloured by label when there are labels."""
    fig = _figure(SCATTER_SIZE)
    ax = fig.add_subplot(1, 1, 1)
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=4, alpha=0.6, color="C0")
    else:
        uniq = np.unique(labels)
        if len(uniq) <= 20:  # one colour per class, named in a legend
            cmap = matplotlib.colormaps["tab10" if len(uniq) <= 10 else "tab20"]
            for k, u in enumerate(uniq):
                sel = labels == u
                name = classes[int(u)] if classes is not None and 0 <= int(u) < len(classes) else str(u)
                ax.scatter(points[sel, 0], points[sel, 1], s=4, alpha=0.7, color=cmap(k), label=name)
            ax.legend(title="label", markerscale=3, fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
        else:  # many classes: a continuous colour bar
            sc = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="viridis", s=4, alpha=0.7)
            fig.colorbar(sc, ax=ax).set_label("label")
    ax.set_xlabel(f"{stem}[0]" if stem == "z" else f"{stem} 1")
    ax.set_ylabel(f"{stem}[1]" if stem == "z" else f"{stem} 2")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def strip_size(rows: int, cols: int, h: int, w: int) -> tuple[float, float]:
    """Figure size (inches) of :func:`plot_strips`: fixed width, height from the tiles' aspect."""
    tile = (STRIP_WIDTH - 1.6) / cols  # inches per tile, leaving room for the row labels
    return STRIP_WIDTH, round(0.9 + rows * tile * h / w, 2)


def plot_strips(images: Tensor, path: str | Path, row_labels: list[str], title: str,
                col_labels: list[str] | None = None) -> Path:
    """Rows of images (rows, cols, C, H, W) without gaps, a label left of each row."""
    rows, cols, _, h, w = images.shape
    fig = _figure(strip_size(rows, cols, h, w))
    ax = fig.add_subplot(1, 1, 1)
    _show(ax, _tiles(images))
    ax.set_yticks([i * h + (h - 1) / 2 for i in range(rows)])
    ax.set_yticklabels(row_labels, fontsize=8)
    if col_labels is not None:
        ax.set_xticks([j * w + (w - 1) / 2 for j in range(cols)])
        ax.set_xticklabels(col_labels, fontsize=7)
    else:
        ax.set_xticks([])
    for i in range(1, rows):  # thin separators between rows
        ax.axhline(i * h - 0.5, color="white", linewidth=1)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_kl_dims(kl: Tensor, path: str | Path, collapsed_below: float = 0.01) -> Path:
    """KL per latent dimension as bars; collapsed dimensions (KL < ``collapsed_below``) in grey."""
    fig = _figure(KL_SIZE)
    ax = fig.add_subplot(1, 1, 1)
    values = kl.double().numpy()
    active = values >= collapsed_below
    colours = ["C0" if a else "0.6" for a in active]
    ax.bar(np.arange(len(values)), values, color=colours)
    ax.set_xlabel("latent dimension")
    ax.set_ylabel("KL(q(z_d|x) || N(0,1)) [nats]")
    ax.set_title(f"KL per dimension: {int(active.sum())} of {len(values)} active "
                 f"(grey: < {collapsed_below:g} nats, collapsed); total {values.sum():.2f} nats")
    if len(values) <= 32:
        ax.set_xticks(np.arange(len(values)))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def plot_loss_histogram(losses: Tensor, x: Tensor, path: str | Path, what: str, k: int = 8) -> Path:
    """Histogram of per-example scores, with the ``k`` most and ``k`` least typical images beneath.

    Low loss = typical, high loss = atypical: the anomaly-detection view of a generative model.
    """
    fig = _figure(HIST_SIZE)
    grid = fig.add_gridspec(3, 1, height_ratios=[2.2, 1, 1])
    ax = fig.add_subplot(grid[0])
    values = losses.double().numpy()
    ax.hist(values, bins=min(60, max(10, len(values) // 20)), color="C0", alpha=0.85)
    order = np.argsort(values, kind="stable")
    k = min(k, len(values))
    for i in order[:k]:
        ax.axvline(values[i], color="C2", alpha=0.5, linewidth=0.8)
    for i in order[-k:]:
        ax.axvline(values[i], color="C3", alpha=0.5, linewidth=0.8)
    ax.set_xlabel(f"{what} per image (n = {len(values)}, median {np.median(values):.1f})")
    ax.set_ylabel("images")
    ends = [(order[:k], "most typical (lowest)"), (order[::-1][:k], "least typical (highest)")]
    for row, (idx, name) in enumerate(ends):
        sub = fig.add_subplot(grid[row + 1])
        _show(sub, image_grid(x[list(idx)], nrow=k, pad=1))
        sub.set_xticks([])
        sub.set_yticks([])
        sub.set_ylabel(name.split(" (")[0].replace(" ", "\n"), fontsize=8)
        sub.set_title(f"{name}: " + ", ".join(f"{values[i]:.0f}" for i in idx), fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


__all__ = [
    "DPI",
    "plot_curves",
    "plot_kl_dims",
    "plot_loss_histogram",
    "plot_manifold",
    "plot_scatter",
    "plot_strips",
    "strip_size",
]
