"""Images generated in memory for the tests and the benchmarks (nothing downloaded)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def car_like_array(width: int = 320, height: int = 240, seed: int = 0) -> np.ndarray:
    """Textured pixels with a dark body and two round 'wheels': enough structure for every model head."""
    rng = np.random.default_rng(seed)
    image = rng.integers(90, 170, size=(height, width, 3), dtype=np.uint8)
    image[height // 3 : 2 * height // 3, width // 8 : 7 * width // 8] = (40, 60, 150)
    yy, xx = np.ogrid[:height, :width]
    for cx in (width // 4, 3 * width // 4):
        image[(yy - 2 * height // 3) ** 2 + (xx - cx) ** 2 < (min(width, height) // 10) ** 2] = 20
    return image


def encode(array: np.ndarray, fmt: str = "JPEG", **save_args: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt, **save_args)
    return buf.getvalue()
