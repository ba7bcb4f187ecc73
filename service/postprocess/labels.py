"""Label vocabulary shared by every backend: the Car Parts dataset's 18 parts plus the whole car."""

from __future__ import annotations

CAR_LABEL = "car"
WHEEL_LABEL = "wheel"

PART_LABELS: tuple[str, ...] = (
    "back_bumper",
    "back_glass",
    "back_left_door",
    "back_left_light",
    "back_right_door",
    "back_right_light",
    "front_bumper",
    "front_glass",
    "front_left_door",
    "front_left_light",
    "front_right_door",
    "front_right_light",
    "hood",
    "left_mirror",
    "right_mirror",
    "tailgate",
    "trunk",
    WHEEL_LABEL,
)

# Class order of the models we train: the 18 parts, then the whole car.
MODEL_CLASSES: tuple[str, ...] = (*PART_LABELS, CAR_LABEL)

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
