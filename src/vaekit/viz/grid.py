"""Tile images into one PNG. Pillow writes it: exact pixel sizes, no figure margins, no backend."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from torch import Tensor


def image_grid(images: Tensor, nrow: int | None = None, pad: int = 2, scale: int = 1) -> np.ndarray:
    """(N, C, H, W) in [0, 1] -> uint8 (rows*(H+pad)+pad, cols*(W+pad)+pad[, 3]) with white gaps.

    ``nrow`` is the number of images per row (default: a square). Vector data (N, D) with a
    square D is shown as D = s*s images.
    """
    x = images.detach().float().cpu().clamp(0, 1)
    if x.dim() == 2:
        side = math.isqrt(x.shape[1])
        if side * side != x.shape[1]:
            raise ValueError(f"cannot show vectors of length {x.shape[1]} as images")
        x = x.view(-1, 1, side, side)
    n, c, h, w = x.shape
    cols = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    grid = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad, c), dtype=np.float32)
    arr = x.permute(0, 2, 3, 1).numpy()  # (N, H, W, C)
    for i in range(n):  # at most a few hundred tiles: a picture, not a hot loop
        r, k = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + k * (w + pad)
        grid[top : top + h, left : left + w] = arr[i]
    out = (grid * 255 + 0.5).astype(np.uint8)
    if scale > 1:
        out = out.repeat(scale, 0).repeat(scale, 1)
    return out[..., 0] if c == 1 else out[..., :3]


def save_grid(images: Tensor, path: str | Path, nrow: int | None = None, pad: int = 2, scale: int = 2) -> Path:
    """Write a grid of images as a PNG and return its path."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image_grid(images, nrow, pad, scale)).save(path)
    return path


def reconstruction_pairs(x: Tensor, recon: Tensor, per_row: int = 8) -> Tensor:
    """Interleave rows: ``per_row`` originals (min(per_row, N) when fewer), then their
    reconstructions below, and so on; a short last row is filled with blank (white) tiles.

    x, recon: (N, *S) -> (2 * rows * cols, *S); show it with ``nrow = pair_columns(N, per_row)``.
    """
    import torch

    cols = pair_columns(x.shape[0], per_row)
    x, recon = x.cpu(), recon.cpu().reshape(x.shape)
    blank = (-x.shape[0]) % cols
    if blank:
        fill = torch.ones(blank, *x.shape[1:], dtype=x.dtype)
        x, recon = torch.cat([x, fill]), torch.cat([recon, fill])
    blocks = [t.view(-1, cols, *x.shape[1:]) for t in (x, recon)]  # (rows, cols, ...)
    return torch.stack(blocks, dim=1).reshape(-1, *x.shape[1:])


def pair_columns(n: int, per_row: int = 8) -> int:
    """Images per row of a reconstruction grid of ``n`` pairs."""
    return max(1, min(per_row, n))
