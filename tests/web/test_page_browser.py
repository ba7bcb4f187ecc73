"""The upload page in a real headless Chromium against the service under real uvicorn.

Screenshots go to test-artifacts/web/ (gitignored). Each test loads the page once: the machine is small.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import httpx
import pytest

from models.groundtruth import car_instance, split_coco_instances
from service.postprocess import estimate_pose

from .conftest import DESKTOP, PHONE, TEST_MAX_UPLOAD_BYTES, LiveServer, answer, new_page

pytestmark = pytest.mark.browser

# What the page must say for each reason code (app.js REASON_WORDS): the start of each sentence.
REASON_PHRASES = {
    "no_car": "No car was found",
    "car_too_small": "The car is too small",
    "too_few_parts": "Too few car parts",
    "view_ambiguous": "the view is ambiguous",
}
VIEW_PHRASES = {
    "front": "Front",
    "front_left": "Front and left side",
    "left": "Left side",
    "back_left": "Back and left side",
    "back": "Back",
    "back_right": "Back and right side",
    "right": "Right side",
    "front_right": "Front and right side",
}
XSS = '<img src=x id=injected onerror="window.__pwned=1">'


@pytest.fixture(scope="module")
def clear_view_image(car_parts_dir: Path) -> Path:
    """The test-split photo whose ground-truth parts give the most confident full pose."""
    coco = json.loads((car_parts_dir / "testset" / "annotations.json").read_text())
    files = {int(im["id"]): im["file_name"] for im in coco["images"]}
    sizes = {int(im["id"]): (int(im["width"]), int(im["height"])) for im in coco["images"]}
    best: tuple[float, str] | None = None
    for image_id, parts in sorted(split_coco_instances(coco).items()):
        car = car_instance(parts)
        pose = estimate_pose([p.as_detection() for p in parts] + ([car.as_detection()] if car else []), sizes[image_id])
        if pose.view is not None and pose.reason is None and (best is None or pose.confidence > best[0]):
            best = (pose.confidence, files[image_id])
    assert best is not None
    path = car_parts_dir / "testset" / "JPEGImages" / Path(best[1]).name
    assert path.is_file(), path
    return path


def open_page(page: Any, server: LiveServer) -> None:
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-backends-loaded='true']", state="attached")


def upload_and_wait(page: Any, image: Path | dict[str, Any]) -> None:
    page.set_input_files("#file", image)
    page.click("#send")
    page.wait_for_selector("#result:not([hidden]), #status[data-state='error']", state="visible", timeout=120_000)


def backend_options(page: Any) -> list[str]:
    return list(page.eval_on_selector_all("#backend option", "els => els.map(e => e.value)"))


def assert_page_matches_api(page: Any, expected: dict[str, Any]) -> None:
    assert page.is_visible("#result"), page.text_content("#status")
    assert page.get_attribute("#view", "data-view") == (expected["view"] or "")
    if expected["view"]:
        assert page.text_content("#view") == VIEW_PHRASES[expected["view"]]
    reason = expected["reason"]
    assert page.get_attribute("#reason", "data-reason") == (reason or "")
    if reason:
        assert page.is_visible("#reason")
        assert REASON_PHRASES[reason] in page.text_content("#reason")
    if expected["view"] is None:
        assert page.get_attribute("#status", "data-state") == "warn"
        assert REASON_PHRASES[reason] in page.text_content("#status")
    part_rows = page.locator("#parts tbody tr")
    if expected["parts"]:
        assert part_rows.count() == len(expected["parts"])
    else:
        assert "No parts found" in page.text_content("#parts tbody")
    if expected["azimuth_deg"] is None:
        assert "not determined" in page.text_content("#azimuth")
    else:
        # Whole degrees in [0, 360) as JavaScript's Math.round gives them: 359.6 is 0, never 360.
        assert page.text_content("#azimuth") == f"{math.floor(expected['azimuth_deg'] + 0.5) % 360}°"
        assert page.get_attribute("#dial-car", "transform") == f"rotate({expected['azimuth_deg']:.1f})"
    assert page.text_content("#cars") == str(expected["cars_detected"])
    # Photo quality: one line per verdict of the API's `quality`, marked as it says, or nothing without a car.
    quality = expected.get("quality")
    assert page.is_visible("#quality-box") == (quality is not None)
    if quality is not None:
        assert page.get_attribute("#quality-verdict", "data-ok") == str(quality["ok"]).lower()
        for check in ("in_frame", "large_enough", "sharp", "exposure_ok", "whole_car"):
            item = f'#quality li[data-check="{check}"]'
            assert page.get_attribute(item, "data-ok") == str(quality[check]).lower()
    # The annotated image is the API's rendering, decoded by the browser.
    assert page.get_attribute("#rendered", "src").startswith("data:image/jpeg;base64,")
    assert page.eval_on_selector("#rendered", "img => img.complete && img.naturalWidth > 0")
    # Its caption, which the server leaves out with render_parts=false, in render.py's words (yaw rounded as the
    # page's Yaw line rounds it).
    caption = page.text_content("#rendered-caption")
    view = expected["view"] or expected["coarse_view"]
    assert caption.startswith(f"view {view}" if view else f"no pose: {expected['reason']}"), caption
    if view and expected["azimuth_deg"] is not None:
        assert f", yaw {math.floor(expected['azimuth_deg'] + 0.5) % 360} deg" in caption, caption
    assert_caption_clear(page)
    # Latency: the server's stages plus the round trip measured in the page.
    timings = page.text_content("#timings")
    assert "Inference" in timings and "Server total" in timings
    assert float(page.text_content("#round-trip td.num")) > 0


def test_upload_matches_api_tiny_model(
    playwright_browser: Any, tiny_server: LiveServer, clear_view_image: Path, artifacts_dir: Path
) -> None:
    """Random weights: whatever the API answers (usually no car), the page says the same."""
    expected = tiny_server.pose(clear_view_image)
    context, page, watch = new_page(playwright_browser, DESKTOP)
    try:
        open_page(page, tiny_server)
        upload_and_wait(page, clear_view_image)
        page.screenshot(path=artifacts_dir / "desktop_tiny_model_result.png", full_page=True)
        assert_page_matches_api(page, expected)
        assert watch.pose_requests == [f"{tiny_server.url}/pose?render=true&render_parts=false"]
        watch.check()
    finally:
        context.close()


def test_upload_matches_api_default_model(
    playwright_browser: Any, default_server: LiveServer, clear_view_image: Path, artifacts_dir: Path
) -> None:
    """The trained model: the page shows the same (meaningful) view as the API for a clear photo."""
    expected = default_server.pose(clear_view_image)
    assert expected["view"] is not None, f"the default model gives no view for {clear_view_image.name}: {expected}"
    context, page, watch = new_page(playwright_browser, DESKTOP)
    try:
        open_page(page, default_server)
        upload_and_wait(page, clear_view_image)
        page.screenshot(path=artifacts_dir / "desktop_default_model_result.png", full_page=True)
        assert_page_matches_api(page, expected)
        watch.check()
    finally:
        context.close()


# An element as on screen: [left, top, right, bottom] in CSS pixels.
RECT = "e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; }"


def overlap(a: list[float], b: list[float]) -> bool:
    """Two on-screen rectangles share more than half a pixel of rounding."""
    return a[0] < b[2] - 0.5 and b[0] < a[2] - 0.5 and a[1] < b[3] - 0.5 and b[1] < a[3] - 0.5


def assert_tags_apart_and_legible(page: Any, count: int, measured: dict[str, Any] | None = None) -> None:
    """`measured`: the tags' and the image's rectangles read in one go (else read here)."""
    if measured is None:
        measured = {
            "tags": page.eval_on_selector_all("#parts-layer .part-tag", f"els => els.map({RECT})"),
            "image": page.eval_on_selector("#rendered", RECT),
        }
    rects, image = measured["tags"], measured["image"]
    assert len(rects) == count
    for i, a in enumerate(rects):
        assert a[3] - a[1] >= 16, a  # 13 px names on screen, whatever the photo's size
        assert a[0] >= image[0] - 0.5 and a[1] >= image[1] - 0.5 and a[2] <= image[2] + 0.5, (a, image)
        for b in rects[i + 1 :]:  # no tag on another
            assert not overlap(a, b), (a, b)


def assert_caption_clear(page: Any) -> None:
    """The image's caption is shown, legible, on the image's top edge (just above it), and no part tag covers any
    of it."""
    assert page.is_visible("#rendered-caption")
    caption = page.eval_on_selector("#rendered-caption", RECT)
    frame = page.eval_on_selector("#annotated-frame", RECT)
    assert abs(caption[0] - frame[0]) <= 0.5 and abs(caption[3] - frame[1]) <= 0.5, (caption, frame)
    assert float(page.eval_on_selector("#rendered-caption", "e => parseFloat(getComputedStyle(e).fontSize)")) >= 13
    tags = page.eval_on_selector_all("#parts-layer .part-tag", f"els => els.map({RECT})")
    for tag in tags:
        assert not overlap(tag, caption), (tag, caption)


def test_parts_layer_toggles_without_a_second_request(
    playwright_browser: Any, default_server: LiveServer, clear_view_image: Path, artifacts_dir: Path
) -> None:
    """The trained model's parts are drawn by the page over an image rendered without them; "Show parts" hides and
    shows them without sending the photo again."""
    expected = default_server.pose(clear_view_image)
    assert expected["parts"], f"the default model finds no part on {clear_view_image.name}"
    context, page, watch = new_page(playwright_browser, DESKTOP)
    try:
        open_page(page, default_server)
        upload_and_wait(page, clear_view_image)
        assert watch.pose_requests == [f"{default_server.url}/pose?render=true&render_parts=false"]
        assert page.is_visible("#parts-toggle") and page.is_checked("#show-parts")
        assert page.is_visible("#parts-layer")
        assert page.get_attribute("#parts-layer", "viewBox") == (
            f"0 0 {expected['image']['width']} {expected['image']['height']}"
        )
        assert page.locator("#parts-layer .part-box").count() == len(expected["parts"])
        names = page.eval_on_selector_all("#parts-layer .part-name", "els => els.map(e => e.textContent)")
        assert names == [part["label"].replace("_", " ") for part in expected["parts"]]
        assert_tags_apart_and_legible(page, len(expected["parts"]))
        assert_caption_clear(page)
        # A box lies where the API says, on the image as shown (its 2 px line around the box's edge).
        first = expected["parts"][0]["box"]
        image = page.eval_on_selector("#rendered", RECT)
        box = page.eval_on_selector("#parts-layer .part-box", RECT)
        scale = (image[2] - image[0]) / expected["image"]["width"]
        assert abs(box[0] - (image[0] + first[0] * scale)) <= 3 and abs(box[1] - (image[1] + first[1] * scale)) <= 3
        page.locator(".annotated").screenshot(path=artifacts_dir / "parts_layer_on.png")

        page.uncheck("#show-parts")
        assert page.is_hidden("#parts-layer")
        assert page.is_visible("#rendered")  # the car box, wheels and wheel line stay
        assert page.is_visible("#rendered-caption")  # and the caption
        page.locator(".annotated").screenshot(path=artifacts_dir / "parts_layer_off.png")
        page.check("#show-parts")
        assert page.is_visible("#parts-layer")
        assert page.locator("#parts-layer .part-box").count() == len(expected["parts"])
        assert len(watch.pose_requests) == 1  # toggling never sends the photo again

        # A narrower window places the tags again, still apart and 13 px (a scaled tag would shrink with the image).
        wide = page.eval_on_selector("#annotated-frame", "e => e.clientWidth")
        page.set_viewport_size({"width": 900, "height": 900})
        # The resize redraws the layer while the page settles (once per size its observer reports): the tags are
        # read in the same step that sees them all laid out at the new width.
        settled = page.wait_for_function(
            f"""w => {{
                const rect = {RECT};
                const tags = [...document.querySelectorAll('#parts-layer .part-tag')].map(rect);
                const narrower = document.getElementById('annotated-frame').clientWidth < w * 0.9;
                const laidOut = tags.length > 0 && tags.every(t => t[3] - t[1] >= 16);
                return narrower && laidOut && {{ tags, image: rect(document.getElementById('rendered')) }};
            }}""",
            arg=wide,
        )
        assert_tags_apart_and_legible(page, len(expected["parts"]), settled.json_value())
        assert_caption_clear(page)
        watch.check()
    finally:
        context.close()


def test_errors_are_explained(playwright_browser: Any, tiny_server: LiveServer, artifacts_dir: Path) -> None:
    context, page, watch = new_page(playwright_browser, DESKTOP)
    try:
        open_page(page, tiny_server)

        # A text file: the API sniffs the bytes and answers 415.
        upload_and_wait(page, {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a photo\n"})
        assert page.get_attribute("#status", "data-code") == "unsupported_media_type"
        assert "not a photo the service can read" in page.text_content("#status")
        assert page.is_hidden("#result")
        page.screenshot(path=artifacts_dir / "desktop_error_not_an_image.png", full_page=True)
        assert len(watch.pose_requests) == 1

        # Too large: refused in the page, never sent.
        big = {"name": "huge.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8\xff" + bytes(TEST_MAX_UPLOAD_BYTES)}
        page.set_input_files("#file", big)
        assert page.get_attribute("#status", "data-code") == "client_too_large"
        page.click("#send")
        assert page.get_attribute("#status", "data-code") == "client_too_large"
        assert "too large" in page.text_content("#status")
        assert "2 MB" in page.text_content("#status")  # the server's limit, passed into the page by GET /
        assert len(watch.pose_requests) == 1

        # Statuses the tiny model cannot produce on demand, answered by the browser's request interception.
        page.set_input_files("#file", {"name": "car.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8\xff\xe0"})
        cases = [
            (413, "upload_too_large", "too large for the service"),
            (503, "model_loading", "still loading"),
            (502, "upstream_error", "not reachable right now"),
            (504, "upstream_timeout", "not reachable right now"),
            (404, "backend_disabled", "not enabled on this server"),
            (503, "overloaded", "busy right now"),
        ]
        for status, code, phrase in cases:
            message = f"server message for {code} {XSS}"
            page.route("**/pose?*", answer(status, {"error": {"code": code, "message": message}}))
            page.click("#send")
            page.wait_for_selector(f"#status[data-code='{code}']")
            text = page.text_content("#status")
            assert phrase in text, (code, text)
            assert message in text  # the service's own words, shown as text
            page.unroute("**/pose?*")
        page.screenshot(path=artifacts_dir / "desktop_error_backend_unavailable.png", full_page=True)
        assert page.locator("#injected").count() == 0
        assert page.evaluate("window.__pwned") is None
        watch.check()
    finally:
        context.close()


def rich_response(rendered_image: str) -> dict[str, Any]:
    """A full pose (the tiny model finds none) with hostile strings where the API could echo text."""
    return {
        "view": "front_left",
        "coarse_view": "front",
        "azimuth_deg": 41.0,
        "tilt_deg": -1.5,
        "roll_deg": 1.2,
        "confidence": 0.99,
        "reason": None,
        "cars_detected": 1,
        "car": {"box": [10, 10, 300, 200], "score": 0.98},
        "wheels": [{"box": [20, 150, 60, 200], "center": [40, 175], "score": 0.97}],
        "parts": [
            {"label": "front_bumper", "box": [1, 2, 3, 4], "score": 0.95},
            {"label": "front_left_light", "box": [1, 2, 3, 4], "score": 0.91},
            {"label": "hood", "box": [1, 2, 3, 4], "score": 0.88},
            {
                "label": "front_left_door_with_a_very_long_label_that_must_wrap_" + "x" * 40,
                "box": [1, 2, 3, 4],
                "score": 0.77,
            },
            {"label": XSS, "box": [1, 2, 3, 4], "score": 0.5},
        ],
        "image": {"width": 640, "height": 480},
        "backend": "detectron2",
        "model": {"name": "carparts_mnv2_fpn", "version": XSS},
        "timings_ms": {"decode": 4.1, "inference": 310.2, "postprocess": 0.4, "render": 12.0, "total": 327.0},
        "rendered_image": rendered_image,
    }


def test_full_result_dial_and_escaping(
    playwright_browser: Any, tiny_server: LiveServer, clear_view_image: Path, artifacts_dir: Path
) -> None:
    """A full pose drawn on the dial; API strings land as text, never as markup."""
    rendered = tiny_server.pose(clear_view_image, render=True, render_parts=False)["rendered_image"]
    context, page, watch = new_page(playwright_browser, DESKTOP)
    try:
        open_page(page, tiny_server)
        page.route("**/pose?*", answer(200, rich_response(rendered)))
        upload_and_wait(page, clear_view_image)
        assert page.get_attribute("#view", "data-view") == "front_left"
        assert page.text_content("#view") == "Front and left side"
        assert page.get_attribute("#dial-car", "transform") == "rotate(41.0)"
        assert "toward the camera and the image's left" in page.text_content("#dial-caption")
        assert page.text_content("#tilt").startswith("-1.5°")
        # The wheel line's slope is perspective, not a crooked photo (issue 21).
        assert "wheel-line slope" in page.text_content("#tilt") and "lower" not in page.text_content("#tilt")
        # A small measured roll on a photo the API calls level reads as level, not as a crooked photo.
        assert page.text_content("#roll") == "level (+1.2°)"
        assert page.get_attribute("#roll", "data-level") == "true"
        assert page.get_attribute("#view", "data-unsure") == "false"
        assert page.locator("#parts tbody tr").count() == 5
        assert page.text_content("#parts tbody tr:first-child td") == "front bumper"
        assert XSS.replace("_", " ") in page.text_content("#parts tbody")  # labels in words, as text
        assert XSS in page.text_content("#backend-used")
        assert page.locator("#injected").count() == 0
        assert page.evaluate("window.__pwned") is None
        assert page.is_hidden("#reason")
        # Five parts at one corner: five tags apart, names as text (cut when long), never markup.
        assert_tags_apart_and_legible(page, 5)
        names = page.eval_on_selector_all("#parts-layer .part-name", "els => els.map(e => e.textContent)")
        assert names[:3] == ["front bumper", "front left light", "hood"]
        assert names[3].endswith("…") and len(names[3]) == 32
        assert names[4] == XSS.replace("_", " ")[:31] + "…"
        assert page.text_content("#rendered-caption") == "view front_left, yaw 41 deg, wheel line -1.5 deg"
        assert_caption_clear(page)
        page.screenshot(path=artifacts_dir / "desktop_full_result.png", full_page=True)
        page.locator(".dial-figure").screenshot(path=artifacts_dir / "dial_yaw_41.png")

        # Yaw 90: the car's left side faces the camera, nose toward the image's left. Its parts start at the
        # image's top left corner, where render.py's caption strip was: their tags stay off the caption.
        corner_parts = [
            {"label": "hood", "box": [0, 0, 320, 160], "score": 0.9},
            {"label": "windshield", "box": [0, 0, 200, 90], "score": 0.8},
            {"label": "front_left_door", "box": [2, 1, 120, 300], "score": 0.7},
        ]
        body = rich_response(rendered) | {
            "view": "left",
            "coarse_view": "side",
            "azimuth_deg": 90.0,
            "tilt_deg": 3.04,
            "parts": corner_parts,
        }
        page.unroute("**/pose?*")
        page.route("**/pose?*", answer(200, body))
        page.uncheck("#show-parts")  # the choice holds for the next result
        page.click("#send")
        page.wait_for_selector("#view[data-view='left']")
        assert page.is_hidden("#parts-layer") and not page.is_checked("#show-parts")
        assert page.text_content("#rendered-caption") == "view left, yaw 90 deg, wheel line +3.0 deg"
        assert page.is_visible("#rendered-caption")  # the caption is not part of the layer "Show parts" hides
        page.check("#show-parts")
        assert page.is_visible("#parts-layer")
        assert_tags_apart_and_legible(page, len(corner_parts))
        assert_caption_clear(page)
        page.locator(".annotated").screenshot(path=artifacts_dir / "parts_at_the_corner.png")
        assert page.get_attribute("#dial-car", "transform") == "rotate(90.0)"
        assert "to the image's left" in page.text_content("#dial-caption")
        # The car's nose arrow really ends up left of the dial centre after the rotation.
        centre_x = "e => { const r = e.getBoundingClientRect(); return r.x + r.width / 2; }"
        nose = page.eval_on_selector(".car-nose", centre_x)
        dial = page.eval_on_selector("#dial", centre_x)
        assert nose < dial - 20
        page.locator(".dial-figure").screenshot(path=artifacts_dir / "dial_yaw_90.png")
        watch.check()
    finally:
        context.close()


def test_rekognition_option_hidden_when_disabled(playwright_browser: Any, tiny_server: LiveServer) -> None:
    listed = httpx.get(f"{tiny_server.url}/backends", timeout=10.0)
    context, page, watch = new_page(playwright_browser, DESKTOP)
    try:
        open_page(page, tiny_server)
        assert backend_options(page) == ["detectron2"]
        assert page.get_attribute("#backend option", "data-route") == "/pose"
        if listed.status_code == 200:
            assert {b["name"]: b["enabled"] for b in listed.json()["backends"]}.get("rekognition") is False
        else:
            assert listed.status_code == 404  # a server without GET /backends: Detectron2 only

        # The page follows GET /backends: an enabled Rekognition appears with its route.
        page.route(
            "**/backends",
            answer(
                200,
                {
                    "backends": [
                        {"name": "detectron2", "enabled": True, "route": "/pose"},
                        {"name": "rekognition", "enabled": True, "route": "/pose/rekognition"},
                        {"name": "evil", "enabled": True, "route": "https://example.invalid/steal"},
                    ]
                },
            ),
        )
        page.reload()
        page.wait_for_selector("body[data-backends-loaded='true']", state="attached")
        assert backend_options(page) == ["detectron2", "rekognition"]  # never a route off this server
        watch.check()
    finally:
        context.close()


def test_rekognition_option_shown_when_enabled(
    playwright_browser: Any, rekognition_server: LiveServer, artifacts_dir: Path
) -> None:
    listed = httpx.get(f"{rekognition_server.url}/backends", timeout=10.0)
    if listed.status_code == 404:
        pytest.skip("GET /backends is not in the service yet (service/api/routers/backends.py)")
    enabled = {b["name"]: b for b in listed.json()["backends"] if b["enabled"]}
    routes = {name: b["route"] for name, b in enabled.items()}
    assert "rekognition" in routes, listed.text
    context, page, watch = new_page(playwright_browser, DESKTOP)
    try:
        open_page(page, rekognition_server)
        assert backend_options(page) == ["detectron2", "rekognition"]
        page.select_option("#backend", "rekognition")
        assert page.get_attribute("#backend option[value='rekognition']", "data-route") == routes["rekognition"]
        if enabled["rekognition"].get("hint"):  # e.g. "DetectLabels finds only the car and its wheels..."
            assert page.text_content("#backend-hint") == enabled["rekognition"]["hint"]
            assert page.is_visible("#backend-hint")
        page.screenshot(path=artifacts_dir / "desktop_rekognition_enabled.png")
        watch.check()
    finally:
        context.close()


def test_phone_width_has_no_horizontal_overflow(
    playwright_browser: Any, tiny_server: LiveServer, clear_view_image: Path, artifacts_dir: Path
) -> None:
    context, page, watch = new_page(playwright_browser, PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    overflow = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    try:
        open_page(page, tiny_server)
        assert page.evaluate("window.innerWidth") == PHONE["width"]
        assert page.evaluate(overflow) <= 0
        assert page.is_visible("#camera")  # the camera picker shows on touch devices
        assert page.get_attribute("#camera", "capture") == "environment"
        page.screenshot(path=artifacts_dir / "phone_start.png", full_page=True)

        upload_and_wait(page, clear_view_image)  # the real tiny-model result
        assert page.evaluate(overflow) <= 0

        rendered = page.get_attribute("#rendered", "src")
        body = copy.deepcopy(rich_response(rendered))
        page.route("**/pose?*", answer(200, body))
        page.click("#send")
        page.wait_for_selector("#view[data-view='front_left']")
        assert page.evaluate(overflow) <= 0
        # Every block fits the 390 px viewport.
        widest = page.evaluate(
            "() => Math.max(...[...document.querySelectorAll('body *')].map(e => e.getBoundingClientRect().right))"
        )
        assert widest <= PHONE["width"] + 0.5
        page.screenshot(path=artifacts_dir / "phone_full_result.png", full_page=True)
        watch.check()
    finally:
        context.close()


def test_keyboard_reaches_file_input_and_send(
    playwright_browser: Any, tiny_server: LiveServer, clear_view_image: Path, artifacts_dir: Path
) -> None:
    context, page, watch = new_page(playwright_browser, DESKTOP)
    try:
        open_page(page, tiny_server)
        order: list[str] = []
        for _ in range(12):
            page.keyboard.press("Tab")
            order.append(page.evaluate("document.activeElement.id || document.activeElement.tagName"))
            if order[-1] == "send":
                break
        assert "file" in order and "send" in order, order
        assert order.index("file") < order.index("backend") < order.index("send"), order
        # The focus is visible.
        outline = page.eval_on_selector("#send", "b => getComputedStyle(b).outlineStyle")
        assert outline not in ("none", ""), outline
        page.screenshot(path=artifacts_dir / "desktop_keyboard_focus.png")

        # Enter on the focused button sends (the file itself is chosen through the OS dialog).
        page.set_input_files("#file", clear_view_image)
        page.focus("#send")
        page.keyboard.press("Enter")
        page.wait_for_selector("#result:not([hidden]), #status[data-state='error']", state="visible", timeout=120_000)
        assert page.is_visible("#result")
        assert page.get_attribute("#status", "aria-live") == "polite"
        watch.check()
    finally:
        context.close()


def test_low_confidence_and_verdicts_in_words(
    playwright_browser: Any, tiny_server: LiveServer, clear_view_image: Path, artifacts_dir: Path
) -> None:
    """A doubtful view is marked "not sure"; a close-up, another car and the exposure's direction are said in words;
    sharpness is words, not a bare number."""
    rendered = tiny_server.pose(clear_view_image, render=True, render_parts=False)["rendered_image"]
    quality = {
        "ok": False,
        "in_frame": True,
        "cut_sides": [],
        "car_fraction": 0.4,
        "large_enough": True,
        "sharpness": 812.4,
        "sharp": True,
        "brightness": 0.84,
        "clipped_fraction": 0.6,
        "exposure_ok": False,
        "exposure": "too_bright",
        "whole_car": False,
        "other_cars": 1,
        "level": False,
    }
    body = rich_response(rendered) | {
        "confidence": 0.585,
        "view": "back_left",
        "azimuth_deg": 359.8,
        "quality": quality,
        "roll_deg": -9.4,
    }
    context, page, watch = new_page(playwright_browser, DESKTOP)
    try:
        open_page(page, tiny_server)
        page.route("**/pose?*", answer(200, body))
        upload_and_wait(page, clear_view_image)
        assert page.get_attribute("#view", "data-unsure") == "true"
        assert "not sure: retake or check" in page.text_content("#view")
        assert "not sure" in page.text_content("#confidence")
        checks = {
            key: page.text_content(f'#quality li[data-check="{key}"]')
            for key in ("sharp", "exposure_ok", "whole_car", "other_cars")
        }
        assert "812" not in checks["sharp"] and "Sharp" in checks["sharp"]
        assert "too bright" in checks["exposure_ok"] and "too dark" not in checks["exposure_ok"]
        assert "close-up" in checks["whole_car"]
        assert page.get_attribute('#quality li[data-check="whole_car"]', "data-ok") == "false"
        assert "Another car" in checks["other_cars"]
        # Beyond POSE_QUALITY_MAX_ROLL_DEG (quality.level false) the roll is said with the way to turn the phone.
        assert page.text_content("#roll") == "turned 9° counter-clockwise: hold the phone level"
        assert page.get_attribute("#roll", "data-level") == "false"
        # The caption above the image rounds the yaw as render.py does: 359.8 is yaw 0, never 360; so do the
        # Yaw line and the dial's description.
        assert page.text_content("#rendered-caption") == "view back_left, yaw 0 deg, wheel line -1.5 deg"
        assert page.text_content("#azimuth") == "0°"
        assert "Yaw 0°:" in (page.text_content("#dial-desc") or "")
        page.screenshot(path=artifacts_dir / "desktop_not_sure.png", full_page=True)
        watch.check()
    finally:
        context.close()


def test_one_label_per_file_picker(playwright_browser: Any, tiny_server: LiveServer, clear_view_image: Path) -> None:
    """The label is the picker: the browser's own file button is not shown beside it, and the label still
    opens the input (keyboard focus reaches it, a chosen file is taken)."""
    context, page, watch = new_page(playwright_browser, DESKTOP)
    try:
        open_page(page, tiny_server)
        box = page.eval_on_selector(
            "#file", "e => { const r = e.getBoundingClientRect(); return [r.width, r.height]; }"
        )
        assert box[0] <= 1 and box[1] <= 1, box
        assert page.eval_on_selector("#file", "e => getComputedStyle(e).opacity") == "0"
        assert page.is_visible("label[for='file']")
        with page.expect_file_chooser() as chooser:
            page.click("label[for='file']")
        chooser.value.set_files(str(clear_view_image))
        page.wait_for_selector("#chosen:not([hidden])")
        page.focus("#file")
        outline = page.eval_on_selector("label[for='file']", "l => getComputedStyle(l).outlineStyle")
        assert outline not in ("none", ""), outline
        watch.check()
    finally:
        context.close()
