"""Main-car bookkeeping: one box per car, parts of other cars left out, axle pairs never a side."""

from __future__ import annotations

from dataclasses import replace

from service.postprocess import Detection, estimate_pose, select_main_car
from tests.postprocess.test_edge_cases import CAR, SIZE, check_invariants, front_parts, wheel

# CAR is (100, 200, 900, 600): 800 x 400 px.
FRONT_HALF = Detection("car", (80.0, 210.0, 520.0, 600.0), 0.8)  # the car's front half, as tall as the car
REAR_HALF = Detection("car", (480.0, 190.0, 910.0, 590.0), 0.7)


def test_boxes_of_a_cars_halves_are_the_same_car() -> None:
    pose = estimate_pose([CAR, FRONT_HALF, REAR_HALF, *front_parts()], SIZE)
    check_invariants(pose)
    assert pose.cars_detected == 1 and pose.car == CAR


def test_a_body_box_as_wide_as_the_car_is_the_same_car() -> None:
    body = Detection("car", (180.0, 300.0, 860.0, 560.0), 0.9)  # no roof, no wheels: 0.65 as tall, 0.85 as wide
    pose = estimate_pose([body, CAR, *front_parts()], SIZE)
    assert pose.cars_detected == 1 and pose.car == CAR  # the larger score x area is kept


def test_near_identical_boxes_are_one_car() -> None:
    twin = Detection("car", (110.0, 205.0, 905.0, 610.0), 0.9)
    assert estimate_pose([twin, CAR, *front_parts()], SIZE).cars_detected == 1


def test_cars_side_by_side_are_two() -> None:
    # Overlaps the main car's left end by half its own width: a neighbour, not a half box of the main car
    # (those lie at least 55 % inside; a neighbour mostly inside at the same scale cannot be told apart).
    neighbour = Detection("car", (0.0, 250.0, 200.0, 560.0), 0.9)
    pose = estimate_pose([CAR, neighbour, *front_parts()], SIZE)
    assert pose.cars_detected == 2 and pose.car == CAR


def test_a_smaller_car_behind_inside_the_box_is_another_car() -> None:
    # Farther away, so much less tall, though it lies within the main car's box.
    behind = Detection("car", (600.0, 210.0, 850.0, 360.0), 0.9)
    assert estimate_pose([CAR, behind, *front_parts()], SIZE).cars_detected == 2


def test_a_box_around_the_car_without_parts_of_its_own_is_not_a_car() -> None:
    # A turntable's platform read as a car: far wider and taller than the car it holds, every part inside the car.
    car = Detection("car", (350.0, 300.0, 650.0, 550.0), 0.95)
    parts = [
        Detection("front_bumper", (380.0, 480.0, 620.0, 540.0), 0.9),
        Detection("front_glass", (390.0, 320.0, 610.0, 380.0), 0.9),
        Detection("front_left_light", (570.0, 440.0, 620.0, 470.0), 0.9),
        Detection("front_right_light", (380.0, 440.0, 430.0, 470.0), 0.9),
    ]
    platform = Detection("car", (100.0, 150.0, 950.0, 700.0), 0.85)
    pose = estimate_pose([platform, car, *parts], SIZE)
    check_invariants(pose)
    assert pose.cars_detected == 1 and pose.car == car and pose.other_cars == []
    assert select_main_car([platform, car, *parts], SIZE) == car
    # With one part of its own outside the car it holds (a near car's wheel), the larger box stays a car.
    assert estimate_pose([platform, car, *parts, wheel(200.0, 620.0, h=100.0)], SIZE).cars_detected == 2


def test_view_probs_on_a_dropped_duplicate_reach_the_kept_box() -> None:
    probs = (0.0, 0.9, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0)
    pose = estimate_pose([CAR, replace(FRONT_HALF, view_probs=probs), *front_parts()], SIZE)
    assert pose.cars_detected == 1 and pose.view == "front_left"
    assert select_main_car([CAR, FRONT_HALF], SIZE) == CAR


def test_a_second_windscreen_apart_from_the_first_is_another_cars() -> None:
    # A half-visible second car the detector missed: its windscreen lies inside the main car's box.
    other = Detection("front_glass", (110.0, 230.0, 300.0, 290.0), 0.6)
    pose = estimate_pose([CAR, *front_parts(), other], SIZE)
    check_invariants(pose)
    screens = [p for p in pose.parts if p.label == "front_glass"]
    assert screens == [Detection("front_glass", (340.0, 230.0, 660.0, 350.0), 0.9)]


def test_a_double_detection_of_one_part_stays() -> None:
    double = Detection("front_glass", (350.0, 240.0, 650.0, 340.0), 0.6)  # the same windscreen again
    pose = estimate_pose([CAR, *front_parts(), double], SIZE)
    assert sum(p.label == "front_glass" for p in pose.parts) == 2


def test_wheels_may_be_several() -> None:
    wheels = [wheel(250.0), wheel(750.0), wheel(330.0, 470.0, 60.0), wheel(690.0, 465.0, 58.0)]
    assert len(estimate_pose([CAR, *wheels], SIZE).wheels) == 4


def test_axle_pair_of_a_front_on_car_box_is_not_a_side() -> None:
    # Straight rear, no usable parts: the car box is about as wide as tall, the two rear wheels look round
    # enough (only their lower part shows) and far apart; they are the rear axle, not one side.
    car = Detection("car", (250.0, 100.0, 550.0, 370.0), 0.98)
    wheels = [wheel(280.0, 345.0, 40.0, aspect=0.9), wheel(515.0, 345.0, 34.0, aspect=1.2)]
    pose = estimate_pose([car, *wheels], SIZE)
    check_invariants(pose)
    assert pose.coarse_view is None and pose.tilt_deg is None and pose.wheel_line is None
    # The same wheels under a side-on car box are one side.
    wide = Detection("car", (100.0, 230.0, 700.0, 370.0), 0.98)
    assert estimate_pose([wide, *wheels], SIZE).coarse_view == "side"
