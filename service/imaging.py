"""Untrusted upload bytes -> an EXIF-corrected RGB image no larger than the model needs, or a clear 4xx.

Nothing uploaded is trusted: the byte size is capped before decoding, the type comes from the file's magic
bytes (not the client's Content-Type), and the pixel count and shape are read from the header and checked
before the pixels are decoded, so decompression bombs and degenerate shapes are refused without allocating them.

Memory: the model resizes every image to its input size anyway (shortest edge MIN_SIZE_TEST, longest at most
MAX_SIZE_TEST), so the pixels are reduced to that size here. JPEGs are decoded at 1/2, 1/4 or 1/8 scale by
the decoder itself (`Image.draft`), so a 7680x5120 photo never exists at full size; PNG, WebP, HEIF and AVIF are decoded
at full size (bounded by the pixel limit and the decode budget: `DECODE_BYTES_PER_PIXEL`) and then reduced
without a full-size copy (`reduce_to_rgb`). The sizes the caller
reports are those of the EXIF-corrected original (`original_width`, `original_height`); `scale_x`/`scale_y`
map coordinates of the reduced pixels back to it.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

import numpy as np
import pillow_heif
from PIL import Image

from .avif_header import avif_max_frame_size
from .decode_budget import reserve_decode
from .exceptions import PoseError, public_message

# Pillow's bomb guard (over 200M pixels, inside Image.open, before our check_shape) stays on as a backstop;
# decode_upload rewords its refusal with our limit.
Image.MAX_IMAGE_PIXELS = 200_000_000
PILLOW_PIXELS = re.compile(r"\((\d+) pixels\)")  # "Image size (400000000 pixels) exceeds limit of ..."

# HEIC/HEIF (the iPhone default) through pillow-heif's Pillow plugin; AVIF is Pillow's own (11.3 and later).
# The plugin applies the HEIF rotation itself and drops the EXIF orientation, so nothing is rotated twice.
pillow_heif.register_heif_opener()

SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "HEIF", "AVIF")
SUPPORTED_NAMES = "a JPEG, PNG, WebP, HEIC/HEIF or AVIF image"
# Peak memory of one decode per decoded pixel (a JPEG's: its draft size), measured by `python -m
# benchmarks.decode_memory` (the worst mode of each format, 39 MP; docs/operations.md), with about 8 % to spare.
# Each decode reserves pixels x this from the DecodeLimiter's budget before its pixels exist. WebP costs most:
# Pillow's decoder holds libwebp's RGBA canvas, a bytes copy of it and its own image at once.
DECODE_BYTES_PER_PIXEL = {"JPEG": 11.5, "PNG": 7.25, "WEBP": 17.25, "HEIF": 8.0, "AVIF": 12.5}
# ISO-BMFF brands (the `ftyp` box: major brand, then compatible brands) of the two still-image formats.
AVIF_BRANDS = {b"avif", b"avis"}
HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
EXIF_ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transpose that makes the stored pixels upright (what ImageOps.exif_transpose does,
# without rewriting the EXIF: that rewrite is where a wrongly typed tag elsewhere in the block used to fail).
ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# No car can be seen in fewer pixels, and the model's resize turns a side this short into zero pixels
# beyond these proportions (1707x1 -> 853x0): such shapes get a 400 with this reason, never a 500.
MIN_IMAGE_SIDE = 32
MAX_ASPECT_RATIO = 16.0


@dataclass(frozen=True)
class WorkingSize:
    """The largest pixels worth keeping: shortest edge `short`, longest edge at most `long` (never enlarged)."""

    short: int
    long: int

    def fit(self, width: int, height: int) -> tuple[int, int]:
        scale = min(1.0, self.short / min(width, height), self.long / max(width, height))
        return max(1, round(width * scale)), max(1, round(height * scale))


@dataclass(frozen=True)
class DecodedImage:
    rgb: np.ndarray  # HxWx3 uint8, EXIF orientation applied, reduced to the working size
    format: str  # JPEG, PNG, WEBP, HEIF or AVIF (sniffed)
    data: bytes  # the upload as received
    exif_rotated: bool  # True when EXIF orientation changed the pixel layout
    original_width: int = 0  # the EXIF-corrected upload's size; 0 = same as rgb
    original_height: int = 0

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def reported_size(self) -> tuple[int, int]:
        return (self.original_width or self.width, self.original_height or self.height)

    @property
    def scale_x(self) -> float:
        return self.reported_size[0] / self.width

    @property
    def scale_y(self) -> float:
        return self.reported_size[1] / self.height


def sniff_format(data: bytes) -> str | None:
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp":
        box_size = int.from_bytes(data[:4], "big")
        end = min(len(data), box_size if 16 <= box_size <= 4096 else 16)
        brands = {data[8:12]} | {data[i : i + 4] for i in range(16, end - 3, 4)}
        if brands & AVIF_BRANDS:  # AVIF files also name mif1: the AV1 brand decides
            return "AVIF"
        if brands & HEIF_BRANDS:
            return "HEIF"
    return None


def exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation (1-8), or 1 when the tag is absent or broken: a tag stored with the wrong type
    (ASCII, UNDEFINED, a FLOAT infinity), a value outside 1-8 or an EXIF block that does not parse costs the
    photo its rotation, never the photo itself. Only an integer is an orientation (the tag is a SHORT)."""
    try:
        value = image.getexif().get(EXIF_ORIENTATION_TAG, 1)
    except Exception:  # any failure of the EXIF parser: the photo is read as stored
        return 1
    if isinstance(value, bool) or not isinstance(value, int):
        return 1
    return value if value in ORIENTATION_TRANSPOSE else 1


