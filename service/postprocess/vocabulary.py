"""The part vocabulary, stated once: every label with its face, outward normal, pose weight and mirror twin.

Everything else derives from `PARTS`: the label tuples the models are trained on, the pose rule's normals
and weights, the training flip's left/right swap, the Rekognition label check and the API schema's Literals.
"""

from __future__ import annotations

from dataclasses import dataclass

CAR_LABEL = "car"
WHEEL_LABEL = "wheel"


@dataclass(frozen=True)
class PartSpec:
    label: str
    face: str  # front, back, left, right, or "wheel" (a wheel shows on a side, but its normal is the axle's)
    normal_deg: float | None  # outward normal azimuth in the car frame (0 = forward, 90 = car's left); None: no cue
    weight: float  # weight in the pose rule's vector sum (0: not an area cue)
    mirror: str  # the label of the same part on the mirrored car (itself when symmetric)


# Weights: each face sums to ~2 (two doors at 1; bumper + glass + hood; bumper + glass + trunk OR tailgate), so
# faces with more parts do not pull the direction toward themselves. Within the front and back faces the
# vertical bumper counts most: windscreens and the hood lean back, so their image size follows the yaw much
# less (a hood is still wide when seen from 60 degrees). Lights less, mirrors little (small, often missed,
# normal vague). Alphabetical, which is also the class order of the models we train.
PARTS: tuple[PartSpec, ...] = (
    PartSpec("back_bumper", "back", 180.0, 1.0, "back_bumper"),
    PartSpec("back_glass", "back", 180.0, 0.4, "back_glass"),
    PartSpec("back_left_door", "left", 90.0, 1.0, "back_right_door"),
    PartSpec("back_left_light", "back", 145.0, 0.7, "back_right_light"),
    PartSpec("back_right_door", "right", 270.0, 1.0, "back_left_door"),
    PartSpec("back_right_light", "back", 215.0, 0.7, "back_left_light"),
    PartSpec("front_bumper", "front", 0.0, 1.0, "front_bumper"),
    PartSpec("front_glass", "front", 0.0, 0.5, "front_glass"),
    PartSpec("front_left_door", "left", 90.0, 1.0, "front_right_door"),
    PartSpec("front_left_light", "front", 35.0, 0.7, "front_right_light"),
    PartSpec("front_right_door", "right", 270.0, 1.0, "front_left_door"),
    PartSpec("front_right_light", "front", 325.0, 0.7, "front_left_light"),
    PartSpec("hood", "front", 0.0, 0.35, "hood"),
    PartSpec("left_mirror", "left", 60.0, 0.25, "right_mirror"),
    PartSpec("right_mirror", "right", 300.0, 0.25, "left_mirror"),
    PartSpec("tailgate", "back", 180.0, 0.6, "tailgate"),
    PartSpec("trunk", "back", 180.0, 0.6, "trunk"),
    PartSpec(WHEEL_LABEL, "wheel", None, 0.0, WHEEL_LABEL),
)
PART_SPECS: dict[str, PartSpec] = {p.label: p for p in PARTS}

# The Car Parts dataset's 18 parts, and the class order of the models we train: the parts, then the whole car.
PART_LABELS: tuple[str, ...] = tuple(p.label for p in PARTS)
MODEL_CLASSES: tuple[str, ...] = (*PART_LABELS, CAR_LABEL)
KNOWN_LABELS: frozenset[str] = frozenset(MODEL_CLASSES)

# Pose rule: outward normal and weight of every part with an area cue.
PART_NORMAL_DEG: dict[str, float] = {p.label: p.normal_deg for p in PARTS if p.normal_deg is not None}
PART_WEIGHT: dict[str, float] = {p.label: p.weight for p in PARTS if p.normal_deg is not None}

# Training flip: pairs of labels that trade places when an image is mirrored (each pair once, left first).
MIRROR_PAIRS: tuple[tuple[str, str], ...] = tuple(
    (p.label, p.mirror) for p in PARTS if p.mirror != p.label and "left" in p.label
)


def mirror_label(label: str) -> str:
    """The label of the same part on the mirrored car; the car and unknown labels map to themselves."""
    spec = PART_SPECS.get(label)
    return spec.mirror if spec is not None else label


# Eight 45-degree views, counter-clockwise from the front (index * 45 = bin centre azimuth), and coarse views.
VIEWS: tuple[str, ...] = (
    "front",
    "front_left",
    "left",
    "back_left",
    "back",
    "back_right",
    "right",
    "front_right",
)
COARSE_VIEWS: tuple[str, ...] = ("front", "back", "side")

# Why `view` is null (or partial): the API's documented reasons.
REASON_NO_CAR = "no_car"
REASON_CAR_TOO_SMALL = "car_too_small"
REASON_TOO_FEW_PARTS = "too_few_parts"
REASON_VIEW_AMBIGUOUS = "view_ambiguous"
REASON_LOW_CONFIDENCE = "low_confidence"
REASONS: tuple[str, ...] = (
    REASON_NO_CAR,
    REASON_CAR_TOO_SMALL,
    REASON_TOO_FEW_PARTS,
    REASON_VIEW_AMBIGUOUS,
    REASON_LOW_CONFIDENCE,
)
