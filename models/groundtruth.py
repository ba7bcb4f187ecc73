"""Car Parts COCO annotations -> one instance per physical part (pure Python/numpy).

The Car Parts Segmentation dataset stores all wheels of an image as ONE annotation with one polygon per
wheel, and keeps an unused `_background_` category. Training, evaluation and the ground-truth view tests
all need the same per-part instances, so the conversion lives here, beside training; the runtime never reads
annotations.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from service.postprocess.types import Box, Detection
from service.postprocess.vocabulary import CAR_LABEL, WHEEL_LABEL

UNUSED_CATEGORIES = frozenset({"_background_"})
# Labels whose multi-polygon annotations hold several physical objects (one polygon each).
SPLIT_PER_POLYGON = frozenset({WHEEL_LABEL})
MIN_POLYGON_COORDS = 6  # three points


@dataclass(frozen=True)
class GroundTruthInstance:
    label: str
    box: Box
    polygons: tuple[tuple[float, ...], ...]  # flat [x0, y0, x1, y1, ...] polygons in pixels

    def as_detection(self) -> Detection:
        return Detection(label=self.label, box=self.box, score=1.0)


def polygons_box(polygons: Iterable[Sequence[float]]) -> Box:
    xs = [x for poly in polygons for x in poly[0::2]]
    ys = [y for poly in polygons for y in poly[1::2]]
    return (float(min(xs)), float(min(ys)), float(max(xs)), float(max(ys)))


def _valid_polygons(segmentation: Any) -> list[tuple[float, ...]]:
    if not isinstance(segmentation, list):  # RLE (crowd) masks do not occur in this dataset
        return []
    return [tuple(float(v) for v in poly) for poly in segmentation if len(poly) >= MIN_POLYGON_COORDS]


def split_coco_instances(coco: dict[str, Any]) -> dict[int, list[GroundTruthInstance]]:
    """Image id -> instances; wheel annotations split one per polygon, `_background_` dropped."""
    names = {int(c["id"]): str(c["name"]) for c in coco["categories"]}
    by_image: dict[int, list[GroundTruthInstance]] = defaultdict(list)
    for image in coco["images"]:
        by_image[int(image["id"])] = []
    for ann in coco["annotations"]:
        label = names.get(int(ann["category_id"]))
        if label is None or label in UNUSED_CATEGORIES:
            continue
        polygons = _valid_polygons(ann.get("segmentation"))
        if not polygons:
            continue
        groups = [[p] for p in polygons] if label in SPLIT_PER_POLYGON else [polygons]
        for group in groups:
            by_image[int(ann["image_id"])].append(
                GroundTruthInstance(label=label, box=polygons_box(group), polygons=tuple(group))
            )
    return dict(by_image)


def car_instance(parts: Sequence[GroundTruthInstance]) -> GroundTruthInstance | None:
    """The whole car as the union of its annotated parts (box and polygons), or None without parts."""
    polygons = tuple(poly for part in parts if part.label != CAR_LABEL for poly in part.polygons)
    if not polygons:
        return None
    return GroundTruthInstance(label=CAR_LABEL, box=polygons_box(polygons), polygons=polygons)
