"""``data.image_size`` and ``data.grayscale`` for every image source, on pixels already in [0, 1].

Image folders apply both while decoding (Pillow); MNIST, digits and arrays arrive as tensors and
are brought to the same result here: grey -> RGB repeats the channel, RGB -> grey is the ITU-R 601
luma Pillow's ``convert("L")`` uses, and resizing is bilinear with antialiasing (torch's
``antialias=True`` follows Pillow's filter). On a folder's decoded images both are no-ops.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import DataError

LUMA = (0.299, 0.587, 0.114)  # Pillow's L = R * 299/1000 + G * 587/1000 + B * 114/1000
CHUNK = 4096  # images resized at a time: bounds the float32 temporaries


def adapt_images(x: Tensor, image_size: list[int] | None, grayscale: bool | None, where: str) -> tuple[Tensor, list[str]]:
    """``x`` (N, C, H, W) in [0, 1] with ``grayscale`` and ``image_size`` applied, and what changed."""
    if image_size is None and grayscale is None:
        return x, []
    if x.dim() != 4:
        asked = "data.image_size" if image_size is not None else "data.grayscale"
        raise DataError(f"{where}: {asked} applies to images, but these examples are vectors of "
                        f"{x.shape[-1]} values; remove it")
    done = []
    c = x.shape[1]
    if grayscale is not None and c == 4:
        raise DataError(f"{where}: data.grayscale cannot convert 4-channel arrays (is the 4th alpha?); "
                        "save them as 1 or 3 channels, or remove data.grayscale")
    if grayscale and c == 3:
        x = torch.einsum("nchw,c->nhw", x, torch.tensor(LUMA, dtype=x.dtype))[:, None].clamp_(0, 1)
        done.append("RGB -> grey")
    elif grayscale is False and c == 1:
        x = x.expand(-1, 3, -1, -1).contiguous()
        done.append("grey -> RGB")
    if image_size is not None and len(x) and tuple(x.shape[2:]) != tuple(image_size):
        h, w = x.shape[2:]
        size = (int(image_size[0]), int(image_size[1]))
        x = torch.cat([F.interpolate(x[i : i + CHUNK], size=size, mode="bilinear", antialias=True,
                                     align_corners=False).clamp_(0, 1) for i in range(0, len(x), CHUNK)])
        done.append(f"resized {h}x{w} -> {size[0]}x{size[1]}")
    return x, done
