"""The synthetic turntable: every view, every 22.5 degrees, and tilt, recovered from rendered detections."""

from __future__ import annotations

import pytest

from service.postprocess import VIEWS, estimate_pose
from service.postprocess.geometry import angle_diff_deg

from .synthetic import IMAGE_SIZE, render

TURNTABLE = [22.5 * k for k in range(16)]


@pytest.mark.parametrize(("index", "view"), list(enumerate(VIEWS)))
def test_each_view_recovered_at_its_centre(index: int, view: str) -> None:
    pose = estimate_pose(render(45.0 * index), IMAGE_SIZE)
    assert pose.reason is None
    assert pose.view == view
    assert pose.confidence > 0.5


@pytest.mark.parametrize("elevation", [3.0, 10.0, 15.0])
def test_turntable_azimuth_error_below_15_degrees(elevation: float) -> None:
    errors = {}
    for azimuth in TURNTABLE:
        pose = estimate_pose(render(azimuth, elevation_deg=elevation), IMAGE_SIZE)
        assert pose.azimuth_deg is not None, azimuth
        assert 0.0 <= pose.azimuth_deg < 360.0
        errors[azimuth] = angle_diff_deg(pose.azimuth_deg, azimuth)
    assert max(errors.values()) < 15.0, errors


@pytest.mark.parametrize("azimuth", TURNTABLE)
def test_turntable_without_wheels_or_car_box(azimuth: float) -> None:
    # Parts only (a Custom Labels parts model): the car box is their union, the answer barely moves.
    pose = estimate_pose(render(azimuth, with_car=False, with_wheels=False), IMAGE_SIZE)
    assert pose.cars_detected == 1
    assert pose.azimuth_deg is not None
    assert angle_diff_deg(pose.azimuth_deg, azimuth) < 20.0


@pytest.mark.parametrize(
    ("azimuth", "coarse"),
    [(0, "front"), (30, "front"), (60, "side"), (90, "side"), (120, "side"), (150, "back"), (180, "back"),
     (210, "back"), (240, "side"), (270, "side"), (300, "side"), (330, "front")],
)  # fmt: skip
def test_coarse_views(azimuth: float, coarse: str) -> None:
    assert estimate_pose(render(azimuth), IMAGE_SIZE).coarse_view == coarse


def test_left_side_has_nose_toward_image_left() -> None:
    # The contract's convention, checked on the renderer itself so a sign slip cannot hide in both.
    dets = {d.label: d for d in render(90.0)}
    assert dets["front_left_door"].center[0] < dets["back_left_door"].center[0]
    dets = {d.label: d for d in render(270.0)}
    assert dets["front_right_door"].center[0] > dets["back_right_door"].center[0]


@pytest.mark.parametrize("azimuth", [90.0, 270.0])
@pytest.mark.parametrize("roll", [-12.0, -4.0, 0.0, 3.0, 10.0])
def test_tilt_side_views(azimuth: float, roll: float) -> None:
    pose = estimate_pose(render(azimuth, roll_deg=roll), IMAGE_SIZE)
    assert pose.tilt_deg == pytest.approx(roll, abs=0.5)
    assert pose.wheel_line is not None
    (x0, y0), (x1, y1) = pose.wheel_line
    assert x0 < x1
    if roll > 0:
        assert y1 < y0  # counter-clockwise positive: the right-hand wheel is higher in the image


@pytest.mark.parametrize("azimuth", [45.0, 67.5, 112.5, 135.0, 225.0, 292.5, 315.0])
@pytest.mark.parametrize("roll", [-8.0, 6.0])
def test_tilt_follows_roll_in_diagonal_views(azimuth: float, roll: float) -> None:
    # Seen from above, a diagonal car's wheel line slopes already; rolling the picture adds to it.
    level = estimate_pose(render(azimuth), IMAGE_SIZE).tilt_deg
    rolled = estimate_pose(render(azimuth, roll_deg=roll), IMAGE_SIZE).tilt_deg
    assert level is not None and rolled is not None
    assert rolled - level == pytest.approx(roll, abs=1.0)


@pytest.mark.parametrize("azimuth", [0.0, 180.0])
def test_no_tilt_from_an_axle_in_front_and_back_views(azimuth: float) -> None:
    pose = estimate_pose(render(azimuth), IMAGE_SIZE)
    assert len(pose.wheels) == 2
    assert pose.tilt_deg is None
    assert pose.wheel_line is None


def test_confusing_left_and_right_labels_keeps_the_side() -> None:
    # A detector that calls the right doors "left": the layout of front vs back doors still says "right".
    swapped = []
    for det in render(270.0):
        label = det.label.replace("right", "left") if "door" in det.label or "mirror" in det.label else det.label
        swapped.append(type(det)(label, det.box, det.score))
    pose = estimate_pose(swapped, IMAGE_SIZE)
    assert pose.azimuth_deg is not None
    assert angle_diff_deg(pose.azimuth_deg, 270.0) < 30.0
    assert pose.confidence < estimate_pose(render(270.0), IMAGE_SIZE).confidence


def test_masks_are_used_when_given() -> None:
    import numpy as np

    from service.postprocess import Detection

    width, height = IMAGE_SIZE
    out = []
    for det in render(45.0):
        mask = np.zeros((height, width), dtype=bool)
        x0, y0, x1, y1 = (int(v) for v in det.box)
        mask[y0:y1, x0:x1] = True  # a mask filling its box: the part's area is the box area
        out.append(Detection(det.label, det.box, det.score, mask))
    pose = estimate_pose(out, IMAGE_SIZE)
    assert pose.view in {"front_left", "left", "front"}
    assert pose.azimuth_deg is not None
