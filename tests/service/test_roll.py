"""Camera roll (`roll_deg`) and the `hold_level` fix through the embedded default model, on a real photo and copies
of it rolled by known angles (the way `models/roll_eval.py` measures it; figures in docs/quality.md).

Real Detectron2 inference, the view classifier's crop and trunk and the shipped roll head (skips without the model
or the Car Parts photos).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.roll_training import rolled_photo
from models.view_training import load_rgb
from service.response import to_response, with_guidance
from service.runtime import Runtime
from service.schemas import PoseResponse
from service.settings import Settings

PHOTO = "car10.jpg"  # a test photo (nothing trained on it), a back_left view
ROLL_DEG = 15.0  # beyond the default POSE_QUALITY_MAX_ROLL_DEG, well inside the head's trained range
# From the measurement on rolled copies of the 100 test photos (docs/quality.md, "Camera roll"): 90 % of the readings
# are within TOLERANCE_DEG of the applied roll.
TOLERANCE_DEG = 8.0


@pytest.fixture(scope="module")
def runtime(default_backend: object) -> Runtime:
    return Runtime.from_settings(default_backend, Settings(device="cpu"))  # type: ignore[arg-type]


def answer(runtime: Runtime, rgb: np.ndarray) -> PoseResponse:
    result = runtime.predict(rgb)
    response = to_response(result.pose, result.image, runtime.backend, {}, None, result.quality)
    return with_guidance(response, "back_left")


@pytest.fixture(scope="module")
def level_and_rolled(runtime: Runtime, car_parts_dir: Path) -> dict[float, PoseResponse]:
    rgb = load_rgb(car_parts_dir / "testset" / "JPEGImages" / PHOTO)
    frame = np.array([[0.0, 0.0], [rgb.shape[1], rgb.shape[0]]])
    photos = {
        0.0: rgb,
        ROLL_DEG: rolled_photo(rgb, frame, ROLL_DEG)[0],
        -ROLL_DEG: rolled_photo(rgb, frame, -ROLL_DEG)[0],
    }
    return {roll: answer(runtime, photo) for roll, photo in photos.items()}


def test_the_default_model_reads_the_roll_of_a_rolled_copy(level_and_rolled: dict[float, PoseResponse]) -> None:
    for applied, pose in level_and_rolled.items():
        assert pose.roll_deg is not None, applied
        assert abs(pose.roll_deg - applied) <= TOLERANCE_DEG, (applied, pose.roll_deg)
    # The sign convention: counter-clockwise positive (cv2 turns the scene counter-clockwise for a positive angle).
    assert level_and_rolled[ROLL_DEG].roll_deg > level_and_rolled[-ROLL_DEG].roll_deg  # type: ignore[operator]


def test_hold_level_for_a_rolled_photo_and_not_for_the_level_one(level_and_rolled: dict[float, PoseResponse]) -> None:
    level = level_and_rolled[0.0]
    assert level.quality is not None and level.quality.level is True
    assert level.guidance is not None and "hold_level" not in [fix.code for fix in level.guidance.fixes]
    for applied in (ROLL_DEG, -ROLL_DEG):
        pose = level_and_rolled[applied]
        assert pose.quality is not None and pose.quality.level is False, (applied, pose.roll_deg)
        assert pose.guidance is not None
        fixes = {fix.code: fix.message for fix in pose.guidance.fixes}
        assert "hold_level" in fixes, (applied, pose.roll_deg, fixes)
        # The scene turned counter-clockwise (applied > 0) means the phone was turned clockwise.
        assert ("counter-clockwise" in fixes["hold_level"]) == (applied < 0), fixes["hold_level"]
        assert not pose.guidance.ready
