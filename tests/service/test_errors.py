"""Bad uploads: every one answers a 4xx in the one error shape, never a 500."""

from __future__ import annotations

import io
import time

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.service.helpers import assert_error
from tests.service.images import car_like_array, encode, jpeg_bytes, png_bomb


def post(client: TestClient, data: bytes, filename: str = "car.jpg", content_type: str = "image/jpeg"):
    return client.post("/pose", files={"image": (filename, data, content_type)})


def test_empty_file_is_400(client: TestClient) -> None:
    assert_error(post(client, b""), 400, "invalid_image")


def test_truncated_jpeg_is_400(client: TestClient) -> None:
    data = jpeg_bytes(320, 240)
    assert_error(post(client, data[: len(data) // 2]), 400, "invalid_image")


def test_jpeg_header_only_is_400(client: TestClient) -> None:
    assert_error(post(client, b"\xff\xd8\xff\xe0" + b"\x00" * 40), 400, "invalid_image")


def test_corrupt_png_is_400(client: TestClient) -> None:
    data = bytearray(encode(car_like_array(64, 48), "PNG"))
    data[40:80] = b"\xff" * 40  # break IDAT
    assert_error(post(client, bytes(data), "car.png", "image/png"), 400, "invalid_image")


def test_text_file_is_415(client: TestClient) -> None:
    assert_error(post(client, b"just some text\n" * 10, "notes.txt", "text/plain"), 415, "unsupported_media_type")


def test_text_bytes_with_an_image_content_type_is_415(client: TestClient) -> None:
    assert_error(post(client, b"<html>not an image</html>", "car.jpg", "image/jpeg"), 415, "unsupported_media_type")


def test_gif_is_415(client: TestClient) -> None:
    buf = io.BytesIO()
    Image.fromarray(car_like_array(32, 32)).save(buf, "GIF")
    assert_error(post(client, buf.getvalue(), "car.gif", "image/gif"), 415, "unsupported_media_type")


def test_missing_image_field_is_422(client: TestClient) -> None:
    response = client.post("/pose", files={"photo": ("car.jpg", jpeg_bytes(), "image/jpeg")})
    assert_error(response, 422, "validation_error")


def test_no_body_is_422(client: TestClient) -> None:
    assert_error(client.post("/pose"), 422, "validation_error")


def test_image_field_as_plain_text_is_422(client: TestClient) -> None:
    assert_error(client.post("/pose", data={"image": "not a file"}), 422, "validation_error")


def test_bad_render_flag_is_422(client: TestClient) -> None:
    response = client.post("/pose", params={"render": "maybe"}, files={"image": ("c.jpg", jpeg_bytes(), "image/jpeg")})
    assert_error(response, 422, "validation_error")


def test_decompression_bomb_is_413_without_decoding(client: TestClient, pixel_loads: list) -> None:
    bomb = png_bomb(20_000, 20_000)  # 400 megapixels of 1-bit PNG
    assert len(bomb) < 100_000
    started = time.perf_counter()
    body = assert_error(post(client, bomb, "bomb.png", "image/png"), 413, "image_too_large")
    elapsed = time.perf_counter() - started
    assert pixel_loads == []  # refused from the header
    # Decoding would allocate 400 MB and take seconds; refusing from the header takes milliseconds.
    assert elapsed < 2.0, elapsed
    assert "400000000" in body["error"]["message"]


def test_image_over_the_pixel_limit_is_413(client: TestClient, pixel_loads: list) -> None:
    # 64 MP: over the service's 40 MP limit but under Pillow's own bomb guard, so our header check answers.
    body = assert_error(post(client, png_bomb(8_000, 8_000), "big.png", "image/png"), 413, "image_too_large")
    assert "8000x8000" in body["error"]["message"]
    assert pixel_loads == []


def test_pixel_load_spy_sees_normal_decodes(client: TestClient, pixel_loads: list) -> None:
    assert post(client, jpeg_bytes(64, 48)).status_code == 200
    assert (64, 48) in pixel_loads  # so the empty lists above mean something


@pytest.mark.parametrize("path", ["/nope", "/pose/nope"])
def test_unknown_route_is_404_json(client: TestClient, path: str) -> None:
    assert_error(client.get(path), 404, "not_found")


def test_wrong_method_is_405_json(client: TestClient) -> None:
    assert_error(client.get("/pose"), 405, "method_not_allowed")
