"""Is the whole car in the photo, and is it the only prominent car? Judged from the posed car's parts and mask.

`quality.in_frame` reads the car box's borders, but a close-up of a tail light gets a car box (and mask) of just
that section, well inside the frame. So `whole_car` looks at what a whole car shows: its visible extent (the
car box joined with its parts' boxes) should not fill the frame from border to border, and the parts present
should include the faces and wheels a whole car shows from that side. `other_cars` counts the scene's other
cars whose visible box (outside the main car's) is large beside the main car: a buyer could take them for it.
Pure numpy; the thresholds are `POSE_QUALITY_*` settings (docs/quality.md has the measurement behind them).
"""

from __future__ import annotations

from dataclasses import dataclass

from .postprocess import PoseEstimate
from .postprocess.types import Box, Detection
from .postprocess.vocabulary import PART_SPECS, WHEEL_LABEL

FACES = ("front", "back", "left", "right")
# A side of the extent this close to the border (share of that image side) touches it.
TOUCH_TOLERANCE = 0.02


@dataclass(frozen=True)
class Extent:
    """What of the car the detections show."""

    touches: frozenset[str]  # image borders the car's visible extent reaches (left, right, top, bottom)
    faces: frozenset[str]  # faces with at least one detected part
    parts: int  # distinct non-wheel parts
    wheels: int
    fill: float  # extent area / image area

    @property
    def spans(self) -> bool:
        """Border to border on opposite sides: the car is larger than the frame."""
        return {"left", "right"} <= self.touches or {"top", "bottom"} <= self.touches


def union(boxes: list[Box]) -> Box:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def extent_of(pose: PoseEstimate, image_size: tuple[int, int]) -> Extent | None:
    if pose.car is None:
        return None
    width, height = image_size
    members: list[Detection] = [*pose.parts, *pose.wheels]
    x0, y0, x1, y1 = union([pose.car.box, *(d.box for d in members)])
    tx, ty = TOUCH_TOLERANCE * width, TOUCH_TOLERANCE * height
    near = {"left": x0 <= tx, "right": x1 >= width - tx, "top": y0 <= ty, "bottom": y1 >= height - ty}
    faces = {PART_SPECS[p.label].face for p in pose.parts if p.label in PART_SPECS} & set(FACES)
    return Extent(
        touches=frozenset(side for side, hit in near.items() if hit),
        faces=frozenset(faces),
        parts=len({p.label for p in pose.parts if p.label != WHEEL_LABEL}),
        wheels=len(pose.wheels),
        fill=max(0.0, (x1 - x0) * (y1 - y0)) / float(max(1, width * height)),
    )


def whole_car(extent: Extent | None) -> bool:
    """False for a close-up of a part or a section (see the module doc; measured in docs/quality.md)."""
    if extent is None:
        return True  # no car: quality is null anyway
    if extent.spans:
        return False
    # What a whole car shows: two wheels (a side or a diagonal), or two faces, or most of one face (a front or
    # back view: bumper, glass, lights, hood). A car reaching a border must show more: a half car still has
    # a face and a wheel.
    strong = extent.wheels >= 2 or len(extent.faces) >= 2 or extent.parts >= 4
    if not extent.touches:
        return strong
    return strong and extent.wheels >= 2 and extent.parts >= 3


def visible_area(box: Box, cover: Box) -> float:
    """Area of `box` outside `cover`."""
    ix = max(0.0, min(box[2], cover[2]) - max(box[0], cover[0]))
    iy = max(0.0, min(box[3], cover[3]) - max(box[1], cover[1]))
    return max(0.0, (box[2] - box[0]) * (box[3] - box[1]) - ix * iy)


def prominent_other_cars(pose: PoseEstimate, min_size: float) -> int:
    """Other cars whose box, outside the posed car's box, is at least `min_size` x the posed car's box area."""
    if pose.car is None or min_size <= 0:
        return 0 if pose.car is None else len(pose.other_cars)
    car_area = max(1e-9, pose.car.width * pose.car.height)
    return sum(visible_area(other.box, pose.car.box) >= min_size * car_area for other in pose.other_cars)
