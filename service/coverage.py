"""Coverage of a listing's photo set: which required views are shown by a usable photo, which are missing.

A photo covers its view when it has one (the pose gave a `view`: the confidence cleared the request's
`min_confidence`, by default POSE_COVERAGE_MIN_CONFIDENCE) and its `quality.ok` is true: a close-up of a part
(`whole_car: false`) never covers a view. No HTTP here: the route
(`service.api.routers.coverage`) feeds it each photo's answer or error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .postprocess.vocabulary import VIEWS
from .schemas import PoseResponse

# Why a photo does not count, in the order a seller should fix them.
PROBLEMS = (
    "error",
    "no_car",
    "no_view",
    "cut_off",
    "close_up",
    "other_car",
    "too_small",
    "blurred",
    "badly_exposed",
)


def parse_required(text: str | None) -> list[str]:
    """`front,back_left` -> the views, in the vocabulary's order; None, empty or naming no view (`,,`) -> all
    eight (a list that names nothing never means "require nothing"). ValueError if unknown."""
    asked = {item.strip() for item in (text or "").split(",") if item.strip()}
    if not asked:
        return list(VIEWS)
    unknown = sorted(asked - set(VIEWS))
    if unknown:
        raise ValueError(f"unknown view(s) {', '.join(unknown)}; the views are {', '.join(VIEWS)}")
    return [view for view in VIEWS if view in asked]


def problems_of(pose: PoseResponse | None) -> list[str]:
    """What keeps a photo from covering a view (empty: it covers `pose.view`)."""
    if pose is None:
        return ["error"]
    if pose.car is None:
        return ["no_car"]
    found = [] if pose.view is not None else ["no_view"]
    quality = pose.quality
    if quality is None:  # a car without a quality cannot happen today; never count it as usable
        return [*found, "cut_off"]
    checks = (
        (quality.in_frame, "cut_off"),
        (quality.whole_car, "close_up"),
        (quality.other_cars == 0, "other_car"),
        (quality.large_enough, "too_small"),
        (quality.sharp, "blurred"),
        (quality.exposure_ok, "badly_exposed"),
    )
    return found + [problem for ok, problem in checks if not ok]


@dataclass(frozen=True)
class Coverage:
    covered: dict[str, list[int]]  # view -> indices of usable photos that show it (required or not)
    missing: list[str]  # required views without a usable photo
    duplicates: dict[str, list[int]]  # views shown by more than one usable photo
    complete: bool


def summarise(poses: Sequence[PoseResponse | None], required: Sequence[str]) -> Coverage:
    covered: dict[str, list[int]] = {}
    for index, pose in enumerate(poses):
        if pose is not None and pose.view is not None and not problems_of(pose):
            covered.setdefault(pose.view, []).append(index)
    covered = {view: covered[view] for view in VIEWS if view in covered}
    missing = [view for view in required if view not in covered]
    duplicates = {view: indices for view, indices in covered.items() if len(indices) > 1}
    return Coverage(covered=covered, missing=missing, duplicates=duplicates, complete=not missing)
