"""The learned view classifier's hook: probabilities on the main car -> view, confidence, azimuth in its bin."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from service.postprocess import (
    REASON_CAR_TOO_SMALL,
    REASON_LOW_CONFIDENCE,
    REASON_TOO_FEW_PARTS,
    REASON_VIEW_AMBIGUOUS,
    VIEWS,
    Detection,
    PoseConfig,
    coarse_view_of,
    estimate_pose,
    select_main_car,
    view_of,
)
from service.postprocess.geometry import angle_diff_deg
from tests.postprocess.test_edge_cases import CAR, SIZE, check_invariants, front_parts, wheel

# The hook's mechanics without the rule's veto (tested on its own below) and without the evidence check
# (evidence.py withholds a view opposite these clear front parts; tests/service/test_framing.py tests it).
NO_VETO = PoseConfig(rule_veto_strength=0.0, evidence_check=False)
HOOK = PoseConfig(evidence_check=False)


def probs_for(view: str, p: float = 0.8) -> tuple[float, ...]:
    """`p` on `view`, the rest spread evenly."""
    rest = (1.0 - p) / (len(VIEWS) - 1)
    return tuple(p if v == view else rest for v in VIEWS)


def with_probs(probs: object, car: Detection = CAR) -> Detection:
    return replace(car, view_probs=probs)  # type: ignore[arg-type]


def test_rule_alone_reads_the_front_parts_as_front() -> None:
    rule = estimate_pose([CAR, *front_parts()], SIZE)
    assert rule.view == "front" and rule.azimuth_deg is not None
    assert angle_diff_deg(rule.azimuth_deg, 0.0) < 10.0  # the tests below rely on this starting point


def test_argmax_is_the_view_and_its_probability_the_confidence() -> None:
    pose = estimate_pose([with_probs(probs_for("front", 0.9)), *front_parts()], SIZE, NO_VETO)
    check_invariants(pose)
    rule = estimate_pose([CAR, *front_parts()], SIZE)
    assert pose.view == "front" and pose.reason is None
    assert pose.confidence == pytest.approx(0.9, abs=1e-3)
    assert pose.azimuth_deg == rule.azimuth_deg  # the rule's azimuth already lies in the bin: kept


def test_unnormalised_probabilities_are_normalised() -> None:
    raw = tuple(2.0 * p for p in probs_for("back", 0.6))
    pose = estimate_pose([with_probs(raw), *front_parts()], SIZE, NO_VETO)
    assert pose.view == "back"
    assert pose.confidence == pytest.approx(0.6, abs=1e-3)


@pytest.mark.parametrize(
    ("view", "expected"),
    [
        ("front_left", 22.6),  # rule ~0, bin [22.5, 67.5): moved 0.1 degree inside the near edge
        ("front_right", 337.4),  # bin [292.5, 337.5): the other way round
    ],
)
def test_rule_azimuth_outside_the_bin_moves_just_inside_it(view: str, expected: float) -> None:
    pose = estimate_pose([with_probs(probs_for(view)), *front_parts()], SIZE)
    check_invariants(pose)
    assert pose.view == view
    assert pose.azimuth_deg == pytest.approx(expected, abs=0.05)
    assert pose.coarse_view == coarse_view_of(pose.azimuth_deg)


def test_a_rule_azimuth_beyond_reach_is_not_used_for_the_angle() -> None:
    # A rule on the right of the front (~345) and a classifier sure of `back`: the rule knows nothing about the
    # angle inside the back bin, so the azimuth comes from the probabilities (symmetric here: the bin centre)
    # instead of being pinned to an edge, which would also make coarse_view `side`.
    parts = [*front_parts(), Detection("front_right_door", (100.0, 300.0, 300.0, 560.0), 0.9)]
    rule = estimate_pose([CAR, *parts], SIZE)
    assert rule.azimuth_deg is not None and 270.0 < rule.azimuth_deg < 360.0, rule
    pose = estimate_pose([with_probs(probs_for("back")), *parts], SIZE, NO_VETO)
    check_invariants(pose)
    assert pose.azimuth_deg is not None and angle_diff_deg(pose.azimuth_deg, 180.0) < 2.5  # neighbours pull a little
    assert pose.coarse_view == "back"


def test_the_rule_reaches_one_bin_beyond_the_chosen_view() -> None:
    # Rule at 0 (front). front_left's edge (22.5) is within one bin of it: the rule sets the near edge (the
    # parametrised test above). left's edge (67.5) is 1.5 bins away and back_left further: the probabilities.
    for view, expected in (("left", 90.0), ("back_left", 135.0)):
        pose = estimate_pose([with_probs(probs_for(view)), *front_parts()], SIZE, HOOK)
        check_invariants(pose)
        assert pose.azimuth_deg is not None and angle_diff_deg(pose.azimuth_deg, expected) < 2.5, view


def test_without_a_rule_azimuth_the_probabilities_give_one() -> None:
    # Car alone: the rule says too_few_parts; the classifier only needs the car box.
    assert estimate_pose([CAR], SIZE).reason == REASON_TOO_FEW_PARTS
    probs = (0.1, 0.6, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0)  # front_left, leaning toward left
    pose = estimate_pose([with_probs(probs)], SIZE)
    check_invariants(pose)
    assert pose.view == "front_left" and pose.reason is None
    # The stronger neighbour (left, 0.3) holds a third of the pair's mass: a third of the way to its centre.
    assert pose.azimuth_deg == pytest.approx(45.0 + 45.0 * 0.3 / 0.9, abs=0.05)


def test_probability_mean_is_clamped_into_the_bin() -> None:
    # Equal mass on the chosen view and its neighbour: the yaw sits on the edge -> 0.1 degree inside.
    probs = (0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.0, 0.0)
    pose = estimate_pose([with_probs(probs)], SIZE)
    assert pose.view == "back" and view_of(pose.azimuth_deg) == "back"
    assert pose.azimuth_deg == pytest.approx(202.4, abs=0.05)


def test_without_rule_sets_angle_the_probabilities_give_the_angle() -> None:
    # Rule ~0 (front parts), classifier sure of front_left with even neighbours: the diagonal's centre (the
    # neighbours pull a degree or two), not the rule's azimuth moved to the near edge (22.6).
    config = PoseConfig(rule_sets_angle=False)
    pose = estimate_pose([with_probs(probs_for("front_left")), *front_parts()], SIZE, config)
    check_invariants(pose)
    assert pose.view == "front_left" and pose.azimuth_deg is not None
    assert angle_diff_deg(pose.azimuth_deg, 45.0) < 2.5


def test_ambiguous_parts_with_probabilities_still_give_a_view() -> None:
    parts = [
        Detection("front_bumper", (150.0, 460.0, 850.0, 580.0), 0.9),
        Detection("back_bumper", (150.0, 460.0, 850.0, 580.0), 0.9),
    ]
    assert estimate_pose([CAR, *parts], SIZE).reason == REASON_VIEW_AMBIGUOUS
    pose = estimate_pose([with_probs(probs_for("left")), *parts], SIZE)
    check_invariants(pose)
    assert (pose.view, pose.reason) == ("left", None)
    assert pose.azimuth_deg is not None and angle_diff_deg(pose.azimuth_deg, 90.0) < 2.5


def test_side_view_from_probabilities_uses_side_wheels_for_tilt() -> None:
    wheels = [wheel(250.0, cy=560.0), wheel(750.0, cy=520.0)]  # right wheel 40 px higher
    pose = estimate_pose([with_probs(probs_for("left")), *wheels], SIZE)
    check_invariants(pose)
    assert pose.coarse_view == "side" and pose.tilt_deg is not None and pose.tilt_deg > 0.0
    front = estimate_pose([with_probs(probs_for("front")), *wheels], SIZE)
    assert front.coarse_view == "front" and front.tilt_deg is None  # front on: two wheels are an axle


def test_car_too_small_stays_too_small() -> None:
    tiny = Detection("car", (10.0, 10.0, 40.0, 30.0), 0.9, view_probs=probs_for("left"))
    pose = estimate_pose([tiny], SIZE)
    assert pose.reason == REASON_CAR_TOO_SMALL and pose.view is None


@pytest.mark.parametrize(
    "probs",
    [
        (0.5,) * 7,  # wrong length
        (0.5,) * 9,
        (math.nan, *(0.1,) * 7),
        (math.inf, *(0.1,) * 7),
        (-0.1, *(0.3,) * 7),
        (0.0,) * 8,  # no mass
        "front_left",
        (None,) * 8,
        ((0.1, 0.2),) * 8,
        {"front": 1.0},
    ],
    ids=["7", "9", "nan", "inf", "negative", "zero-sum", "str", "nones", "nested", "dict"],
)
def test_invalid_probabilities_are_ignored(probs: object) -> None:
    rule = estimate_pose([CAR, *front_parts()], SIZE)
    pose = estimate_pose([with_probs(probs), *front_parts()], SIZE)
    check_invariants(pose)
    assert (pose.view, pose.azimuth_deg, pose.confidence, pose.reason) == (
        rule.view,
        rule.azimuth_deg,
        rule.confidence,
        rule.reason,
    )


def test_floor_withholds_the_view_but_keeps_the_azimuth() -> None:
    dets = [with_probs(probs_for("front_left", 0.55)), *front_parts()]
    open_pose = estimate_pose(dets, SIZE, replace(NO_VETO, min_confidence=0.5))
    assert open_pose.view == "front_left" and open_pose.reason is None
    floored = estimate_pose(dets, SIZE, replace(NO_VETO, min_confidence=0.6))
    check_invariants(floored)
    assert (floored.view, floored.coarse_view, floored.reason) == (None, None, REASON_LOW_CONFIDENCE)
    assert floored.azimuth_deg == open_pose.azimuth_deg and floored.confidence == open_pose.confidence


def test_floor_applies_to_the_rule_too_and_zero_is_off() -> None:
    rule = estimate_pose([CAR, *front_parts()], SIZE)
    assert rule.view is not None and 0.0 < rule.confidence < 1.0
    assert estimate_pose([CAR, *front_parts()], SIZE, PoseConfig(min_confidence=0.0)) == rule
    floored = estimate_pose([CAR, *front_parts()], SIZE, PoseConfig(min_confidence=rule.confidence + 0.01))
    assert floored.reason == REASON_LOW_CONFIDENCE and floored.azimuth_deg == rule.azimuth_deg


def test_floor_leaves_other_reasons_alone() -> None:
    pose = estimate_pose([CAR], SIZE, PoseConfig(min_confidence=0.9))
    assert pose.reason == REASON_TOO_FEW_PARTS


def test_select_main_car_is_the_posed_car() -> None:
    far = Detection("car", (900.0, 0.0, 1000.0, 60.0), 0.99)  # small, in a corner
    dets = [far, CAR, *front_parts()]
    chosen = select_main_car(dets, SIZE)
    assert chosen == CAR == estimate_pose(dets, SIZE).car
    assert select_main_car([], SIZE) is None
    assert select_main_car([Detection("car", (0.0, 0.0, 10.0, 10.0), 0.1)], SIZE) is None  # under threshold


def test_probabilities_on_another_car_are_not_used() -> None:
    far = Detection("car", (900.0, 0.0, 1000.0, 60.0), 0.99, view_probs=probs_for("back", 0.99))
    rule = estimate_pose([CAR, *front_parts()], SIZE)
    pose = estimate_pose([far, CAR, *front_parts()], SIZE)
    assert pose.view == rule.view == "front" and pose.confidence == rule.confidence


def split(view: str, p: float, other: str, q: float) -> tuple[float, ...]:
    rest = (1.0 - p - q) / (len(VIEWS) - 2)
    return tuple(p if v == view else q if v == other else rest for v in VIEWS)


def test_the_rule_vetoes_a_split_classifier_on_the_opposite_side() -> None:
    # The rule reads front parts (front, with some confidence); the classifier leans back but also holds front.
    rule = estimate_pose([CAR, *front_parts()], SIZE)
    assert rule.view == "front" and rule.confidence > 0.3
    pose = estimate_pose([with_probs(split("back", 0.55, "front", 0.40)), *front_parts()], SIZE, HOOK)
    check_invariants(pose)
    assert pose.view == "front" and pose.coarse_view == "front"
    assert pose.confidence > 0.4  # renormalised: the vetoed back no longer takes its share
    alone = estimate_pose([with_probs(split("back", 0.55, "front", 0.40)), *front_parts()], SIZE, NO_VETO)
    assert alone.view == "back"


def test_a_confident_classifier_wins_over_the_rule() -> None:
    # A sure rule (these synthetic front parts: confidence ~0.8) keeps ~1.7% of a view on the opposite side.
    pose = estimate_pose([with_probs(split("back", 0.995, "front", 0.004)), *front_parts()], SIZE, HOOK)
    assert pose.view == "back" and pose.coarse_view == "back"
    # ...but not over clear parts of the other end: the evidence check (on by default) withholds the view.
    checked = estimate_pose([with_probs(split("back", 0.995, "front", 0.004)), *front_parts()], SIZE)
    assert checked.view is None and checked.reason == REASON_VIEW_AMBIGUOUS and checked.confidence <= 0.2


def test_the_veto_never_pulls_toward_the_rule_within_reach() -> None:
    # Three-quarter photos the rule reads as front: the classifier's front_left stands, whatever the split.
    pose = estimate_pose([with_probs(split("front_left", 0.51, "front", 0.45)), *front_parts()], SIZE)
    assert pose.view == "front_left"
    assert pose.confidence == pytest.approx(
        estimate_pose([with_probs(split("front_left", 0.51, "front", 0.45)), *front_parts()], SIZE, NO_VETO).confidence,
        abs=0.02,
    )
