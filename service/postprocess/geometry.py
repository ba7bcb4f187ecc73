"""Small box and angle helpers for the pose postprocessing (numpy only, no detector or image library)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from .types import Box
from .vocabulary import VIEWS

VIEW_BIN_DEG = 360.0 / len(VIEWS)

Angle = TypeVar("Angle", float, np.ndarray)


def wrap_deg(angle: float) -> float:
    """Angle in degrees mapped to [0, 360)."""
    wrapped = math.fmod(angle, 360.0)
    if wrapped < 0.0:
        wrapped += 360.0
    return 0.0 if wrapped >= 360.0 else wrapped  # fmod of -1e-17 + 360 rounds to 360.0


def signed_delta_deg(a: Angle, b: Angle | float) -> Angle:
    """a - b wrapped to [-180, 180): the signed turn from b to a, elementwise on arrays. Angles exactly opposite give
    -180 (callers that want +180 there map it themselves: service.guidance's walk)."""
    return (a - b + 180.0) % 360.0 - 180.0


def angle_diff_deg(a: float, b: float) -> float:
    """Smallest absolute difference between two angles in degrees, in [0, 180]."""
    d = abs(wrap_deg(a) - wrap_deg(b))
    return min(d, 360.0 - d)


def view_of(azimuth_deg: float) -> str:
    """The 45-degree view bin centred on 0, 45, ..., 315 that holds the azimuth."""
    index = int((wrap_deg(azimuth_deg) + VIEW_BIN_DEG / 2.0) // VIEW_BIN_DEG) % len(VIEWS)
    return VIEWS[index]


def coarse_view_of(azimuth_deg: float) -> str:
    """front for [315, 45), back for [135, 225), side otherwise."""
    a = wrap_deg(azimuth_deg)
    if a >= 315.0 or a < 45.0:
        return "front"
    if 135.0 <= a < 225.0:
        return "back"
    return "side"


def boxes_array(boxes: Sequence[Box]) -> np.ndarray:
    """(N, 4) float array of (x0, y0, x1, y1) boxes; (0, 4) when empty."""
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def box_areas(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0.0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0.0, None)


def inside_fraction(boxes: np.ndarray, container: np.ndarray) -> np.ndarray:
    """For each box, the fraction of its area that lies inside `container` (0 for empty boxes)."""
    ix = np.clip(np.minimum(boxes[:, 2], container[2]) - np.maximum(boxes[:, 0], container[0]), 0.0, None)
    iy = np.clip(np.minimum(boxes[:, 3], container[3]) - np.maximum(boxes[:, 1], container[1]), 0.0, None)
    areas = box_areas(boxes)
    out = np.zeros(len(boxes))
    np.divide(ix * iy, areas, out=out, where=areas > 0.0)
    return out


def union_box(boxes: np.ndarray) -> Box:
    return (
        float(boxes[:, 0].min()),
        float(boxes[:, 1].min()),
        float(boxes[:, 2].max()),
        float(boxes[:, 3].max()),
    )
