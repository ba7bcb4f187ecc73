"""Untrusted upload bytes -> an EXIF-corrected RGB image, or a clear 4xx.

Nothing uploaded is trusted: the byte size is capped before decoding, the type comes from the file's magic
bytes (not the client's Content-Type), and the pixel count is read from the header and checked before the
pixels are decoded, so decompression bombs are refused without allocating them.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ApiError

# Our own pixel check runs first with a clear message; Pillow's bomb guard stays on as a backstop.
Image.MAX_IMAGE_PIXELS = 200_000_000

SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP")
EXIF_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class DecodedImage:
    rgb: np.ndarray  # HxWx3 uint8, EXIF orientation applied
    format: str  # JPEG, PNG or WEBP (sniffed)
    data: bytes  # the upload as received
    exif_rotated: bool  # True when EXIF orientation changed the pixel layout

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def sniff_format(data: bytes) -> str | None:
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def decode_upload(data: bytes, max_bytes: int, max_pixels: int) -> DecodedImage:
    if len(data) > max_bytes:
        raise ApiError(413, "upload_too_large", f"upload is {len(data)} bytes; the limit is {max_bytes} bytes")
    if not data:
        raise ApiError(400, "invalid_image", "the uploaded file is empty")
    fmt = sniff_format(data)
    if fmt is None:
        raise ApiError(415, "unsupported_media_type", "not a JPEG, PNG or WebP image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[fmt])
            width, height = image.size
            if width <= 0 or height <= 0:
                raise ApiError(400, "invalid_image", "the image has no pixels")
            if width * height > max_pixels:
                raise ApiError(
                    413, "image_too_large", f"image is {width}x{height} pixels; the limit is {max_pixels} pixels"
                )
            image.load()
            orientation = int(image.getexif().get(EXIF_ORIENTATION_TAG, 1) or 1)
            orientation = orientation if 2 <= orientation <= 8 else 1  # other values are not rotations
            oriented = ImageOps.exif_transpose(image) if orientation != 1 else image
            rgb = np.asarray(oriented.convert("RGB"), dtype=np.uint8)
    except ApiError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ApiError(413, "image_too_large", f"image refused as a decompression bomb: {exc}") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ApiError(400, "invalid_image", f"the {fmt} image could not be decoded: {exc}") from exc
    return DecodedImage(rgb=np.ascontiguousarray(rgb), format=fmt, data=data, exif_rotated=orientation != 1)