def check_shape(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise PoseError("invalid_image", "the image has no pixels")
    if width * height > max_pixels:
        raise PoseError("image_too_large", f"image is {width}x{height} pixels; the limit is {max_pixels} pixels")
    if min(width, height) < MIN_IMAGE_SIDE:
        raise PoseError(
            "invalid_image", f"image is {width}x{height} pixels; both sides must be at least {MIN_IMAGE_SIDE}"
        )
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise PoseError(
            "invalid_image",
            f"image is {width}x{height} pixels; the long side may be at most {MAX_ASPECT_RATIO:g} times the short one",
        )


def check_avif_extents(data: bytes, width: int, height: int) -> None:
    """An AVIF whose header (`ispe`) claims more than its AV1 stream holds is refused: libavif would upscale the
    stream's frame to the claimed size (a 256x192 picture reported, and decoded, as 6000x6500)."""
    stream = avif_max_frame_size(data)
    if stream is not None and (width > stream[0] or height > stream[1]):
        raise PoseError(
            "invalid_image",
            f"the AVIF header says {width}x{height} pixels but its AV1 stream holds at most {stream[0]}x{stream[1]}",
        )


def stored_target_size(width: int, height: int, orientation: int, working: WorkingSize | None) -> tuple[int, int]:
    """The reduced size in the stored orientation: the working size fits the upright image."""
    if working is None:
        return width, height
    if orientation >= 5:  # stored sideways: fit the upright (height x width) image, then turn the size back
        upright = working.fit(height, width)
        return upright[1], upright[0]
    return working.fit(width, height)


def reduce_to_rgb(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`image.convert("RGB").resize(size)` without its full-size RGB copy (4 bytes a pixel: Pillow keeps RGB
    in 32 bits) for the modes decoders produce: RGB and L are resized as they are, and an alpha image one colour
    band at a time (1 byte a pixel). The alpha is dropped unblended, as `convert("RGB")` drops it."""
    if image.size == size:
        return image.convert("RGB")
    if image.mode in ("RGB", "L"):
        return image.resize(size, Image.Resampling.BILINEAR).convert("RGB")
    if image.mode in ("RGBA", "RGBX", "LA"):
        colour = image.mode[:-1]
        bands = [image.getchannel(band).resize(size, Image.Resampling.BILINEAR) for band in colour]
        return Image.merge(colour, bands).convert("RGB")
    return image.convert("RGB").resize(size, Image.Resampling.BILINEAR)


def decode_upload(data: bytes, max_bytes: int, max_pixels: int, working: WorkingSize | None = None) -> DecodedImage:
    if len(data) > max_bytes:
        raise PoseError("upload_too_large", f"upload is {len(data)} bytes; the limit is {max_bytes} bytes")
    if not data:
        raise PoseError("invalid_image", "the uploaded file is empty")
    fmt = sniff_format(data)
    if fmt is None:
        raise PoseError("unsupported_media_type", f"not {SUPPORTED_NAMES}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[fmt])
            stored_w, stored_h = image.size
            # From the header, before any pixel is decoded. The checks do not depend on orientation.
            check_shape(stored_w, stored_h, max_pixels)
            if fmt == "AVIF":
                check_avif_extents(data, stored_w, stored_h)
            orientation = 1
            if fmt == "JPEG":
                # A JPEG's orientation comes first: its draft size depends on it (its EXIF read decodes no pixels).
                orientation = exif_orientation(image)
                stored_target = stored_target_size(stored_w, stored_h, orientation, working)
                if stored_target != image.size:
                    # The decoder skips the detail we would throw away: at least the target size, at a fraction
                    # of the memory and time (DCT scaling by 1/2, 1/4 or 1/8).
                    image.draft("RGB", stored_target)
            # The pixels about to be decoded (a JPEG's draft size) at what this format costs per pixel.
            with reserve_decode(round(image.width * image.height * DECODE_BYTES_PER_PIXEL[fmt])):
                image.load()
                if fmt != "JPEG":
                    # After the decode: PNG's getexif may decode the pixels, and a decode error there must not be
                    # taken for a broken EXIF block.
                    orientation = exif_orientation(image)
                small = reduce_to_rgb(image, stored_target_size(stored_w, stored_h, orientation, working))
                image.close()  # the full-size pixels go before the reservation does
            upright = small.transpose(ORIENTATION_TRANSPOSE[orientation]) if orientation != 1 else small
            rgb = np.asarray(upright, dtype=np.uint8)
            # Orientations 5-8 swap the axes: the upright image is stored_h wide.
            upright_w, upright_h = (stored_h, stored_w) if orientation >= 5 else (stored_w, stored_h)
    except PoseError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's guard (over 200M pixels) fires inside Image.open, before our check_shape: our limit in our
        # words, with the image's pixel count that Pillow's message carries.
        found = PILLOW_PIXELS.search(str(exc))
        size = f"image has {found.group(1)} pixels; " if found else "image is over the limit: "
        raise PoseError("image_too_large", f"{size}the limit is {max_pixels} pixels") from exc
    except MemoryError as exc:  # a decoder that could not allocate: the upload's problem, and the process lives
        raise PoseError("image_too_large", f"the {fmt} image needs more memory to decode than allowed") from exc
    except Exception as exc:  # the decode boundary: whatever a decoder raises is a bad image
        # Decoders raise more than OSError/ValueError on hostile files: RuntimeError (AVIF: "Decoding of color
        # planes failed"), struct.error, TypeError, AttributeError, OverflowError. Each is this upload's fault.
        message = public_message(str(exc)) or type(exc).__name__
        raise PoseError("invalid_image", f"the {fmt} image could not be decoded: {message}") from exc
    return DecodedImage(
        rgb=np.ascontiguousarray(rgb),
        format=fmt,
        data=data,
        exif_rotated=orientation != 1,
        original_width=upright_w,
        original_height=upright_h,
    )
