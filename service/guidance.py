"""Guided capture: from one pose answer and a target view -> on target or not, where to walk, what to fix.

Pure and cheap (no model, no HTTP): it reads what the pose answer already holds (`view`, `azimuth_deg`, `car`,
`quality`). POST /pose and each photo of POST /coverage answer it as `guidance`.

Walking convention, stated once here and in docs/api.md: `azimuth_deg` is where the camera stands around the car,
from the front (0) toward the car's LEFT side (90), which seen from above (nose up) is counter-clockwise. A walk
of +d degrees is clockwise seen from above, i.e. `walk_deg = azimuth - target` (wrapped to -180..180]). For a
seller facing the car, clockwise from above is walking to their own left: walk_deg > 0 -> `walk_left`,
walk_deg < 0 -> `walk_right`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from .postprocess.geometry import VIEW_BIN_DEG, signed_delta_deg
from .postprocess.vocabulary import VIEWS

if TYPE_CHECKING:  # schemas imports FIX_CODES from here; at runtime the pose answer is only read
    from .schemas import PoseResponse

# walk_deg is rounded to this many degrees in the sentence (a seller cannot walk 37.2 degrees).
SENTENCE_ROUND_DEG = 5


class FixCode(NamedTuple):
    template: str  # the English sentence; {placeholders} are filled from the photo
    when: str  # what triggers it (documented in docs/api.md and the OpenAPI schema)


# The registry of fix codes, in the order a seller should act on them (the answer lists them in this order):
# nothing else matters without a car; framing first (a cut or tiny car also makes the yaw less sure), then the
# angle, then the light and the shake, which the next shot retakes anyway.
FIX_CODES: dict[str, FixCode] = {
    "no_car": FixCode("No car found: point the camera at the car.", "no car was found in the photo"),
    "step_back": FixCode(
        "Step back: the car is cut off at the {sides} of the picture.",
        "quality.in_frame is false (the car touches the named image borders)",
    ),
    "show_whole_car": FixCode(
        "Step back: only part of the car is in the picture; show the whole car.",
        "quality.whole_car is false (a close-up of a part or a section)",
    ),
    "move_closer": FixCode(
        "Move closer: the car fills too little of the picture.", "quality.large_enough is false (car too small)"
    ),
    "other_car_in_front": FixCode(
        "Another car is in the picture: move so that only this car is seen.",
        "quality.other_cars > 0 (another car large enough to be taken for this one)",
    ),
    "walk_left": FixCode(
        "Walk about {degrees}° to your left around the car, keeping it in view, to see its {target}.",
        "not on target and walk_deg > 0 (clockwise seen from above; the seller's left while facing the car)",
    ),
    "walk_right": FixCode(
        "Walk about {degrees}° to your right around the car, keeping it in view, to see its {target}.",
        "not on target and walk_deg < 0 (counter-clockwise seen from above; the seller's right while facing it)",
    ),
    "unclear_view": FixCode(
        "The side of the car facing you is unclear: show the whole car, from a little further away.",
        "a car but no yaw (azimuth_deg null: too few parts seen or the car too small to pose)",
    ),
    "hold_level": FixCode(
        "Hold the phone level: it is turned about {degrees}° {direction}.",
        "quality.level is false: the camera roll |roll_deg| exceeds POSE_QUALITY_MAX_ROLL_DEG (a measured roll, "
        "not tilt_deg, whose wheel line slopes with perspective)",
    ),
    "too_dark": FixCode(
        "Too dark: find more light or turn toward it.",
        "quality.exposure is too_dark",
    ),
    "too_bright": FixCode(
        "Too bright: avoid direct sun or reflections on the car.",
        "quality.exposure is too_bright",
    ),
    "hold_still": FixCode("Hold the phone still: the photo is blurred.", "quality.sharp is false"),
}

FIX_CODE_NAMES: tuple[str, ...] = tuple(FIX_CODES)


@dataclass(frozen=True)
class Fix:
    code: str
    message: str


@dataclass(frozen=True)
class Guidance:
    target_view: str
    on_target: bool  # the photo shows the target view (its `view` is the target)
    walk_deg: float | None  # signed walk to the target's centre, + = clockwise seen from above; None without a yaw
    fixes: list[Fix]  # ordered as FIX_CODES

    @property
    def ready(self) -> bool:
        """On target and nothing to fix: the shot to keep."""
        return self.on_target and not self.fixes


def wrap_deg(angle: float) -> float:
    """An angle in degrees -> (-180, 180]: a walk of half a turn is +180 (clockwise), where geometry's signed
    delta says -180."""
    wrapped = signed_delta_deg(angle, 0.0)
    return 180.0 if wrapped == -180.0 else wrapped


def view_center(view: str) -> float:
    return VIEWS.index(view) * VIEW_BIN_DEG  # view i is centred on azimuth i * 45


def walk_to(azimuth_deg: float, target_view: str) -> float:
    """The signed walk from a camera at `azimuth_deg` to the centre of `target_view`; + = clockwise from above."""
    return wrap_deg(azimuth_deg - view_center(target_view))


def _fix(code: str, **values: str) -> Fix:
    return Fix(code, FIX_CODES[code].template.format(**values))


def _join(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def guide(pose: PoseResponse, target_view: str) -> Guidance:
    """What the seller should do after this photo to get a usable photo of `target_view`."""
    if target_view not in VIEWS:
        raise ValueError(f"unknown view {target_view}; the views are {', '.join(VIEWS)}")
    if pose.car is None:
        return Guidance(target_view, False, None, [_fix("no_car")])
    found: dict[str, Fix] = {}
    quality = pose.quality
    if quality is not None:
        if not quality.in_frame:
            found["step_back"] = _fix("step_back", sides=_join(quality.cut_sides))
        if not quality.whole_car:
            found["show_whole_car"] = _fix("show_whole_car")
        if not quality.large_enough:
            found["move_closer"] = _fix("move_closer")
        if quality.other_cars:
            found["other_car_in_front"] = _fix("other_car_in_front")
        if quality.level is False and pose.roll_deg is not None:
            # roll_deg > 0: the scene appears turned counter-clockwise because the phone was turned clockwise.
            direction = "clockwise" if pose.roll_deg > 0 else "counter-clockwise"
            found["hold_level"] = _fix("hold_level", degrees=str(round(abs(pose.roll_deg))), direction=direction)
        if quality.exposure != "ok":  # the exposure verdict's direction names the fix
            found[quality.exposure] = _fix(quality.exposure)
        if not quality.sharp:
            found["hold_still"] = _fix("hold_still")
    on_target = pose.view == target_view
    walk = None if pose.azimuth_deg is None else round(walk_to(pose.azimuth_deg, target_view), 1)
    if walk is None:
        found["unclear_view"] = _fix("unclear_view")
    elif not on_target:
        # Off target, the walk is at least the way to the target bin's centre; a walk rounded to 0 would
        # read oddly, so the sentence says at least one step of SENTENCE_ROUND_DEG.
        degrees = max(SENTENCE_ROUND_DEG, SENTENCE_ROUND_DEG * round(abs(walk) / SENTENCE_ROUND_DEG))
        code = "walk_left" if walk >= 0 else "walk_right"
        found[code] = _fix(code, degrees=str(degrees), target=target_view.replace("_", " "))
    fixes = [found[code] for code in FIX_CODES if code in found]
    return Guidance(target_view, on_target, walk, fixes)


def next_view(poses: Sequence[PoseResponse | None], missing: Sequence[str]) -> str | None:
    """The missing view closest to the last posed photo's yaw, so the seller keeps walking one way round.

    A tie (the last photo halfway between two missing views) goes the way the seller was already walking (from
    the photo posed before it), clockwise when unknown. No posed photo: the first missing view."""
    if not missing:
        return None
    yaws = [pose.azimuth_deg for pose in poses if pose is not None and pose.azimuth_deg is not None]
    if not yaws:
        return missing[0]
    last = yaws[-1]
    heading = 1.0 if len(yaws) < 2 or wrap_deg(yaws[-2] - last) >= 0 else -1.0  # sign of walk_deg so far

    def cost(view: str) -> tuple[float, int]:
        walk = walk_to(last, view)
        return (round(abs(walk), 6), 0 if walk * heading >= 0 else 1)

    return min(missing, key=cost)
