"""Typical head-on part sizes relative to the car box height. GENERATED, do not edit by hand.

Regenerate with `python -m models.calibrate --dataset PATH --write` (Car Parts training split,
400 images, 85th percentile per label of width / car_height and
area / car_height**2, left and right twins pooled). Numbers only, no data.
"""

from __future__ import annotations

# Bounding-box width / car box height (used for detections without a mask).
K_WIDTH: dict[str, float] = {
    "back_bumper": 1.0193,
    "back_glass": 0.7051,
    "back_left_door": 0.4743,
    "back_left_light": 0.2701,
    "back_right_door": 0.4743,
    "back_right_light": 0.2701,
    "front_bumper": 0.9839,
    "front_glass": 0.6818,
    "front_left_door": 0.5458,
    "front_left_light": 0.2713,
    "front_right_door": 0.5458,
    "front_right_light": 0.2713,
    "hood": 0.8339,
    "left_mirror": 0.1254,
    "right_mirror": 0.1254,
    "tailgate": 0.8413,
    "trunk": 0.8603,
    "wheel": 0.3163,
}

# Bounding-box area / car box height**2 (for reference and the synthetic test car).
K_BOX: dict[str, float] = {
    "back_bumper": 0.5128,
    "back_glass": 0.1687,
    "back_left_door": 0.3552,
    "back_left_light": 0.0582,
    "back_right_door": 0.3552,
    "back_right_light": 0.0582,
    "front_bumper": 0.5599,
    "front_glass": 0.1876,
    "front_left_door": 0.4207,
    "front_left_light": 0.0506,
    "front_right_door": 0.4207,
    "front_right_light": 0.0506,
    "hood": 0.22,
    "left_mirror": 0.0138,
    "right_mirror": 0.0138,
    "tailgate": 0.4161,
    "trunk": 0.4171,
    "wheel": 0.1398,
}

# Mask (polygon) area / car box height**2 (used when a detection carries a mask).
K_MASK: dict[str, float] = {
    "back_bumper": 0.3303,
    "back_glass": 0.1399,
    "back_left_door": 0.2901,
    "back_left_light": 0.034,
    "back_right_door": 0.2901,
    "back_right_light": 0.034,
    "front_bumper": 0.456,
    "front_glass": 0.1476,
    "front_left_door": 0.3403,
    "front_left_light": 0.0287,
    "front_right_door": 0.3403,
    "front_right_light": 0.0287,
    "hood": 0.1643,
    "left_mirror": 0.0102,
    "right_mirror": 0.0102,
    "tailgate": 0.3411,
    "trunk": 0.3476,
    "wheel": 0.1078,
}
