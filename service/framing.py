"""Is the whole car in the photo, and is it the only prominent car? Judged from the posed car's parts and mask.

`quality.in_frame` reads the car box's borders, but a close-up of a tail light gets a car box (and mask) of just
that section, well inside the frame. So `whole_car` counts what a whole car shows: distinct parts (a front or
back view shows bumper, glass, lights, hood or trunk; a side or diagonal doors, lights and wheels), more of them
for each image border the car's visible extent (car mask, parts' boxes) reaches; and it reads the car box's shape
against the view: a car seen from its side is more than twice as long as it is tall, so a side view in a box
barely wider than tall is a section of the car (and a box that wide is a whole one). `other_cars` counts the
scene's other cars whose visible box (outside the main car's) is large beside the main car: a buyer could take
them for it.
Pure numpy. The whole-car numbers are constants below (measured in docs/quality.md); the other-car size is
POSE_QUALITY_OTHER_CAR_MIN_SIZE.
"""

from __future__ import annotations

from dataclasses import dataclass

from .postprocess import PoseEstimate
from .postprocess.types import Box, Detection
from .postprocess.vocabulary import WHEEL_LABEL
from .quality import cut_sides

# A side of the extent this close to the border (share of that image side) touches it; the car box counts
# only with mask pixels in that strip (as quality.in_frame: a padded detector box is not a touching car).
TOUCH_TOLERANCE = 0.01
# Distinct parts (wheels count half, two at most) a whole car shows; one more per image border its visible
# extent reaches (a section of a car reaches the borders; a tightly framed whole car still shows many parts).
MIN_EVIDENCE = 4.0
PER_TOUCHED_SIDE = 1.0
# The car box's width / height by the side the view shows. Narrower than any whole car from that side: a section
# (the model's boxes of the 91 whole test cars in frame are at least 0.83 front/back, 2.38 side, 1.07 diagonal;
# a real car's side is 2.3-3.3 times as long as it is tall). As wide as only a whole car is from a side or a
# diagonal: evidence of one (a whole front is no wider than a bumper close-up, so no bonus there). Chosen on the
# test photos' crops (docs/quality.md).
NARROWER_THAN_A_WHOLE_CAR = {"front_back": 0.8, "side": 1.7, "diagonal": 0.9}
AS_WIDE_AS_A_WHOLE_CAR = {"side": 2.2, "diagonal": 2.1}
SECTION_SHAPE_PENALTY = 2.0
WHOLE_SHAPE_BONUS = 1.0


@dataclass(frozen=True)
class Extent:
    """What of the car the detections show."""

    touches: frozenset[str]  # image borders the car's visible extent reaches (left, right, top, bottom)
    parts: int  # distinct non-wheel parts
    wheels: int
    aspect: float = 0.0  # the car box's width / height
    facing: str | None = None  # the side the view shows: front_back, side or diagonal; None without a view


def facing_of(view: str | None) -> str | None:
    if view is None:
        return None
    if view in ("front", "back"):
        return "front_back"
    return "side" if view in ("left", "right") else "diagonal"


def union(boxes: list[Box]) -> Box:
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def extent_of(pose: PoseEstimate, image_size: tuple[int, int]) -> Extent | None:
    if pose.car is None:
        return None
    width, height = image_size
    members: list[Detection] = [*pose.parts, *pose.wheels]
    tx, ty = TOUCH_TOLERANCE * width, TOUCH_TOLERANCE * height
    near = dict.fromkeys(cut_sides(pose.car.box, pose.car.mask, image_size, TOUCH_TOLERANCE), True)
    if members:
        px0, py0, px1, py1 = union([d.box for d in members])
        for side, hit in (
            ("left", px0 <= tx),
            ("right", px1 >= width - tx),
            ("top", py0 <= ty),
            ("bottom", py1 >= height - ty),
        ):
            near[side] = near.get(side, False) or hit
    return Extent(
        touches=frozenset(side for side, hit in near.items() if hit),
        parts=len({p.label for p in pose.parts if p.label != WHEEL_LABEL}),
        wheels=len(pose.wheels),
        aspect=pose.car.width / max(pose.car.height, 1e-9),
        facing=facing_of(pose.view),
    )


def whole_car(extent: Extent | None) -> bool:
    """False for a close-up of a part or a section (see the module doc; measured in docs/quality.md)."""
    if extent is None:
        return True  # no car: quality is null anyway
    # What a whole car shows: most of a face (a front or back view: bumper, glass, two lights, hood or trunk)
    # or parts of two faces with wheels. A close-up of a light and a bumper shows two or three parts; half a car
    # three or four; every whole car of the test photos at least four (docs/quality.md).
    evidence = extent.parts + 0.5 * min(extent.wheels, 2)
    if extent.facing is not None:
        if extent.aspect < NARROWER_THAN_A_WHOLE_CAR[extent.facing]:
            evidence -= SECTION_SHAPE_PENALTY
        elif extent.aspect >= AS_WIDE_AS_A_WHOLE_CAR.get(extent.facing, float("inf")):
            evidence += WHOLE_SHAPE_BONUS
    return evidence >= MIN_EVIDENCE + PER_TOUCHED_SIDE * len(extent.touches)


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
