"""Raw detections -> clean detections, the main car, and the parts and wheels that belong to it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .config import DEFAULT_CONFIG, PoseConfig
from .geometry import box_areas, boxes_array, inside_fraction, union_box
from .types import Detection
from .vocabulary import CAR_LABEL, KNOWN_LABELS


@dataclass(frozen=True)
class ImageFrame:
    width: float | None  # None when the given size is unusable: no clipping, no area fraction
    height: float | None


def image_frame(image_size: tuple[int, int]) -> ImageFrame:
    try:
        width, height = (float(v) for v in image_size)
    except (TypeError, ValueError):
        return ImageFrame(None, None)
    if not (math.isfinite(width) and math.isfinite(height) and width > 0 and height > 0):
        return ImageFrame(None, None)
    return ImageFrame(width, height)


def clean(detections: Sequence[Detection], image: ImageFrame, cfg: PoseConfig) -> list[Detection]:
    """Known labels above threshold with finite, ordered, image-clipped, non-empty boxes."""
    out: list[Detection] = []
    for det in detections if detections is not None else ():
        try:
            label = det.label
            score = float(det.score)
            x0, y0, x1, y1 = (float(v) for v in det.box)
        except (AttributeError, TypeError, ValueError):
            continue
        if not isinstance(label, str) or label not in KNOWN_LABELS:
            continue  # unknown labels are ignored, never an error
        if not math.isfinite(score) or score < cfg.score_threshold:
            continue
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
            continue
        x0, x1 = min(x0, x1), max(x0, x1)  # inverted boxes: a backend's coordinate slip, not garbage
        y0, y1 = min(y0, y1), max(y0, y1)
        if image.width is not None and image.height is not None:
            x0, x1 = min(max(x0, 0.0), image.width), min(max(x1, 0.0), image.width)
            y0, y1 = min(max(y0, 0.0), image.height), min(max(y1, 0.0), image.height)
        if x1 - x0 <= 0.0 or y1 - y0 <= 0.0:
            continue
        box = (x0, y0, x1, y1)
        if box == det.box and score <= 1.0 and label == det.label:
            out.append(det)
        else:
            out.append(replace(det, box=box, score=min(score, 1.0)))
    return out


@dataclass(frozen=True)
class Scene:
    """The clean detections split into the main car, the other cars and everything else."""

    car: Detection | None  # None: no car and no parts
    other_cars: list[Detection]
    cars_detected: int
    candidates: list[Detection]  # parts and wheels, not yet assigned to a car


def scene_of(detections: Sequence[Detection], image: ImageFrame, cfg: PoseConfig) -> Scene:
    cleaned = clean(detections, image, cfg)
    cars = [d for d in cleaned if d.label == CAR_LABEL]
    candidates = [d for d in cleaned if d.label != CAR_LABEL]
    if cars:
        car, other_cars = _main_car(cars, image, cfg)
        return Scene(car, other_cars, len(cars), candidates)
    if candidates:
        # Parts-only models (e.g. Custom Labels): the car is the union of the parts.
        box = union_box(boxes_array([d.box for d in candidates]))
        return Scene(Detection(CAR_LABEL, box, max(d.score for d in candidates)), [], 1, candidates)
    return Scene(None, [], 0, [])


def select_main_car(
    detections: Sequence[Detection], image_size: tuple[int, int], config: PoseConfig | None = None
) -> Detection | None:
    """The car `estimate_pose` would pose (same cleaning and choice); None without one. Never raises.

    A backend with a view classifier uses this to pick the crop to classify. A parts-only result gives the
    union of the parts, as in `estimate_pose`.
    """
    try:
        return scene_of(detections, image_frame(image_size), config or DEFAULT_CONFIG).car
    except Exception:  # model output must never turn into an error here either
        return None


def _main_car(cars: list[Detection], image: ImageFrame, cfg: PoseConfig) -> tuple[Detection, list[Detection]]:
    """The car with the largest score x area x centrality; the others."""
    boxes = boxes_array([c.box for c in cars])
    scores = np.array([c.score for c in cars])
    merit = scores * box_areas(boxes)
    if image.width is not None and image.height is not None:
        cx = (boxes[:, 0] + boxes[:, 2]) / 2.0 - image.width / 2.0
        cy = (boxes[:, 1] + boxes[:, 3]) / 2.0 - image.height / 2.0
        off_centre = np.hypot(cx, cy) / (0.5 * math.hypot(image.width, image.height))
        # 1 at the centre, 0.5 in a corner (default weight): centrality breaks near-ties, a much bigger car wins.
        merit = merit * (1.0 - cfg.centrality_weight * np.clip(off_centre, 0.0, 1.0))
    best = int(np.argmax(merit))
    return cars[best], [c for i, c in enumerate(cars) if i != best]


def assign_parts(
    candidates: list[Detection], car: Detection, others: list[Detection], cfg: PoseConfig
) -> list[Detection]:
    """Parts mostly inside the main car box, unless clearly more inside another car's box."""
    if not candidates:
        return []
    boxes = boxes_array([d.box for d in candidates])
    inside = inside_fraction(boxes, np.asarray(car.box, dtype=np.float64))
    keep = inside >= cfg.min_part_inside
    for other in others:
        keep &= inside_fraction(boxes, np.asarray(other.box, dtype=np.float64)) <= inside + cfg.other_car_margin
    return [d for d, k in zip(candidates, keep, strict=True) if k]


def too_small(car: Detection, image: ImageFrame, cfg: PoseConfig) -> bool:
    if min(car.width, car.height) < cfg.min_car_side_px:
        return True
    if image.width is None or image.height is None:
        return False
    return car.width * car.height < cfg.min_car_area_fraction * image.width * image.height
