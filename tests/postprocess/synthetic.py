"""A tiny synthetic "car renderer": Detections of a box-shaped car seen from a known azimuth.

The car frame is x forward, y to the car's left, z up (the contract's azimuth: 0 front, 90 left side).
Every part is a flat rectangle with a known centre and outward normal; it is visible when its normal faces
the camera. The camera is orthographic, at `azimuth_deg` around the car and `elevation_deg` above the
horizon; `roll_deg` rotates the whole picture counter-clockwise (the horizon tilts, right side up).
Part sizes are scaled so that each part's head-on box has the calibrated width (K_WIDTH * car height) and
area (K_BOX * car height^2), i.e. the synthetic car is the "typical car" the estimator was calibrated on; what the tests
check is the geometry (vector sum, signs, wheels, tilt), not the calibration.
Wheels are discs with their axis along y: box height = diameter, width = diameter * sqrt(sin^2 + t^2 cos^2)
(t = tyre width / diameter: a wheel seen end-on still shows its tread).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from service.postprocess import Detection
from service.postprocess.part_areas import K_BOX, K_WIDTH

CAR_LENGTH, CAR_WIDTH, CAR_HEIGHT = 4.6, 1.8, 1.45
WHEEL_X, WHEEL_Y, WHEEL_DIAMETER = 1.35, 0.9, 0.66
IMAGE_SIZE = (1024, 768)


@dataclass(frozen=True)
class Part3D:
    label: str
    centre: tuple[float, float, float]
    normal_az: float  # azimuth of the outward normal (degrees, car frame)
    normal_el: float  # how far the normal points up (degrees): 0 vertical face, 90 flat roof-like face
    width: float  # along the horizontal in-plane axis (m)
    height: float  # along the other in-plane axis (m)


PARTS: tuple[Part3D, ...] = (
    Part3D("front_bumper", (2.3, 0.0, 0.45), 0.0, 0.0, 1.7, 0.45),
    Part3D("hood", (1.75, 0.0, 0.9), 0.0, 65.0, 1.5, 1.0),
    Part3D("front_glass", (0.9, 0.0, 1.2), 0.0, 50.0, 1.35, 0.8),
    Part3D("front_left_light", (2.2, 0.65, 0.7), 35.0, 0.0, 0.4, 0.15),
    Part3D("front_right_light", (2.2, -0.65, 0.7), 325.0, 0.0, 0.4, 0.15),
    Part3D("left_mirror", (1.0, 1.0, 1.0), 60.0, 0.0, 0.2, 0.12),
    Part3D("right_mirror", (1.0, -1.0, 1.0), 300.0, 0.0, 0.2, 0.12),
    Part3D("front_left_door", (0.55, 0.9, 0.75), 90.0, 0.0, 1.1, 0.9),
    Part3D("back_left_door", (-0.55, 0.9, 0.75), 90.0, 0.0, 1.0, 0.9),
    Part3D("front_right_door", (0.55, -0.9, 0.75), 270.0, 0.0, 1.1, 0.9),
    Part3D("back_right_door", (-0.55, -0.9, 0.75), 270.0, 0.0, 1.0, 0.9),
    Part3D("back_left_light", (-2.2, 0.65, 0.8), 145.0, 0.0, 0.4, 0.18),
    Part3D("back_right_light", (-2.2, -0.65, 0.8), 215.0, 0.0, 0.4, 0.18),
    Part3D("back_bumper", (-2.3, 0.0, 0.45), 180.0, 0.0, 1.7, 0.4),
    Part3D("back_glass", (-1.3, 0.0, 1.2), 180.0, 50.0, 1.2, 0.6),
    Part3D("trunk", (-2.3, 0.0, 0.8), 180.0, 10.0, 1.4, 0.5),
)
WHEELS: tuple[tuple[float, float], ...] = tuple((x, y) for x in (WHEEL_X, -WHEEL_X) for y in (WHEEL_Y, -WHEEL_Y))
# cos of the angle between normal and view direction below which a part is hidden. 0.2 (78 degrees): in the
# ground truth, hood and windscreen are rarely annotated in pure side views although a little of them shows.
MIN_FACING = 0.2


def _camera(azimuth_deg: float, elevation_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(towards camera, image right, image up) unit vectors in the car frame."""
    a, e = math.radians(azimuth_deg), math.radians(elevation_deg)
    d = np.array([math.cos(a) * math.cos(e), math.sin(a) * math.cos(e), math.sin(e)])
    r = np.array([-math.sin(a), math.cos(a), 0.0])
    u = np.array([-math.cos(a) * math.sin(e), -math.sin(a) * math.sin(e), math.cos(e)])
    return d, r, u


