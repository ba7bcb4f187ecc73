"""The rendered image's caption states the pose as the API does."""

from __future__ import annotations

import pytest

from service.postprocess import PoseEstimate
from service.render import caption


def pose(azimuth: float | None, view: str | None = "front") -> PoseEstimate:
    return PoseEstimate(
        view=view, coarse_view="front" if view else None, azimuth_deg=azimuth, tilt_deg=None, confidence=0.9,
        reason=None if view else "no_car", cars_detected=1, car=None, wheels=[], parts=[], wheel_line=None,
    )  # fmt: skip


@pytest.mark.parametrize(("azimuth", "shown"), [(359.8, "yaw 0 deg"), (359.4, "yaw 359 deg"), (0.4, "yaw 0 deg")])
def test_the_yaw_stays_below_360_after_rounding(azimuth: float, shown: str) -> None:
    assert shown in caption(pose(azimuth))


def test_no_pose_says_why() -> None:
    assert caption(pose(None, view=None)) == "no pose: no_car"
