"""POST /pose through the FastAPI TestClient with real Detectron2 inference (the tiny random-weights model)."""

from __future__ import annotations

import base64
import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.postprocess import COARSE_VIEWS, REASON_LOW_CONFIDENCE, REASONS, VIEWS
from tests.service.helpers import RESPONSE_FIELDS
from tests.service.images import car_like_array, exif_rotated_jpeg, jpeg_bytes, png_bytes, webp_bytes


def post_image(client: TestClient, data: bytes, filename: str, content_type: str, **params: str):
    return client.post("/pose", files={"image": (filename, data, content_type)}, params=params)


def check_pose_body(body: dict, width: int, height: int) -> None:
    assert set(body) >= RESPONSE_FIELDS, RESPONSE_FIELDS - set(body)
    assert body["backend"] == "detectron2"
    assert body["model"] == {"name": "tiny_test_model", "version": body["model"]["version"]}
    assert body["model"]["version"]
    assert body["image"] == {"width": width, "height": height}
    assert body["view"] in (*VIEWS, None)
    assert body["coarse_view"] in (*COARSE_VIEWS, None)
    assert body["reason"] in (*REASONS, None)
    if body["reason"] != REASON_LOW_CONFIDENCE:  # low_confidence keeps the azimuth as the best guess
        assert (body["view"] is None) == (body["azimuth_deg"] is None)
    if body["azimuth_deg"] is not None:
        assert 0 <= body["azimuth_deg"] < 360
    assert 0 <= body["confidence"] <= 1
    assert isinstance(body["cars_detected"], int) and body["cars_detected"] >= 0
    assert isinstance(body["wheels"], list) and isinstance(body["parts"], list)
    for stage in ("decode", "inference", "postprocess", "total"):
        assert body["timings_ms"][stage] >= 0, body["timings_ms"]
    assert body["timings_ms"]["total"] >= body["timings_ms"]["inference"]
    assert body["timings_ms"]["inference"] > 0  # a real model ran


@pytest.mark.parametrize(
    ("make", "filename", "content_type"),
    [
        (jpeg_bytes, "car.jpg", "image/jpeg"),
        (png_bytes, "car.png", "image/png"),
        (webp_bytes, "car.webp", "image/webp"),
    ],
    ids=["jpeg", "png", "webp"],
)
def test_pose_accepts_jpeg_png_webp(client: TestClient, make, filename: str, content_type: str) -> None:
    response = post_image(client, make(320, 240), filename, content_type)
    assert response.status_code == 200, response.text
    body = response.json()
    check_pose_body(body, 320, 240)
    assert body["rendered_image"] is None


def test_type_comes_from_the_bytes_not_the_client(client: TestClient) -> None:
    response = post_image(client, png_bytes(160, 120), "photo.jpg", "application/octet-stream")
    assert response.status_code == 200, response.text
    assert response.json()["image"] == {"width": 160, "height": 120}


def test_exif_orientation_is_applied_before_inference(client: TestClient) -> None:
    data = exif_rotated_jpeg(300, 200, orientation=6)
    assert Image.open(io.BytesIO(data)).size == (300, 200)  # stored landscape
    response = post_image(client, data, "phone.jpg", "image/jpeg")
    assert response.status_code == 200, response.text
    assert response.json()["image"] == {"width": 200, "height": 300}  # served upright: portrait


def test_render_adds_a_jpeg_data_url_of_the_image(client: TestClient) -> None:
    response = post_image(client, jpeg_bytes(400, 250), "car.jpg", "image/jpeg", render="true")
    assert response.status_code == 200, response.text
    body = response.json()
    check_pose_body(body, 400, 250)
    assert body["timings_ms"]["render"] >= 0
    prefix = "data:image/jpeg;base64,"
    assert body["rendered_image"].startswith(prefix)
    jpeg = base64.b64decode(body["rendered_image"][len(prefix) :], validate=True)
    assert jpeg[:3] == b"\xff\xd8\xff"
    rendered = Image.open(io.BytesIO(jpeg))
    assert rendered.format == "JPEG"
    rendered.load()
    width, height = rendered.size
    assert abs(width / height - 400 / 250) < 0.01


def test_render_false_is_the_default(client: TestClient) -> None:
    response = post_image(client, jpeg_bytes(), "car.jpg", "image/jpeg")  # no `render` parameter at all
    assert response.status_code == 200
    assert response.json()["rendered_image"] is None
    assert "render" not in response.json()["timings_ms"]


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("L", "JPEG"), ("CMYK", "JPEG"), ("I;16", "PNG"), ("1", "PNG"), ("P", "PNG"), ("LA", "PNG"), ("RGBA", "WEBP")],
)
def test_unusual_pixel_formats_are_served_as_rgb(client: TestClient, mode: str, fmt: str) -> None:
    image = Image.fromarray(car_like_array(96, 64)).convert("L" if mode == "I;16" else mode)
    if mode == "I;16":
        image = image.convert("I;16")
    buf = io.BytesIO()
    image.save(buf, fmt)
    response = post_image(client, buf.getvalue(), f"odd.{fmt.lower()}", "application/octet-stream")
    assert response.status_code == 200, response.text
    assert response.json()["image"] == {"width": 96, "height": 64}
