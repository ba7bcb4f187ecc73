"""Inputs people send: HEIC/HEIF and AVIF photos, and the JSON body {"image": "<base64 or data URL>"}.

Real inference: the embedded default model on a turntable photo (the same view from every encoding), the tiny
model for the limits and errors. `data/bomb_8000x6000.heic` is a real 11 kB HEIC of 48 MP (made with
pillow-heif from a flat 8000x6000 image, quality 10), over the default 40 MP limit.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.imaging import decode_upload, sniff_format
from service.settings import Settings
from tests.service.helpers import CLEAR_PHOTO, assert_error, running_client
from tests.service.images import jpeg_bytes

BOMB = Path(__file__).parent / "data" / "bomb_8000x6000.heic"


def encoded(data: bytes, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buffer, fmt, **options)
    return buffer.getvalue()


def test_heif_and_avif_are_sniffed_from_their_brands() -> None:
    small = jpeg_bytes(64, 48)
    assert sniff_format(encoded(small, "HEIF")) == "HEIF"
    assert sniff_format(encoded(small, "AVIF")) == "AVIF"
    assert sniff_format(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom") is None  # an MP4 video is not a photo


def test_a_heic_with_exif_orientation_is_turned_upright_once() -> None:
    """iPhone photos carry their rotation: pillow-heif applies it and drops the tag, so it is not applied twice."""
    image = Image.new("RGB", (300, 200), (200, 50, 50))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    buffer = io.BytesIO()
    image.save(buffer, "HEIF", exif=exif.tobytes())
    decoded = decode_upload(buffer.getvalue(), 10_000_000, 40_000_000)
    assert decoded.format == "HEIF"
    assert (decoded.width, decoded.height) == (200, 300) == decoded.reported_size


def test_a_heic_bomb_is_refused_from_its_header() -> None:
    data = BOMB.read_bytes()
    assert len(data) < 20_000
    with pytest.raises(Exception) as caught:
        decode_upload(data, 10_000_000, 40_000_000)
    assert getattr(caught.value, "code", None) == "image_too_large", caught.value


@pytest.fixture(scope="module")
def jpeg_answer(photo_client: TestClient) -> dict:
    response = photo_client.post("/pose", files={"image": (CLEAR_PHOTO.name, CLEAR_PHOTO.read_bytes(), "image/jpeg")})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_heic_and_avif_photos_get_the_jpegs_pose(photo_client: TestClient, jpeg_answer: dict, fmt: str) -> None:
    data = encoded(CLEAR_PHOTO.read_bytes(), fmt, quality=90)
    response = photo_client.post("/pose", files={"image": (f"car.{fmt.lower()}", data, "application/octet-stream")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["view"] == jpeg_answer["view"] is not None
    assert body["image"] == jpeg_answer["image"]
    assert body["quality"]["ok"] == jpeg_answer["quality"]["ok"]


def test_the_heic_bomb_over_http_is_a_413(photo_client: TestClient) -> None:
    assert_error(
        photo_client.post("/pose", files={"image": ("bomb.heic", BOMB.read_bytes(), "image/heic")}),
        413,
        "image_too_large",
    )


@pytest.mark.parametrize("prefix", ["", "data:image/jpeg;base64,"])
def test_json_base64_body_gets_the_multipart_answer(photo_client: TestClient, jpeg_answer: dict, prefix: str) -> None:
    payload = prefix + base64.b64encode(CLEAR_PHOTO.read_bytes()).decode()
    response = photo_client.post("/pose", json={"image": payload})
    assert response.status_code == 200, response.text
    body = response.json()
    for key in ("view", "azimuth_deg", "car", "image", "quality"):
        assert body[key] == jpeg_answer[key], key


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b'{"image": "not base64 at all!"}', 400, "invalid_image"),
        (b'{"image": "aGVsbG8gd29ybGQ="}', 415, "unsupported_media_type"),  # valid base64 of text, not a photo
        (b'{"image": ""}', 400, "invalid_image"),
        (b'{"image": 12}', 422, "validation_error"),
        (b'{"photo": "aGVsbG8="}', 422, "validation_error"),
        (b'["image"]', 422, "validation_error"),
        (b'{"image": "aGVsbG8=', 400, "invalid_request"),
        (b"\xff\xfe not json", 400, "invalid_request"),
    ],
)
def test_bad_json_bodies_get_documented_errors(photo_client: TestClient, body: bytes, status: int, code: str) -> None:
    assert_error(photo_client.post("/pose", content=body, headers={"content-type": "application/json"}), status, code)


def test_multipart_without_the_image_field_is_still_a_422(photo_client: TestClient) -> None:
    assert_error(photo_client.post("/pose", files={"photo": ("car.jpg", b"x", "image/jpeg")}), 422, "validation_error")


def test_json_bodies_have_the_upload_limit(tiny_model_dir: Path) -> None:
    """A base64 image is held to POSE_MAX_UPLOAD_BYTES of image, not of base64: 4/3 of it is allowed in JSON."""
    data = jpeg_bytes(320, 240)
    limit = len(data) + 10
    with running_client(Settings(model_dir=tiny_model_dir, device="cpu", max_upload_bytes=limit)) as small:
        fits = small.post("/pose", json={"image": base64.b64encode(data).decode()})
        assert fits.status_code == 200, fits.text  # its JSON body is a third larger than the limit
        too_large = base64.b64encode(data + b"\0" * 200).decode()
        assert_error(small.post("/pose", json={"image": too_large}), 413, "upload_too_large")
        huge = base64.b64encode(b"\0" * (limit * 2)).decode()
        assert_error(small.post("/pose", json={"image": huge}), 413, "upload_too_large")  # the body limit


def test_openapi_declares_both_bodies(photo_client: TestClient) -> None:
    content = photo_client.get("/openapi.json").json()["paths"]["/pose"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(content)
    assert content["application/json"]["schema"]["required"] == ["image"]
