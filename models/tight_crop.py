"""A web photo's framing at training time: the training photo cropped close around its car.

Marketplace and web photos are often cropped to the car, while the Car Parts photos show road around it. On a tight
photo the detector sees the car's ends against the image border and misses or mislabels the parts there, and the
part rule's yaw drifts (issue 19; docs/views.md). `TightCarCrop` crops a share of the training photos to their car
box, each side moved out by a random share of the box's size (negative: into the car, cutting it), so the detector
learns parts that run into the border. Polygons are clipped to the crop here (Sutherland-Hodgman against the
rectangle) rather than by fvcore's `CropTransform`, which needs shapely for that.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from detectron2.data import transforms as T


def clip_polygon(points: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """The part of polygon `points` (N x 2, x y) inside the rectangle; fewer than 3 points when nothing is inside."""
    edges = (
        (lambda p: p[0] >= x0, lambda a, b: _at_x(a, b, x0)),
        (lambda p: p[0] <= x1, lambda a, b: _at_x(a, b, x1)),
        (lambda p: p[1] >= y0, lambda a, b: _at_y(a, b, y0)),
        (lambda p: p[1] <= y1, lambda a, b: _at_y(a, b, y1)),
    )
    current = [np.asarray(p, dtype=np.float64) for p in np.asarray(points, dtype=np.float64).reshape(-1, 2)]
    for inside, cross in edges:
        kept: list[np.ndarray] = []
        for index, point in enumerate(current):
            previous = current[index - 1]
            if inside(point):
                if not inside(previous):
                    kept.append(cross(previous, point))
                kept.append(point)
            elif inside(previous):
                kept.append(cross(previous, point))
        current = kept
        if not current:
            break
    return np.array(current, dtype=np.float64).reshape(-1, 2)


def _at_x(a: np.ndarray, b: np.ndarray, x: float) -> np.ndarray:
    t = (x - a[0]) / (b[0] - a[0])
    return np.array([x, a[1] + t * (b[1] - a[1])])


def _at_y(a: np.ndarray, b: np.ndarray, y: float) -> np.ndarray:
    t = (y - a[1]) / (b[1] - a[1])
    return np.array([a[0] + t * (b[0] - a[0]), y])


class CarCropTransform(T.CropTransform):
    """fvcore's crop, with polygons clipped to the crop without shapely (pieces wholly outside dropped)."""

    def apply_polygons(self, polygons: list) -> list:
        clipped = (clip_polygon(p, self.x0, self.y0, self.x0 + self.w, self.y0 + self.h) for p in polygons)
        return [self.apply_coords(p) for p in clipped if len(p) >= 3]

    def keeps(self, polygons: Sequence[Sequence[float]]) -> bool:
        """Whether any of an annotation's polygons (flat x y lists, the photo's pixels) reaches into the crop."""
        return any(
            len(clip_polygon(np.asarray(p).reshape(-1, 2), self.x0, self.y0, self.x0 + self.w, self.y0 + self.h)) >= 3
            for p in polygons
        )


class TightCarCrop(T.Augmentation):
    """With probability `prob`, crop to the car box (`boxes`, XYXY; the largest) with each side moved out by a
    uniform random share of the box's width (height) in [low, high]: a photo framed tight to its car."""

    def __init__(self, prob: float, low: float, high: float) -> None:
        super().__init__()
        self.prob, self.low, self.high = prob, low, high

    def get_transform(self, image: np.ndarray, boxes: Any) -> T.Transform:
        height, width = image.shape[:2]
        if boxes is None or len(boxes) == 0 or self._rand_range() >= self.prob:
            return T.NoOpTransform()
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        x0, y0, x1, y1 = (float(v) for v in boxes[int(np.argmax(areas))])
        shares = np.random.uniform(self.low, self.high, size=4)
        left = int(np.clip(round(x0 - shares[0] * (x1 - x0)), 0, width - 1))
        top = int(np.clip(round(y0 - shares[1] * (y1 - y0)), 0, height - 1))
        right = int(np.clip(round(x1 + shares[2] * (x1 - x0)), left + 1, width))
        bottom = int(np.clip(round(y1 + shares[3] * (y1 - y0)), top + 1, height))
        if right - left < 32 or bottom - top < 32:  # a sliver teaches nothing
            return T.NoOpTransform()
        return CarCropTransform(left, top, right - left, bottom - top, width, height)
