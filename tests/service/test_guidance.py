"""Guided capture (service.guidance): the walk's sign and size, the fixes and their registry, the HTTP answer.

The walk and registry tests are pure; the photo tests post real turntable photos of known yaw (and degraded
copies of one) to the service with the embedded default model (skipping without it or the photos).
"""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageFilter

from models.paths import DEFAULT_TURNTABLE_DIR
from service.guidance import FIX_CODES, guide, next_view, walk_to, wrap_deg
from service.postprocess.vocabulary import VIEWS
from service.schemas import CarOut, ImageOut, ModelOut, PoseResponse, QualityOut
from service.settings import REPO_ROOT
from tests.service.helpers import assert_error


def answer(view: str | None, azimuth: float | None, car: bool = True, **quality: object) -> PoseResponse:
    """A pose answer as the API gives it, with a good photo's quality unless told otherwise."""
    good: dict[str, object] = {
        "ok": True,
        "in_frame": True,
        "cut_sides": [],
        "car_fraction": 0.4,
        "large_enough": True,
        "sharpness": 800.0,
        "sharp": True,
        "brightness": 0.45,
        "clipped_fraction": 0.01,
        "exposure_ok": True,
    }
    good.update(quality)
    return PoseResponse(
        view=view,
        coarse_view=None,
        azimuth_deg=azimuth,
        tilt_deg=None,
        confidence=0.9,
        reason=None,
        cars_detected=1 if car else 0,
        car=CarOut(box=(0, 0, 10, 10), score=0.9) if car else None,
        wheels=[],
        parts=[],
        image=ImageOut(width=10, height=10),
        backend="detectron2",
        model=ModelOut(name="m", version="v"),
        timings_ms={},
        quality=QualityOut(**good) if car else None,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("azimuth", "target", "walk"),
    [
        (0.0, "front_left", -45.0),  # to the car's left side: counter-clockwise from above, the seller's right
        (90.0, "front", 90.0),  # from the left side back to the front: clockwise
        (350.0, "front_left", -55.0),  # across 0
        (10.0, "front_right", 55.0),  # across 0 the other way
        (180.0, "front", 180.0),  # straight behind: (-180, 180] keeps +180
        (270.0, "right", 0.0),
    ],
)
def test_walk_sign_and_size(azimuth: float, target: str, walk: float) -> None:
    assert walk_to(azimuth, target) == pytest.approx(walk)


def test_wrap_stays_in_its_half_open_range() -> None:
    for angle in np.arange(-720.0, 720.0, 7.5):
        wrapped = wrap_deg(float(angle))
        assert -180.0 < wrapped <= 180.0
        assert (wrapped - angle) % 360.0 == pytest.approx(0.0, abs=1e-9)


def test_off_target_says_which_way_to_walk() -> None:
    left = guide(answer("front", 0.0), "front_right")  # clockwise: the seller's left
    assert not left.on_target and left.walk_deg == 45.0 and [f.code for f in left.fixes] == ["walk_left"]
    assert "45°" in left.fixes[0].message and "front right" in left.fixes[0].message
    right = guide(answer("front", 0.0), "front_left")
    assert right.walk_deg == -45.0 and [f.code for f in right.fixes] == ["walk_right"]


def test_on_target_and_good_is_ready() -> None:
    result = guide(answer("front_left", 50.0), "front_left")
    assert result.on_target and result.fixes == [] and result.ready and result.walk_deg == 5.0


def test_fixes_come_in_the_registry_order() -> None:
    pose = answer(
        "front",
        5.0,
        ok=False,
        in_frame=False,
        cut_sides=["left", "bottom"],
        sharp=False,
        brightness=0.05,
        exposure_ok=False,
        exposure="too_dark",
    )
    result = guide(pose, "back")
    codes = [f.code for f in result.fixes]
    assert codes == ["step_back", "walk_right", "too_dark", "hold_still"]  # 5 -> 180: -175
    assert "left and bottom" in result.fixes[0].message
    assert not result.ready


def test_bright_small_and_no_car() -> None:
    bright = guide(
        answer("back", 180.0, brightness=0.95, exposure_ok=False, exposure="too_bright", large_enough=False), "back"
    )
    assert [f.code for f in bright.fixes] == ["move_closer", "too_bright"] and bright.on_target
    none = guide(answer(None, None, car=False), "back")
    assert [f.code for f in none.fixes] == ["no_car"] and none.walk_deg is None and not none.on_target
    unclear = guide(answer(None, None), "back")
    assert [f.code for f in unclear.fixes] == ["unclear_view"]


def test_close_up_and_another_car_are_fixes_of_their_own() -> None:
    crowded = guide(answer("back", 180.0, whole_car=False, other_cars=1), "back")
    assert [f.code for f in crowded.fixes] == ["show_whole_car", "other_car_in_front"]
    assert crowded.on_target and not crowded.ready


def test_hold_level_follows_the_measured_roll_never_the_wheel_line() -> None:
    # A level photo whose wheel line slopes -35 degrees with perspective: no hold_level.
    level = answer("front_left", 45.0, level=True).model_copy(update={"tilt_deg": -35.0, "roll_deg": 1.5})
    assert not guide(level, "front_left").fixes
    # roll_deg > 0: the scene turned counter-clockwise, so the phone was turned clockwise.
    for roll, direction in ((11.6, "clockwise"), (-9.4, "counter-clockwise")):
        rolled = answer("front_left", 45.0, level=False).model_copy(update={"tilt_deg": 0.0, "roll_deg": roll})
        fixes = guide(rolled, "front_left").fixes
        assert [fix.code for fix in fixes] == ["hold_level"]
        assert fixes[0].message == f"Hold the phone level: it is turned about {round(abs(roll))}° {direction}."
    # No roll measure (a model without a roll head): no verdict, no fix.
    unknown = answer("front_left", 45.0).model_copy(update={"tilt_deg": -35.0})
    assert unknown.quality is not None and unknown.quality.level is None
    assert not guide(unknown, "front_left").fixes


