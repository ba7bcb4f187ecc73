"""Property test: no model output makes the postprocessing raise or break the output contract."""

from __future__ import annotations

import math

import pytest

from service.postprocess import (
    MODEL_CLASSES,
    REASON_LOW_CONFIDENCE,
    VIEWS,
    Detection,
    PoseConfig,
    PoseEstimate,
    coarse_view_of,
    select_main_car,
    view_of,
)
from service.postprocess.pose import estimate_pose_unguarded

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis not installed (pip install -e .[dev])")
st = hypothesis.strategies

coord = st.one_of(
    st.floats(min_value=-200.0, max_value=1400.0, allow_nan=False),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 640.0, 480.0]),
)
label = st.one_of(
    st.sampled_from(MODEL_CLASSES), st.sampled_from(["wheel", "car", "front_bumper"]), st.text(max_size=8)
)
score = st.one_of(st.floats(min_value=0.0, max_value=1.0), st.sampled_from([math.nan, -1.0, 2.0]))
detection = st.builds(lambda lb, x0, y0, x1, y1, s: Detection(lb, (x0, y0, x1, y1), s), label, coord, coord, coord,
                      coord, score)  # fmt: skip
probability = st.one_of(
    st.floats(min_value=0.0, max_value=1.0), st.sampled_from([math.nan, math.inf, -0.1, 0.0, 1e308])
)
# Mostly 8 numbers (valid or not), sometimes the wrong length or not numbers at all.
view_probs = st.one_of(
    st.none(),
    st.tuples(*[probability] * len(VIEWS)),
    st.lists(probability, max_size=10).map(tuple),
    st.sampled_from(["front", (None,) * 8, ((0.1,),) * 8]),
)
car_with_probs = st.builds(
    lambda x0, y0, x1, y1, s, p: Detection("car", (x0, y0, x1, y1), s, view_probs=p),  # type: ignore[arg-type]
    coord, coord, coord, coord, score, view_probs,
)  # fmt: skip
image_size = st.one_of(st.just((640, 480)), st.tuples(st.integers(-10, 3000), st.integers(-10, 3000)))


def check_contract(pose: PoseEstimate) -> None:
    assert 0.0 <= pose.confidence <= 1.0
    assert pose.view is None or pose.view in VIEWS
    assert (pose.view is None) == (pose.reason is not None)
    if pose.azimuth_deg is not None:
        assert 0.0 <= pose.azimuth_deg < 360.0
    if pose.reason == REASON_LOW_CONFIDENCE:
        assert pose.view is None and pose.coarse_view is None and pose.azimuth_deg is not None
    elif pose.azimuth_deg is not None:
        assert pose.view == view_of(pose.azimuth_deg)
        assert pose.coarse_view == coarse_view_of(pose.azimuth_deg)
    if pose.tilt_deg is not None:
        assert -90.0 < pose.tilt_deg <= 90.0
    assert pose.cars_detected >= (1 if pose.car is not None else 0)
    for det in [*pose.parts, *pose.wheels, *([pose.car] if pose.car else [])]:
        assert all(math.isfinite(v) for v in det.box)
        assert math.isfinite(det.score)


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(st.lists(detection, max_size=40), image_size)
def test_never_raises_and_keeps_the_contract(detections: list[Detection], size: tuple[int, int]) -> None:
    pose = estimate_pose_unguarded(detections, size)  # no safety net: a bug must show here
    check_contract(pose)


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(
    st.lists(detection, max_size=20), st.lists(car_with_probs, max_size=3), image_size, st.floats(0.0, 1.0)
)
def test_view_probs_and_floor_never_raise_and_keep_the_contract(
    detections: list[Detection], cars: list[Detection], size: tuple[int, int], floor: float
) -> None:
    cfg = PoseConfig(min_confidence=floor)
    pose = estimate_pose_unguarded([*cars, *detections], size, cfg)
    check_contract(pose)
    if pose.view is not None:
        assert pose.confidence >= floor
    # The backend's crop choice is the car the pose is about.
    assert select_main_car([*cars, *detections], size, cfg) == pose.car
