"""Wheels: which two lie on the same (near) side of the car, the tilt of their line, and the ellipse cue."""

from __future__ import annotations

import math

import numpy as np

from .config import PoseConfig
from .geometry import boxes_array
from .types import Detection, Point


def side_on(azimuth: float, cfg: PoseConfig) -> bool:
    """True when the azimuth is far enough from front/back that one side's two wheels are apart in the image."""
    return abs(math.sin(math.radians(azimuth))) >= math.sin(math.radians(cfg.tilt_min_side_deg))


def wheel_pair(
    wheels: list[Detection], car_w: float, car_h: float, azimuth: float | None, cfg: PoseConfig
) -> tuple[int, int] | None:
    """Indices of the two wheels most likely on the same (near) side of the car, or None.

    Never an axle (the left and right wheel of one axle, what a front or back view shows): with an azimuth
    the front/back-on views are excluded and the separation must fit the wheelbase better than the track;
    without one, the car box itself must be side-on (wider than `min_side_car_aspect` times its height).
    """
    if len(wheels) < 2:
        return None
    if azimuth is not None and not side_on(azimuth, cfg):
        return None  # front/back view: the visible wheels are an axle's left and right wheel
    if azimuth is None and car_w < cfg.min_side_car_aspect * car_h:
        return None  # the car box is front/back-on: round-looking, far-apart wheels are still an axle
    order = sorted(range(len(wheels)), key=lambda i: -wheels[i].height * wheels[i].score)[: cfg.max_wheels]
    boxes = boxes_array([wheels[i].box for i in order])
    cx = (boxes[:, 0] + boxes[:, 2]) / 2.0
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    aspect = w / h
    if azimuth is not None:
        s = abs(math.sin(math.radians(azimuth)))
        c = abs(math.cos(math.radians(azimuth)))
        box_w = cfg.car_length_m * s + cfg.car_width_m * c  # car box width in the same units
        expect_same = max(cfg.wheelbase_m * s / box_w, 1e-3)
        expect_axle = max(cfg.track_m * c / box_w, 1e-3)
    best: tuple[float, int, int] | None = None
    for i in range(len(order)):
        for j in range(i + 1, len(order)):
            similar = min(h[i], h[j]) / max(h[i], h[j])
            sep = abs(cx[i] - cx[j]) / car_w
            if sep <= 0.0:
                continue
            fit = 1.0
            if azimuth is not None:
                # Same side when the separation fits wheelbase*|sin| better than track*|cos| (log scale) and
                # not much worse than that: a diagonal pair (rear-left + front-right) is further apart.
                misfit = abs(math.log(sep / expect_same))
                if misfit > abs(math.log(sep / expect_axle)) or misfit > cfg.wheel_separation_tolerance:
                    continue
                fit = math.exp(-misfit)
            elif (
                min(aspect[i], aspect[j]) < cfg.side_wheel_min_aspect
                or sep < cfg.side_wheel_min_separation
                or similar < cfg.wheel_similar_ratio
            ):
                continue
            # Near-side wheels are the big, similar ones; far apart beats two wheels of a cluster.
            merit = fit * similar * (h[i] + h[j]) * min(1.0, sep / cfg.wheel_full_separation)
            if best is None or merit > best[0]:
                best = (merit, order[i], order[j])
    return None if best is None else (best[1], best[2])


def tilt_of(wheels: list[Detection], pair: tuple[int, int] | None) -> tuple[float | None, tuple[Point, Point] | None]:
    """Counter-clockwise angle (degrees, (-90, 90]) of the line through the pair's centres; its end points."""
    if pair is None:
        return None, None
    a, b = wheels[pair[0]].center, wheels[pair[1]].center
    left, right = (a, b) if a[0] <= b[0] else (b, a)
    dx, dy = right[0] - left[0], left[1] - right[1]  # image y grows downward: dy > 0 when right is higher
    if dx == 0.0 and dy == 0.0:
        return None, None
    tilt = math.degrees(math.atan2(dy, dx))
    if tilt <= -90.0:
        tilt = 90.0
    return round(tilt, 2), (left, right)


def fuse_wheels(
    phi_parts: float, kappa: float, wheels: list[Detection], pair: tuple[int, int] | None, cfg: PoseConfig
) -> tuple[float, float]:
    """Blend the wheel-ellipse |sin(phi)| into the part azimuth; returns (azimuth, agreement factor)."""
    chosen = list(pair) if pair is not None else []
    if not chosen and wheels:
        chosen = [max(range(len(wheels)), key=lambda i: wheels[i].height * wheels[i].score)]
    if not chosen:
        return phi_parts, 1.0
    aspects = [wheels[i].width / wheels[i].height for i in chosen]
    score = float(np.mean([wheels[i].score for i in chosen]))
    t = cfg.wheel_tread_ratio
    sin2 = (float(np.median(aspects)) ** 2 - t * t) / (1.0 - t * t)
    s_w = math.sqrt(min(1.0, max(0.0, sin2)))
    c_w = math.sqrt(1.0 - s_w * s_w)
    rad = math.radians(phi_parts)
    cos_sign = 1.0 if math.cos(rad) >= 0.0 else -1.0
    sin_sign = 1.0 if math.sin(rad) >= 0.0 else -1.0
    phi_wheels = math.degrees(math.atan2(sin_sign * s_w, cos_sign * c_w))
    # |sin| is flat near side views: there the wheels say little about the exact angle.
    kappa_w = cfg.wheel_weight * score * max(cfg.wheel_min_weight_factor, c_w)
    x = kappa * math.cos(rad) + kappa_w * math.cos(math.radians(phi_wheels))
    y = kappa * math.sin(rad) + kappa_w * math.sin(math.radians(phi_wheels))
    azimuth = math.degrees(math.atan2(y, x))
    disagreement = abs(s_w - abs(math.sin(rad)))
    agreement = 1.0 - cfg.wheel_disagreement_penalty * min(1.0, disagreement / cfg.wheel_disagreement_scale)
    return azimuth, agreement
