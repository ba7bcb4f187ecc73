"""service.framing (whole_car, other_cars), the exposure direction and the evidence check, on hand-made detections:
the rules' edges. Real photos: tests/service/test_verdicts.py."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from service.framing import extent_of, prominent_other_cars, whole_car
from service.postprocess import Detection, PoseEstimate
from service.postprocess.evidence import check_evidence
from service.quality import QualityThresholds, exposure_of

SIZE = (800, 600)


def pose_with(parts: list[Detection], wheels: int = 0, car_box=(100.0, 150.0, 700.0, 450.0), **kw) -> PoseEstimate:
    mask = np.zeros((SIZE[1], SIZE[0]), bool)
    x0, y0, x1, y1 = (int(v) for v in car_box)
    mask[y0:y1, x0:x1] = True
    car = Detection("car", car_box, 0.99, mask=mask)
    wheel_boxes = [Detection("wheel", (150.0 + 300 * i, 380.0, 230.0 + 300 * i, 450.0), 0.9) for i in range(wheels)]
    base = {
        "view": "front_left",
        "coarse_view": "front",
        "azimuth_deg": 40.0,
        "tilt_deg": None,
        "confidence": 0.95,
        "reason": None,
        "cars_detected": 1,
        "car": car,
        "wheels": wheel_boxes,
        "parts": parts,
        "wheel_line": None,
    }
    base.update(kw)
    return PoseEstimate(**base)  # type: ignore[arg-type]


def part(label: str, box=(300.0, 200.0, 400.0, 300.0), score: float = 0.95) -> Detection:
    return Detection(label, box, score)


FRONT = [part("front_bumper"), part("front_glass"), part("hood"), part("front_left_light")]


def test_a_whole_car_shows_enough_parts_a_close_up_does_not() -> None:
    assert whole_car(extent_of(pose_with(FRONT), SIZE))
    assert whole_car(extent_of(pose_with(FRONT[:3], wheels=2), SIZE))  # 3 parts + two wheels
    assert not whole_car(extent_of(pose_with([part("back_bumper"), part("back_left_light")]), SIZE))
    assert not whole_car(extent_of(pose_with(FRONT[:3], wheels=1), SIZE))


def test_reaching_a_border_needs_more_parts() -> None:
    at_left = pose_with(FRONT, car_box=(0.0, 150.0, 600.0, 450.0))
    assert extent_of(at_left, SIZE).touches == {"left"}  # type: ignore[union-attr]
    assert not whole_car(extent_of(at_left, SIZE))
    five = [*FRONT, part("left_mirror")]
    assert whole_car(extent_of(pose_with(five, car_box=(0.0, 150.0, 600.0, 450.0)), SIZE))
    # A part box at the border counts as the car reaching it.
    edge = [*FRONT[:3], part("front_left_light", box=(700.0, 200.0, 800.0, 300.0))]
    assert extent_of(pose_with(edge), SIZE).touches == {"right"}  # type: ignore[union-attr]


def test_other_cars_count_by_their_visible_size() -> None:
    main = pose_with(FRONT)  # car box 600 x 300
    big = Detection("car", (450.0, 50.0, 800.0, 500.0), 0.9)  # 350 x 450, 82500 px² of it outside: 0.46 of main
    small = Detection("car", (0.0, 0.0, 60.0, 40.0), 0.9)
    behind = Detection("car", (200.0, 200.0, 600.0, 400.0), 0.9)  # hidden behind the main car
    assert prominent_other_cars(replace(main, other_cars=[big, small, behind]), 0.3) == 1
    assert prominent_other_cars(replace(main, other_cars=[small]), 0.0) == 1  # 0: every other car counts


def test_exposure_names_its_direction() -> None:
    t = QualityThresholds.defaults()
    assert exposure_of(0.5, 0.0, 0.0, t) == "ok"
    assert exposure_of(0.1, 0.0, 0.0, t) == "too_dark"
    assert exposure_of(0.84, 0.0, 0.6, t) == "too_bright"
    assert exposure_of(0.5, 0.05, 0.3, t) == "too_bright"  # mean in range, mostly white pixels
    assert exposure_of(0.3, 0.3, 0.01, t) == "too_dark"


def test_a_view_contradicting_clear_parts_is_withheld() -> None:
    contradicted = check_evidence(pose_with(FRONT, view="back_left", confidence=0.585))
    assert contradicted.view is None and contradicted.reason == "view_ambiguous" and contradicted.confidence <= 0.2
    agreeing = check_evidence(pose_with(FRONT, view="front_right", confidence=0.9))
    assert agreeing.view == "front_right" and agreeing.confidence == 0.9
    mixed = [*FRONT, part("back_bumper"), part("trunk")]  # both ends seen: no clear face, no veto
    assert check_evidence(pose_with(mixed, view="back_left")).view == "back_left"


def test_no_parts_no_confident_view() -> None:
    blind = check_evidence(pose_with([], wheels=2, view="front_right", confidence=0.983))
    assert blind.view == "front_right" and blind.confidence < 0.5


def test_the_car_box_shape_must_fit_the_view() -> None:
    # A side view 1.2x as wide as tall is a section of the car (a whole side is over twice as long as tall) ...
    side_section = pose_with(FRONT, view="left", car_box=(200.0, 150.0, 560.0, 450.0))
    assert not whole_car(extent_of(side_section, SIZE))
    # ... and one 2.5x as wide is a whole car even with few parts found (a plain studio side: three parts).
    side_whole = pose_with(FRONT[:2], wheels=2, view="left", car_box=(50.0, 200.0, 750.0, 480.0))
    assert whole_car(extent_of(side_whole, SIZE))
    assert not whole_car(extent_of(replace(side_whole, view="front"), SIZE))  # no bonus for a wide front
    # A front view taller than wide (0.7) is half a front.
    assert not whole_car(extent_of(pose_with(FRONT, view="front", car_box=(250.0, 100.0, 460.0, 400.0)), SIZE))
    assert whole_car(extent_of(pose_with(FRONT, view="front", car_box=(200.0, 100.0, 600.0, 400.0)), SIZE))
    # Without a view the shape says nothing.
    assert whole_car(extent_of(pose_with(FRONT, view=None, car_box=(200.0, 150.0, 560.0, 450.0)), SIZE))
