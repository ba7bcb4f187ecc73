"""Small image builders for the service tests (everything generated in memory; nothing downloaded)."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

from devtools.images import car_like_array, encode

__all__ = ["car_like_array", "encode"]  # re-exported: the service tests' image helpers in one place


def jpeg_bytes(width: int = 320, height: int = 240, seed: int = 0) -> bytes:
    return encode(car_like_array(width, height, seed), "JPEG", quality=90)


def png_bytes(width: int = 320, height: int = 240) -> bytes:
    return encode(car_like_array(width, height), "PNG")


def webp_bytes(width: int = 320, height: int = 240) -> bytes:
    return encode(car_like_array(width, height), "WEBP", quality=80)


def exif_rotated_jpeg(width: int = 300, height: int = 200, orientation: int = 6) -> bytes:
    """A width x height JPEG whose EXIF says 'rotate': the upright image is height x width for 5-8."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(car_like_array(width, height), "JPEG", exif=exif)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid 1-bit grayscale PNG of width x height black pixels, a few tens of KB compressed.

    Written by hand (not with Pillow) so the test never allocates the pixels it is about to refuse.
    """
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    rows_per_chunk = 1000
    parts = [compressor.compress(row * min(rows_per_chunk, height - y)) for y in range(0, height, rows_per_chunk)]
    idat = b"".join(parts) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, grayscale
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def image_size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size
