"""The rendered image: its caption states the pose as the API does; its parts, and with them the caption, can be
left out."""

from __future__ import annotations

import base64
import io
from dataclasses import replace

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.postprocess import Detection, PoseEstimate
from service.render import CAR_COLOR, PART_COLOR, caption, place_labels, render_pose
from tests.service.helpers import CLEAR_PHOTO


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


def test_part_labels_never_overlap() -> None:
    # Eight labels anchored at the same corner (stacked parts): each tag gets its own place on the canvas.
    rects = place_labels([(100, 50)] * 8, [(120, 20)] * 8, (640, 480))
    assert all(r[0] >= 0 and r[1] >= 0 and r[2] <= 640 and r[3] <= 480 for r in rects)
    for i, a in enumerate(rects):
        for b in rects[i + 1 :]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)
    # A label at the image's right edge is pulled inside it.
    assert place_labels([(630, 100)], [(120, 20)], (640, 480))[0][2] == 640


def test_render_draws_labelled_parts_after_the_boxes() -> None:
    rgb = np.full((300, 400, 3), 90, np.uint8)
    parts = [
        Detection("front_bumper", (50.0, 150.0, 350.0, 250.0), 0.9),
        Detection("hood", (52.0, 60.0, 340.0, 152.0), 0.9),
    ]
    drawn = render_pose(rgb, replace(pose(30.0), parts=parts))
    assert drawn.shape == rgb.shape
    # The tags are filled in the part colour (the boxes alone are 1-2 px lines).
    assert int(np.all(drawn == PART_COLOR, axis=2).sum()) > 500
    assert caption_strip(drawn)


def caption_strip(rgb: np.ndarray) -> bool:
    """The caption's black strip at the top left: its first rows, above the words, are black (JPEG leaves them
    near black) on the 60 px a caption is always wider than."""
    return bool((rgb[:5, :60].astype(int).max(axis=2) < 40).all())


def test_render_without_parts_keeps_the_rest() -> None:
    rgb = np.full((300, 400, 3), 90, np.uint8)
    parts = [Detection("hood", (52.0, 60.0, 340.0, 152.0), 0.9)]
    car = Detection("car", (40.0, 50.0, 360.0, 280.0), 0.98)
    drawn = render_pose(rgb, replace(pose(30.0), parts=parts, car=car), parts=False)
    assert not np.any(np.all(drawn == PART_COLOR, axis=2))  # no box, no tag
    assert int(np.all(drawn == CAR_COLOR, axis=2).sum()) > 500  # the car box is still drawn
    # No caption either: the top left, clear of the car box, is the photo's own grey.
    assert (drawn[:45, :300] == 90).all()


def decoded(data_url: str) -> np.ndarray:
    jpeg = base64.b64decode(data_url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))


def pink_pixels(data_url: str) -> int:
    """Pixels of the decoded JPEG near PART_COLOR (JPEG moves colours a little)."""
    rgb = decoded(data_url).astype(int)
    return int((np.abs(rgb - np.array(PART_COLOR)).max(axis=2) < 40).sum())


def test_render_parts_false_leaves_the_parts_out_of_the_image_only(photo_client: TestClient) -> None:
    """The upload page's request: the parts stay in the answer, drawn by the page, not in the image; nor does the
    caption (the page writes it, out of its tags' way)."""
    answers = {}
    for flag in ("true", "false"):
        response = photo_client.post(
            "/pose",
            params={"render": "true", "render_parts": flag},
            files={"image": (CLEAR_PHOTO.name, CLEAR_PHOTO.read_bytes(), "image/jpeg")},
        )
        assert response.status_code == 200, response.text
        answers[flag] = response.json()
    assert answers["true"]["parts"], "the default model finds no part on the clear photo"
    assert answers["false"]["parts"] == answers["true"]["parts"]
    assert pink_pixels(answers["true"]["rendered_image"]) > 1000
    assert pink_pixels(answers["false"]["rendered_image"]) < 50
    assert caption_strip(decoded(answers["true"]["rendered_image"]))
    assert not caption_strip(decoded(answers["false"]["rendered_image"]))  # the photo's top left is light
