"""Issue 9's failure cases on the real photos, through the embedded default model (skips without model or data).

The photos are decoded exactly as `POST /pose` decodes them (the model's working size), and the model loads
once per session (`default_backend`). Each test is one photo the issue named.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from service.backends.base import DetectionBackend
from service.imaging import decode_upload
from service.postprocess import Detection, PoseEstimate, estimate_pose


def detect(backend: DetectionBackend, path: Path) -> tuple[list[Detection], tuple[int, int]]:
    if not path.is_file():
        pytest.skip(f"photo not found: {path}")
    image = decode_upload(path.read_bytes(), 1 << 30, 1 << 30, backend.working_size())
    return backend.detect(image), (image.width, image.height)


def pose_of(backend: DetectionBackend, path: Path) -> tuple[PoseEstimate, list[Detection]]:
    detections, size = detect(backend, path)
    return estimate_pose(detections, size), detections


@pytest.mark.parametrize("name", ["00087a6bd4dc_05", "03a857ce842d_03"])
def test_duplicate_boxes_of_one_car_count_once(default_backend: object, turntable_dir: Path, name: str) -> None:
    pose, detections = pose_of(default_backend, turntable_dir / f"{name}.jpg")
    boxes = [d for d in detections if d.label == "car" and d.score >= 0.5]
    assert len(boxes) >= 2, "the model no longer gives duplicate boxes here: pick another photo"
    assert pose.cars_detected == 1
    assert pose.car is not None and pose.car.score == max(d.score for d in boxes)


def test_windscreen_of_a_missed_second_car_is_not_the_main_cars(default_backend: object, car_parts_dir: Path) -> None:
    # te22: a white hatchback, and on the left edge a half-visible second car that the detector misses; its
    # windscreen lies inside the main car's box.
    pose, detections = pose_of(default_backend, car_parts_dir / "testset" / "JPEGImages" / "te22.jpg")
    screens = [d for d in detections if d.label == "front_glass" and d.score >= 0.5]
    assert len(screens) == 2, "the model no longer sees both windscreens here: pick another photo"
    mine = [p for p in pose.parts if p.label == "front_glass"]
    assert len(mine) == 1
    assert mine[0].score == max(d.score for d in screens)  # the main car's own, central windscreen
    assert pose.coarse_view == "front"


def test_straight_rear_is_not_a_side_view_and_has_no_axle_tilt(default_backend: object, turntable_dir: Path) -> None:
    # 02159e548029_09: the car straight from behind; the two visible wheels are the rear axle's.
    pose, _ = pose_of(default_backend, turntable_dir / "02159e548029_09.jpg")
    assert sum(d.label == "wheel" for d in pose.wheels) >= 2, "the model no longer sees both rear wheels"
    assert pose.coarse_view != "side"
    assert pose.tilt_deg is None and pose.wheel_line is None


@pytest.mark.parametrize(("name", "true_azimuth"), [("02159e548029_08", 157.5), ("02159e548029_10", 202.5)])
def test_back_quarter_views_of_the_boxy_compact_are_back_views(
    default_backend: object, turntable_dir: Path, name: str, true_azimuth: float
) -> None:
    # The part rule read these back-left/back-right photos of the boxy compact as `front` with no reason given.
    from models.turntable import acceptable_views

    pose, _ = pose_of(default_backend, turntable_dir / f"{name}.jpg")
    assert pose.view in acceptable_views(true_azimuth)
    assert pose.coarse_view == "back"
    assert pose.reason is None


@pytest.mark.parametrize(("name", "true_azimuth"), [("03a857ce842d_09", 180.0), ("0495dcf27283_05", 90.0)])
def test_the_rule_vetoes_the_classifiers_wrong_side(
    default_backend: object, turntable_dir: Path, name: str, true_azimuth: float
) -> None:
    # The classifier alone split these between a view and its opposite (an SUV's rear: 0.76 front, 0.15 back; a
    # coupe's left side: 0.59 right, 0.39 left); the part rule's side decides.
    from models.turntable import acceptable_views

    pose, _ = pose_of(default_backend, turntable_dir / f"{name}.jpg")
    assert pose.view in acceptable_views(true_azimuth)


@pytest.mark.parametrize(("name", "view"), [("te23", "front_right"), ("te45", "front_left"), ("te97", "front_right")])
def test_three_quarter_fronts_that_the_frozen_trunk_missed(
    default_backend: DetectionBackend, car_parts_dir: Path, name: str, view: str
) -> None:
    # Issue 19: the classifier on the frozen ImageNet trunk read te45 as `left`, te97 as `front` (0.52) and gave te23
    # no view; the one whose last trunk blocks were fine-tuned on web-framed crops reads all three as labelled by eye.
    pose, _ = pose_of(default_backend, car_parts_dir / "testset" / "JPEGImages" / f"{name}.jpg")
    assert pose.view == view
