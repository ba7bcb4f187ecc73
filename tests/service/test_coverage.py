"""POST /coverage: a set of photos -> each photo's pose and quality, covered / missing / duplicate views.

Real inference with the embedded default model on turntable photos (skips without either); limits and
admission with the tiny model.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageFilter

from service.backends.registry import spec_named
from service.postprocess.vocabulary import VIEWS
from tests.service.helpers import CLEAR_PHOTO, assert_error, running_client, tiny_settings
from tests.service.images import jpeg_bytes


def blurred(data: bytes) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(data)).filter(ImageFilter.GaussianBlur(6)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def answer(photo_client: TestClient) -> dict:
    clear = CLEAR_PHOTO.read_bytes()
    files = [
        ("images", ("clear.jpg", clear, "image/jpeg")),
        ("images", ("blurred.jpg", blurred(clear), "image/jpeg")),
        ("images", ("notes.txt", b"not a photo", "text/plain")),
        ("images", ("again.jpg", clear, "image/jpeg")),
    ]
    response = photo_client.post("/coverage", files=files)
    assert response.status_code == 200, response.text
    return response.json()


def test_each_photo_in_upload_order_with_its_name(answer: dict, photo_client: TestClient) -> None:
    photos = answer["photos"]
    assert [p["index"] for p in photos] == [0, 1, 2, 3]
    assert [p["filename"] for p in photos] == ["clear.jpg", "blurred.jpg", "notes.txt", "again.jpg"]
    single = photo_client.post(
        "/pose", files={"image": (CLEAR_PHOTO.name, CLEAR_PHOTO.read_bytes(), "image/jpeg")}
    ).json()
    for key in ("view", "azimuth_deg", "car", "quality"):
        assert photos[0]["pose"][key] == single[key], key  # the same answer as POST /pose


def test_one_bad_photo_gets_its_error_and_the_set_goes_on(answer: dict) -> None:
    bad = answer["photos"][2]
    assert bad["pose"] is None and bad["error"]["code"] == "unsupported_media_type"
    assert bad["usable"] is False and bad["problems"] == ["error"]


def test_unusable_photos_say_why(answer: dict) -> None:
    soft = answer["photos"][1]
    assert soft["usable"] is False and "blurred" in soft["problems"]
    assert soft["pose"]["quality"]["sharp"] is False


def test_covered_missing_duplicates_complete(answer: dict) -> None:
    view = answer["photos"][0]["pose"]["view"]
    assert view is not None and answer["photos"][0]["usable"] is True
    assert answer["required"] == list(VIEWS)
    assert answer["covered"] == {view: [0, 3]}
    assert answer["duplicates"] == {view: [0, 3]}
    assert answer["missing"] == [v for v in VIEWS if v != view]
    assert answer["complete"] is False


def test_required_views_decide_completeness(photo_client: TestClient, answer: dict) -> None:
    view = answer["photos"][0]["pose"]["view"]
    files = [("images", ("clear.jpg", CLEAR_PHOTO.read_bytes(), "image/jpeg"))]
    done = photo_client.post("/coverage", params={"required": view}, files=files).json()
    assert done["complete"] is True and done["missing"] == [] and done["required"] == [view]
    floor = photo_client.post("/coverage", params={"required": view, "min_confidence": "1"}, files=files).json()
    assert floor["complete"] is False and floor["photos"][0]["problems"] == ["no_view"]
    assert_error(
        photo_client.post("/coverage", params={"required": "front,roof"}, files=files), 422, "validation_error"
    )


def test_no_photos_is_a_validation_error(photo_client: TestClient) -> None:
    assert_error(
        photo_client.post("/coverage", files={"image": ("a.jpg", b"x", "image/jpeg")}), 422, "validation_error"
    )


@pytest.fixture(scope="module")
def small(tiny_model_dir: Path) -> Iterator[TestClient]:
    settings = tiny_settings(
        tiny_model_dir, coverage_max_images=3, coverage_max_total_bytes=200_000, max_queue=0, refusal_delay_s=0
    )
    with running_client(settings) as c:
        yield c


def test_too_many_photos_is_a_413(small: TestClient) -> None:
    photo = jpeg_bytes(64, 64)
    files = [("images", (f"{i}.jpg", photo, "image/jpeg")) for i in range(4)]
    assert_error(small.post("/coverage", files=files), 413, "too_many_images")
    files = [("images", (f"{i}.jpg", photo, "image/jpeg")) for i in range(40)]
    assert_error(small.post("/coverage", files=files), 413, "too_many_images")
    assert small.post("/coverage", files=files[:3]).status_code == 200


def test_the_total_bytes_limit_is_a_413(small: TestClient) -> None:
    noise = np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "PNG")  # about 270 kB, over the set's 200 kB
    files = [("images", ("noise.png", buffer.getvalue(), "image/png"))]
    assert_error(small.post("/coverage", files=files), 413, "upload_too_large")


def test_a_set_is_admitted_like_a_single_request(small: TestClient) -> None:
    gate = small.app.state.serving.gates[spec_named("detectron2").name]
    gate.admit()  # the only place (one worker, no queue) is taken
    try:
        files = [("images", ("a.jpg", jpeg_bytes(64, 64), "image/jpeg"))]
        assert_error(small.post("/coverage", files=files), 503, "overloaded")
    finally:
        gate.release()
    assert small.post("/coverage", files=files).status_code == 200


def test_openapi_documents_the_route(small: TestClient) -> None:
    post = small.get("/openapi.json").json()["paths"]["/coverage"]["post"]
    body = post["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["required"] == ["images"] and body["properties"]["images"]["type"] == "array"
    assert "413" in post["responses"] and "too_many_images" in post["responses"]["413"]["description"]
    pose = small.get("/openapi.json").json()["paths"]["/pose"]["post"]
    assert "too_many_images" not in pose["responses"]["413"]["description"]
