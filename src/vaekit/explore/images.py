"""Dropped image files -> the run's data format, with limits checked before any pixel is decoded.

A file is untrusted input: its bytes are capped (``MAX_BYTES``, enforced by the server before it
reads the body), its header is read first and a picture over ``MAX_PIXELS`` is refused before it
is decoded (a 10,000 x 10,000 PNG is a few hundred kB compressed but 300 MB decoded), and anything
Pillow cannot decode (text, truncated JPEGs) becomes one clear :class:`VaekitError` line.
Conversion follows the folder source (:mod:`vaekit.data.folder`): grey or RGB, bilinear resize
to the run's size, uint8 scaled to [0, 1]; binarization is the explorer's (as held-out data).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from torch import Tensor

from ..errors import VaekitError

MAX_BYTES = 8 * 1024 * 1024  # 8 MiB per upload
MAX_PIXELS = 4096 * 4096  # 16.8 megapixels


def load_upload(raw: bytes, shape: tuple[int, ...]) -> Tensor:
    """Image file bytes -> pixels (1, C, H, W) in [0, 1] for image data of ``shape`` (C, H, W)."""
    from PIL import Image

    if len(shape) != 3 or shape[0] not in (1, 3):
        raise VaekitError("this run's data are not grey or RGB images: there is nothing to drop an image into")
    if not raw:
        raise VaekitError("the file is empty")
    if len(raw) > MAX_BYTES:
        raise VaekitError(f"the file is {len(raw) / 2**20:.1f} MiB; the limit is {MAX_BYTES // 2**20} MiB")
    c, h, w = shape
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below
            with Image.open(io.BytesIO(raw)) as im:  # reads the header only
                iw, ih = im.size
                if iw * ih > MAX_PIXELS:
                    raise VaekitError(f"the image is {iw} x {ih} pixels; the limit is {MAX_PIXELS / 1e6:.1f} megapixels")
                im.load()  # decode now: a truncated file fails here
                from ..data.folder import _grey_u8

                im = _grey_u8(im) if c == 1 else im.convert("RGB")
                if im.size != (w, h):
                    im = im.resize((w, h), Image.Resampling.BILINEAR)  # antialiased when shrinking
                a = np.asarray(im, dtype=np.uint8)
    except VaekitError:
        raise
    except Image.DecompressionBombError:  # Pillow's own limit (twice its warning size), met at open
        raise VaekitError(f"the image is over {MAX_PIXELS / 1e6:.1f} megapixels, the limit") from None
    except MemoryError:
        raise VaekitError("the image is too large to decode") from None
    except Exception as err:  # PIL raises UnidentifiedImageError, OSError, SyntaxError... on bad files
        reason = " ".join(str(err).split())[:200] or type(err).__name__
        raise VaekitError(f"the file cannot be read as an image (PNG, JPEG, GIF, BMP, WebP): {reason}") from None
    a = a[:, :, None] if a.ndim == 2 else a  # (H, W, C)
    return torch.from_numpy(a.astype(np.float32) / np.float32(255.0)).permute(2, 0, 1).unsqueeze(0).contiguous()


__all__ = ["MAX_BYTES", "MAX_PIXELS", "load_upload"]
