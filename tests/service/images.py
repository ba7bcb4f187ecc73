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


# TIFF field types of the EXIF entries written by `exif_jpeg` (the number each type has in the TIFF spec).
TIFF_TYPES = {"ASCII": 2, "SHORT": 3, "RATIONAL": 5, "UNDEFINED": 7, "SSHORT": 8, "FLOAT": 11, "DOUBLE": 12}


def raw_exif(entries: list[tuple[int, str, int, bytes]]) -> bytes:
    """An EXIF block written byte by byte, so a tag can have any type (Pillow writes only the right ones).

    `entries`: (tag, TIFF type name, count, little-endian payload)."""
    head = b"II*\x00" + struct.pack("<I", 8)
    data_offset = 8 + 2 + 12 * len(entries) + 4
    ifd, extra = struct.pack("<H", len(entries)), b""
    for tag, kind, count, payload in sorted(entries):
        if len(payload) <= 4:
            ifd += struct.pack("<HHI", tag, TIFF_TYPES[kind], count) + payload.ljust(4, b"\x00")
        else:
            ifd += struct.pack("<HHII", tag, TIFF_TYPES[kind], count, data_offset + len(extra))
            extra += payload + b"\x00" * (len(payload) % 2)
    return b"Exif\x00\x00" + head + ifd + struct.pack("<I", 0) + extra


def exif_jpeg(entries: list[tuple[int, str, int, bytes]], width: int = 300, height: int = 200) -> bytes:
    return encode(car_like_array(width, height), "JPEG", exif=raw_exif(entries))


def avif_bytes(width: int = 256, height: int = 192) -> bytes:
    return encode(car_like_array(width, height), "AVIF", quality=60)


def with_ispe(data: bytes, width: int, height: int) -> bytes:
    """An AVIF/HEIF whose `ispe` box (the image size its header claims) is rewritten to width x height."""
    at = data.find(b"ispe")
    assert at > 0, "no ispe box"
    # box size, "ispe", version and flags, then width and height, 32 bits each
    return data[: at + 8] + struct.pack(">II", width, height) + data[at + 16 :]


def avif_that_breaks_the_decoder() -> bytes:
    """A real AVIF with one header byte zeroed such that Pillow's AVIF decoder raises RuntimeError (found by
    search rather than hard-coded: the byte depends on the libavif version's box layout)."""
    base = avif_bytes()
    for offset in range(8, 512):
        data = bytearray(base)
        data[offset] = 0
        try:
            with Image.open(io.BytesIO(bytes(data)), formats=["AVIF"]) as image:
                image.load()
        except RuntimeError:
            return bytes(data)
        except Exception:  # other failures are already handled; keep looking for a RuntimeError
            continue
    raise AssertionError("no header edit made the AVIF decoder raise RuntimeError")
