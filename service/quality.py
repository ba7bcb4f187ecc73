"""Is the photo usable? Framing, size, sharpness and exposure of the main car, measured on the working-size pixels.

Pure numpy, a few milliseconds per photo: the measures read the decoded (working-size) RGB image and the main
car's box and mask, which are in the same pixels. The defaults of the thresholds were chosen on the Car Parts
photos against blurred, darkened, overexposed, cropped and shrunk copies of them (`python -m benchmarks.quality`;
the figures are in docs/quality.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .postprocess import Detection
from .settings import Settings

# Sharpness is measured with the car's long side at most this many pixels (integer block averaging), so one
# photo measures the same whether it was uploaded at 12 MP or 0.5 MP; smaller cars are measured as they are.
SHARPNESS_SCALE = 256
# Luminance at or beyond these (0-255) counts as clipped: no detail is left in those pixels.
CLIP_LOW, CLIP_HIGH = 3, 252
# ITU-R BT.601 luma weights.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class QualityThresholds:
    """The verdicts' thresholds: the POSE_QUALITY_* settings (their defaults and meaning are stated there)."""

    edge_tolerance: float  # a box edge this close to the border (share of that side) is a cut
    min_car_fraction: float  # car box area / image area
    min_sharpness: float  # variance of the Laplacian on the car region at SHARPNESS_SCALE
    min_brightness: float  # mean luminance of the car region, 0-1
    max_brightness: float
    max_clipped_fraction: float  # share of the car's pixels that are black or white
    other_car_min_size: float = 0.3  # another car's box outside the posed car's / the posed car's box area
    max_roll_deg: float = 8.0  # most |camera roll| of a level photo

    @classmethod
    def from_settings(cls, settings: Settings) -> QualityThresholds:
        return cls(
            edge_tolerance=settings.quality_edge_tolerance,
            min_car_fraction=settings.quality_min_car_fraction,
            min_sharpness=settings.quality_min_sharpness,
            min_brightness=settings.quality_min_brightness,
            max_brightness=settings.quality_max_brightness,
            max_clipped_fraction=settings.quality_max_clipped_fraction,
            other_car_min_size=settings.quality_other_car_min_size,
            max_roll_deg=settings.quality_max_roll_deg,
        )

    @classmethod
    def defaults(cls) -> QualityThresholds:
        return cls.from_settings(Settings.model_construct())  # the fields' defaults, no environment read


@dataclass(frozen=True)
class Quality:
    in_frame: bool
    cut_sides: list[str]  # of left, right, top, bottom
    car_fraction: float
    large_enough: bool
    sharpness: float
    sharp: bool
    brightness: float
    clipped_fraction: float
    exposure_ok: bool
    exposure: str = "ok"  # ok, too_dark or too_bright
    whole_car: bool = True  # service.framing: false for a close-up of a part or a section of the car
    other_cars: int = 0  # other cars prominent enough to be taken for the posed one (service.framing)
    # |camera roll| within the threshold; None without a roll measure. Not part of `ok`: a rolled photo still shows
    # the whole car sharp and lit (a listing can straighten it); guidance asks for a level shot (`hold_level`).
    level: bool | None = None

    @property
    def ok(self) -> bool:
        return (
            self.in_frame
            and self.large_enough
            and self.sharp
            and self.exposure_ok
            and self.whole_car
            and self.other_cars == 0
        )