def _part_frame(part: Part3D, scale: tuple[float, float] = (1.0, 1.0)) -> tuple[np.ndarray, np.ndarray]:
    """(normal, 4x3 corners) of a part, its width and height multiplied by `scale`."""
    t, e = math.radians(part.normal_az), math.radians(part.normal_el)
    n = np.array([math.cos(e) * math.cos(t), math.cos(e) * math.sin(t), math.sin(e)])
    a = np.array([-math.sin(t), math.cos(t), 0.0])  # horizontal, in the face
    b = np.array([-math.sin(e) * math.cos(t), -math.sin(e) * math.sin(t), math.cos(e)])  # up along the face
    c = np.asarray(part.centre)
    hw, hh = part.width * scale[0] / 2.0, part.height * scale[1] / 2.0
    corners = np.stack([c + sa * hw * a + sb * hh * b for sa in (-1, 1) for sb in (-1, 1)])
    return n, corners


def _car_corners() -> np.ndarray:
    return np.array(
        [
            (x, y, z)
            for x in (-CAR_LENGTH / 2, CAR_LENGTH / 2)
            for y in (-CAR_WIDTH / 2, CAR_WIDTH / 2)
            for z in (0, CAR_HEIGHT)
        ]
    )


@lru_cache(maxsize=32)
def _size_factors(elevation_deg: float) -> dict[str, tuple[float, float]]:
    """Per part: (width, height) scales so that its head-on box is K_WIDTH * H wide and K_BOX * H^2 large."""
    factors = {}
    for part in PARTS:
        _, r, u = _camera(part.normal_az, elevation_deg)
        car_h = float(np.ptp(_car_corners() @ u))
        _, corners = _part_frame(part)
        width, height = float(np.ptp(corners @ r)), float(np.ptp(corners @ u))
        target_w = K_WIDTH[part.label] * car_h
        target_h = K_BOX[part.label] * car_h**2 / target_w
        factors[part.label] = (target_w / width, target_h / height)
    return factors


def render(
    azimuth_deg: float,
    *,
    elevation_deg: float = 10.0,
    roll_deg: float = 0.0,
    scale: float = 150.0,
    centre: tuple[float, float] = (IMAGE_SIZE[0] / 2.0, IMAGE_SIZE[1] / 2.0),
    score: float = 0.9,
    with_car: bool = True,
    with_parts: bool = True,
    with_wheels: bool = True,
    tread: float = 0.3,
) -> list[Detection]:
    """Detections (car, visible parts, visible wheels) of the synthetic car at `azimuth_deg`."""
    d, r, u = _camera(azimuth_deg, elevation_deg)
    roll = math.radians(roll_deg)
    cos_r, sin_r = math.cos(roll), math.sin(roll)

    def to_image(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Orthographic projection, then a counter-clockwise roll (image y grows downward).
        px, py = points @ r, points @ u  # py: up
        x = px * cos_r - py * sin_r
        y = px * sin_r + py * cos_r
        return centre[0] + scale * x, centre[1] - scale * y

    def box_of(points: np.ndarray) -> tuple[float, float, float, float]:
        xs, ys = to_image(points)
        return (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))

    out: list[Detection] = []
    if with_car:
        out.append(Detection("car", box_of(_car_corners()), score))
    if with_parts:
        factors = _size_factors(elevation_deg)
        for part in PARTS:
            n, corners = _part_frame(part, factors[part.label])
            if float(n @ d) > MIN_FACING:
                out.append(Detection(part.label, box_of(corners), score))
    if with_wheels:
        a = math.radians(azimuth_deg)
        sin_a, cos_a = math.sin(a), math.cos(a)
        for wx, wy in WHEELS:
            # Near-side wheels in side-ish views; the near axle's wheels in front/back-ish views.
            if math.copysign(1.0, wy) * sin_a > 0.2 or math.copysign(1.0, wx) * cos_a > 0.7:
                cx, cy = to_image(np.array([[wx, wy, WHEEL_DIAMETER / 2.0]]))
                half_w = scale * WHEEL_DIAMETER / 2.0 * math.sqrt(sin_a**2 + tread**2 * cos_a**2)
                half_h = scale * WHEEL_DIAMETER / 2.0
                # Bounding box of the rolled ellipse.
                bw = math.sqrt((half_w * cos_r) ** 2 + (half_h * sin_r) ** 2)
                bh = math.sqrt((half_w * sin_r) ** 2 + (half_h * cos_r) ** 2)
                out.append(Detection("wheel", (cx[0] - bw, cy[0] - bh, cx[0] + bw, cy[0] + bh), score))
    return out
