"""Raw detections -> clean detections, the main car, and the parts and wheels that belong to it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .config import DEFAULT_CONFIG, PoseConfig
from .geometry import box_areas, boxes_array, inside_fraction, union_box
from .types import Detection
from .vocabulary import CAR_LABEL, KNOWN_LABELS, WHEEL_LABEL


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
        cars = without_hollow_boxes(one_box_per_car(cars, cfg), candidates, cfg)
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


def one_box_per_car(cars: list[Detection], cfg: PoseConfig) -> list[Detection]:
    """One box per car: boxes that show the same car are grouped, and each group keeps its best box.

    Two boxes show the same car when the smaller lies mostly inside the larger and shares its height or its
    width: the detector adds boxes of a car's front or rear half (as tall as the car) and of its body without
    roof and wheels (as wide). A farther car seen within the box is smaller in both. Groups are transitive (the
    two halves join through the whole). The kept box has the largest score x area, as the main-car choice; it takes
    the group's first `view_probs` (with `roll_deg` and `photo_pass`) when it has none, so a backend may attach
    them to either box.
    """
    n = len(cars)
    group = list(range(n))

    def root(i: int) -> int:
        while group[i] != i:
            group[i] = group[group[i]]
            i = group[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            if _same_car(cars[i], cars[j], cfg):
                group[root(i)] = root(j)
    members: dict[int, list[int]] = {}
    for i in range(n):
        members.setdefault(root(i), []).append(i)
    out = []
    for indices in sorted(members.values()):
        best = max(indices, key=lambda i: (cars[i].score * cars[i].width * cars[i].height, cars[i].score))
        car = cars[best]
        if car.view_probs is None:
            read = next((cars[i] for i in indices if cars[i].view_probs is not None), None)
            if read is not None:  # the roll is read from the same crop as the probabilities: they travel together
                car = replace(car, view_probs=read.view_probs, roll_deg=read.roll_deg, photo_pass=read.photo_pass)
        out.append(car)
    return out


def without_hollow_boxes(cars: list[Detection], parts: list[Detection], cfg: PoseConfig) -> list[Detection]:
    """The car boxes less those that only frame another car: a box that holds a smaller car box, where every part
    inside it lies inside such a smaller car too. A car has parts of its own; a box around another car and nothing
    else is background read as a car (a turntable's platform under the car, by a detector trained on tight crops).
    A near car holding a farther one in its box keeps its own parts outside the farther car's box, and a box
    without any part inside it is kept (no evidence either way)."""
    if len(cars) < 2 or not parts:
        return cars
    part_boxes = boxes_array([d.box for d in parts])
    kept = []
    for outer in cars:
        held = [
            c
            for c in cars
            if c is not outer
            and c.width * c.height < outer.width * outer.height
            and _overlap_of_smaller(c, outer) >= cfg.duplicate_car_inside
        ]
        inside = inside_fraction(part_boxes, np.asarray(outer.box, dtype=np.float64)) >= cfg.min_part_inside
        in_held = np.zeros(len(parts), dtype=bool)
        for car in held:
            in_held |= inside_fraction(part_boxes, np.asarray(car.box, dtype=np.float64)) >= cfg.min_part_inside
        if not held or not inside.any() or (inside & ~in_held).any():
            kept.append(outer)
    return kept


def _same_car(a: Detection, b: Detection, cfg: PoseConfig) -> bool:
    if _overlap_of_smaller(a, b) < cfg.duplicate_car_inside:
        return False
    similar_height = min(a.height, b.height) / max(a.height, b.height, 1e-9)
    similar_width = min(a.width, b.width) / max(a.width, b.width, 1e-9)
    return max(similar_height, similar_width) >= cfg.duplicate_car_extent


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
    members = [d for d, k in zip(candidates, keep, strict=True) if k]
    return _one_of_each_part(members, cfg)


def _one_of_each_part(members: list[Detection], cfg: PoseConfig) -> list[Detection]:
    """Drop boxes of a one-per-car label that do not overlap the best box of that label: they show the same
    part of another car (one the detector missed, or whose box the main car's swallowed). Overlapping boxes
    are a double detection of one part and both stay (the cues average them). Wheels may be up to four."""
    best: dict[str, Detection] = {}
    for d in members:
        if d.label != WHEEL_LABEL and (d.label not in best or d.score > best[d.label].score):
            best[d.label] = d
    out = []
    for d in members:
        anchor = best.get(d.label)
        if anchor is not None and d is not anchor and _overlap_of_smaller(d, anchor) < cfg.same_part_overlap:
            continue
        out.append(d)
    return out


def _overlap_of_smaller(a: Detection, b: Detection) -> float:
    """Intersection area over the smaller box's area (1 when one box holds the other)."""
    iw = max(0.0, min(a.box[2], b.box[2]) - max(a.box[0], b.box[0]))
    ih = max(0.0, min(a.box[3], b.box[3]) - max(a.box[1], b.box[1]))
    smaller = min(a.width * a.height, b.width * b.height)
    return iw * ih / smaller if smaller > 0.0 else 0.0


def too_small(car: Detection, image: ImageFrame, cfg: PoseConfig) -> bool:
    if min(car.width, car.height) < cfg.min_car_side_px:
        return True
    if image.width is None or image.height is None:
        return False
    return car.width * car.height < cfg.min_car_area_fraction * image.width * image.height