def test_next_view_is_the_closest_missing_one_and_keeps_the_direction() -> None:
    poses = [answer("front", 0.0), answer("front_left", 45.0)]
    assert next_view(poses, ["left", "front_right"]) == "left"
    # Halfway between two missing views, the seller keeps walking the way they came (here counter-clockwise).
    assert next_view([answer("front", 0.0), answer("left", 90.0)], ["front_left", "back_left"]) == "back_left"
    assert next_view([answer("back", 180.0), answer("left", 90.0)], ["front_left", "back_left"]) == "front_left"
    assert next_view([None], ["back", "left"]) == "back"
    assert next_view(poses, []) is None


def documented_fix_table() -> list[str]:
    text = (REPO_ROOT / "docs" / "api.md").read_text()
    table = text[text.index("| fix code | when |") :]
    table = table[: table.index("\n\n")]
    return re.findall(r"^\| `([a-z_]+)` \|", table, flags=re.M)


def test_the_api_page_lists_every_fix_code_in_order() -> None:
    assert documented_fix_table() == list(FIX_CODES)


def test_openapi_names_every_fix_code(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert schema["FixOut"]["properties"]["code"]["enum"] == list(FIX_CODES)
    pose = client.get("/openapi.json").json()["paths"]["/pose"]["post"]["parameters"]
    target = next(p for p in pose if p["name"] == "target_view")
    assert "walk" in target["description"]


@pytest.mark.parametrize("path", ["/pose", "/coverage"])
def test_an_unknown_target_view_is_a_422_naming_the_views(client: TestClient, path: str) -> None:
    field = "image" if path == "/pose" else "images"
    response = client.post(
        path, params={"target_view": "roof"}, files={field: ("a.jpg", b"\xff\xd8 not read", "image/jpeg")}
    )
    body = assert_error(response, 422, "validation_error")
    assert "target_view" in body["error"]["message"]
    for view in VIEWS:
        assert f"'{view}'" in body["error"]["message"]


# --- real photos -------------------------------------------------------------------------------------------------


def turntable(step: int, car: str = "00087a6bd4dc") -> bytes:
    path = DEFAULT_TURNTABLE_DIR / f"{car}_{step:02d}.jpg"
    if not path.is_file():
        pytest.skip(f"turntable photo not found at {path}")
    return path.read_bytes()


def post(client: TestClient, data: bytes, target: str) -> dict:
    response = client.post("/pose", params={"target_view": target}, files={"image": ("p.jpg", data, "image/jpeg")})
    assert response.status_code == 200, response.text
    guidance = response.json()["guidance"]
    assert guidance is not None and guidance["target_view"] == target
    return dict(guidance)


@pytest.mark.parametrize(
    ("step", "target", "truth"),
    [
        (1, "left", -90.0),  # front (0 deg) -> left side (90): counter-clockwise from above, walk right
        (5, "front", 90.0),  # left side -> front: clockwise, walk left
        (9, "front_right", -135.0),  # back (180) -> front_right (315): counter-clockwise
        (13, "back", 90.0),  # right side (270) -> back (180): clockwise
        (3, "back_left", -90.0),  # front_left (45) -> back_left (135)
    ],
)
def test_walk_on_real_photos_of_known_yaw(photo_client: TestClient, step: int, target: str, truth: float) -> None:
    guidance = post(photo_client, turntable(step), target)
    assert not guidance["on_target"]
    assert abs(wrap_deg(guidance["walk_deg"] - truth)) <= 20.0, guidance
    assert guidance["fixes"][0]["code"] == ("walk_left" if truth > 0 else "walk_right")


def test_a_real_photo_on_target_is_ready(photo_client: TestClient) -> None:
    guidance = post(photo_client, turntable(3), "front_left")
    assert guidance["on_target"] and guidance["ready"] and guidance["fixes"] == []


def degraded(data: bytes, gain: float = 1.0, blur: float = 0.0) -> bytes:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    if blur:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    pixels = np.clip(np.asarray(image, dtype=np.float32) * gain, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


@pytest.mark.parametrize(("gain", "blur", "code"), [(0.2, 0.0, "too_dark"), (1.0, 8.0, "hold_still")])
def test_quality_fixes_on_degraded_real_photos(photo_client: TestClient, gain: float, blur: float, code: str) -> None:
    guidance = post(photo_client, degraded(turntable(3), gain, blur), "front_left")
    assert code in [f["code"] for f in guidance["fixes"]], guidance
    assert not guidance["ready"]


def test_coverage_guides_each_photo_toward_its_next_view(photo_client: TestClient) -> None:
    files = [("images", (f"{s}.jpg", turntable(s), "image/jpeg")) for s in (1, 3)]  # front, then front_left
    response = photo_client.post("/coverage", params={"required": "front,front_left,left,front_right"}, files=files)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_view"] == "left"  # 45 deg on from the last photo, where front_right is 90 back
    last = body["photos"][-1]["pose"]["guidance"]
    assert last["target_view"] == "left" and last["fixes"][0]["code"] == "walk_right"
    explicit = photo_client.post("/coverage", params={"target_view": "back"}, files=files[:1]).json()
    assert explicit["photos"][0]["pose"]["guidance"]["target_view"] == "back"