def luminance(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 -> HxW float32 luminance, 0-255."""
    return rgb.astype(np.float32) @ LUMA


def cut_sides(
    box: tuple[float, float, float, float], mask: np.ndarray | None, size: tuple[int, int], tol: float
) -> list[str]:
    """Sides where the car touches the image border: its box edge within `tol` of the border and, when a mask is
    known, mask pixels in that border strip (a box padded to the border by the detector is not a cut car)."""
    width, height = size
    tx, ty = max(1, round(tol * width)), max(1, round(tol * height))
    x0, y0, x1, y1 = box
    near = {"left": x0 <= tx, "right": x1 >= width - tx, "top": y0 <= ty, "bottom": y1 >= height - ty}
    if mask is not None and mask.shape == (height, width):
        strips = {
            "left": mask[:, :tx],
            "right": mask[:, width - tx :],
            "top": mask[:ty, :],
            "bottom": mask[height - ty :, :],
        }
        near = {side: hit and bool(strips[side].any()) for side, hit in near.items()}
    return [side for side in ("left", "right", "top", "bottom") if near[side]]


def block_mean(gray: np.ndarray, factor: int) -> np.ndarray:
    """Average factor x factor blocks (the image's edge remainder is dropped)."""
    if factor <= 1:
        return gray
    h, w = (gray.shape[0] // factor) * factor, (gray.shape[1] // factor) * factor
    return gray[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def laplacian_variance(gray: np.ndarray, region: np.ndarray | None = None) -> float:
    """Variance of the 3x3 Laplacian (4-neighbour) over the interior pixels, within `region` when given."""
    if gray.shape[0] < 3 or gray.shape[1] < 3:
        return 0.0
    lap = gray[:-2, 1:-1] + gray[2:, 1:-1] + gray[1:-1, :-2] + gray[1:-1, 2:] - 4.0 * gray[1:-1, 1:-1]
    if region is not None:
        inner = region[1:-1, 1:-1]
        if inner.sum() >= 16:  # too few mask pixels to say anything: use the whole crop
            lap = lap[inner]
    return float(lap.var())


def sharpness(gray: np.ndarray, region: np.ndarray | None) -> float:
    """Laplacian variance of the car crop, block-averaged to at most SHARPNESS_SCALE on its long side."""
    factor = max(1, max(gray.shape) // SHARPNESS_SCALE)
    small = block_mean(gray, factor)
    small_region = None
    if region is not None:
        small_region = block_mean(region.astype(np.float32), factor) >= 0.5
    return laplacian_variance(small, small_region)


def assess(rgb: np.ndarray, car: Detection | None, thresholds: QualityThresholds) -> Quality | None:
    """The quality of the photo of `car` (None without a car: there is nothing to measure)."""
    if car is None:
        return None
    height, width = rgb.shape[:2]
    x0, y0, x1, y1 = car.box
    mask = car.mask if car.mask is not None and car.mask.shape == (height, width) else None
    sides = cut_sides(car.box, mask, (width, height), thresholds.edge_tolerance)
    car_fraction = max(0.0, (x1 - x0) * (y1 - y0)) / float(width * height)

    cx0, cy0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
    cx1, cy1 = min(width, int(np.ceil(x1))), min(height, int(np.ceil(y1)))
    if cx1 - cx0 < 3 or cy1 - cy0 < 3:
        gray, region = np.zeros((3, 3), np.float32), None
    else:
        gray = luminance(rgb[cy0:cy1, cx0:cx1])
        region = None if mask is None else mask[cy0:cy1, cx0:cx1]
        if region is not None and region.sum() < 16:
            region = None
    pixels = gray[region] if region is not None else gray.ravel()
    brightness = float(pixels.mean()) / 255.0
    dark = float(np.count_nonzero(pixels <= CLIP_LOW)) / max(1, pixels.size)
    bright = float(np.count_nonzero(pixels >= CLIP_HIGH)) / max(1, pixels.size)
    clipped = dark + bright
    sharp_value = sharpness(gray, region)
    exposure = exposure_of(brightness, dark, bright, thresholds)
    return Quality(
        in_frame=not sides,
        cut_sides=sides,
        car_fraction=car_fraction,
        large_enough=car_fraction >= thresholds.min_car_fraction,
        sharpness=sharp_value,
        sharp=sharp_value >= thresholds.min_sharpness,
        brightness=brightness,
        clipped_fraction=clipped,
        exposure_ok=exposure == "ok",
        exposure=exposure,
        level=None if car.roll_deg is None else abs(car.roll_deg) <= thresholds.max_roll_deg,
    )


def exposure_of(brightness: float, dark: float, bright: float, thresholds: QualityThresholds) -> str:
    """ok, too_dark or too_bright: the brightness bounds first; past the clipped share, the larger clipped end
    (black or white pixels) names the direction."""
    if brightness < thresholds.min_brightness:
        return "too_dark"
    if brightness > thresholds.max_brightness:
        return "too_bright"
    if dark + bright > thresholds.max_clipped_fraction:
        return "too_dark" if dark > bright else "too_bright"
    return "ok"
