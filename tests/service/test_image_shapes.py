"""Every shape the limits admit gets a documented answer; large photos are decoded near the model's input size."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.imaging import MAX_ASPECT_RATIO, MIN_IMAGE_SIDE, WorkingSize, decode_upload
from service.postprocess import Detection, PoseConfig, estimate_pose
from service.response import to_response
from tests.service.helpers import assert_error
from tests.service.images import car_like_array, encode, exif_rotated_jpeg

MODEL_INPUT = WorkingSize(512, 853)  # models/carparts_mnv2_fpn/config.yaml: INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST


def flat_png(width: int, height: int) -> bytes:
    return encode(np.full((height, width, 3), 128, dtype=np.uint8), "PNG")


def post(client: TestClient, data: bytes, name: str = "x.png"):
    return client.post("/pose", files={"image": (name, data, "application/octet-stream")})


@pytest.mark.parametrize(
    ("width", "height"),
    [(1, 1), (1707, 1), (1, 1707), (3500, 2), (2, 3500), (1, 500), (500, 1), (2, 700), (31, 400), (16, 16)],
)
def test_degenerate_shapes_are_400_invalid_image(client: TestClient, width: int, height: int) -> None:
    body = assert_error(post(client, flat_png(width, height)), 400, "invalid_image")
    assert f"{width}x{height}" in body["error"]["message"]


@pytest.mark.parametrize(("width", "height"), [(40_000, 40), (2000, 100), (100, 2000)])
def test_too_elongated_is_400_invalid_image(client: TestClient, width: int, height: int) -> None:
    body = assert_error(post(client, flat_png(width, height)), 400, "invalid_image")
    assert "16 times" in body["error"]["message"]


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (MIN_IMAGE_SIDE, MIN_IMAGE_SIDE),
        (MIN_IMAGE_SIDE, int(MIN_IMAGE_SIDE * MAX_ASPECT_RATIO)),
        (int(MIN_IMAGE_SIDE * MAX_ASPECT_RATIO), MIN_IMAGE_SIDE),
        (1600, 100),  # 16:1 at a size where the model's resize would make the short side 53 px
        (100, 1600),
    ],
)
def test_the_most_extreme_admitted_shapes_are_served(client: TestClient, width: int, height: int) -> None:
    response = post(client, flat_png(width, height))
    assert response.status_code == 200, response.text
    assert response.json()["image"] == {"width": width, "height": height}


def test_a_large_jpeg_is_decoded_at_a_fraction_of_its_size(pixel_loads: list) -> None:
    data = encode(car_like_array(4000, 3000), "JPEG", quality=80)
    image = decode_upload(data, 10_000_000, 40_000_000, MODEL_INPUT)
    assert set(pixel_loads) == {(1000, 750)}  # DCT scaling by 1/4: never 12 MP in memory
    assert (image.width, image.height) == (683, 512)  # the model's own input size
    assert image.reported_size == (4000, 3000)
    assert image.scale_x == pytest.approx(4000 / 683) and image.scale_y == pytest.approx(3000 / 512)


def test_exif_rotation_is_applied_before_the_reduction() -> None:
    data = exif_rotated_jpeg(1600, 1200, orientation=6)  # stored landscape, upright portrait
    image = decode_upload(data, 10_000_000, 40_000_000, MODEL_INPUT)
    assert image.reported_size == (1200, 1600)
    assert (image.width, image.height) == (512, 683)
    assert image.exif_rotated


def test_small_images_are_not_enlarged() -> None:
    image = decode_upload(encode(car_like_array(320, 240), "PNG"), 10_000_000, 40_000_000, MODEL_INPUT)
    assert (image.width, image.height) == (320, 240) and image.scale_x == 1.0


def test_png_is_reduced_after_decoding() -> None:
    image = decode_upload(encode(car_like_array(2000, 1000), "PNG"), 10_000_000, 40_000_000, MODEL_INPUT)
    assert (image.width, image.height) == (853, 426) and image.reported_size == (2000, 1000)


def test_the_working_size_is_the_models_test_time_resize(client: TestClient) -> None:
    backend = client.app.state.model.backend
    expected = WorkingSize(int(backend.cfg.INPUT.MIN_SIZE_TEST), int(backend.cfg.INPUT.MAX_SIZE_TEST))
    assert backend.working_size() == expected


def test_boxes_are_reported_in_the_uploaded_images_pixels(client: TestClient) -> None:
    """The pose runs on the reduced pixels; to_response maps its boxes back to the upload's."""
    backend = client.app.state.model.backend
    image = decode_upload(encode(car_like_array(2000, 1000), "PNG"), 10_000_000, 40_000_000, MODEL_INPUT)
    car = Detection("car", (100.0, 50.0, 700.0, 400.0), 0.99)
    wheel = Detection("wheel", (150.0, 300.0, 250.0, 400.0), 0.9)
    pose = estimate_pose([car, wheel], (image.width, image.height), PoseConfig())
    response = to_response(pose, image, backend, {"total": 1.0}, None)
    sx, sy = 2000 / 853, 1000 / 426
    assert response.image.width == 2000 and response.image.height == 1000
    assert response.car is not None
    assert response.car.box == pytest.approx((100 * sx, 50 * sy, 700 * sx, 400 * sy), abs=0.1)
    assert response.wheels[0].center == pytest.approx((200 * sx, 350 * sy), abs=0.1)


def test_a_large_photo_over_http_reports_its_own_size(client: TestClient) -> None:
    data = encode(car_like_array(3000, 2000), "JPEG", quality=80)
    response = client.post("/pose", files={"image": ("big.jpg", data, "image/jpeg")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["image"] == {"width": 3000, "height": 2000}
    for part in [body["car"], *body["wheels"], *body["parts"]]:
        if part:
            x0, y0, x1, y1 = part["box"]
            assert 0 <= x0 <= x1 <= 3000 and 0 <= y0 <= y1 <= 2000


def test_bad_crc_png_message_has_no_memory_address(client: TestClient) -> None:
    data = bytearray(encode(car_like_array(64, 64), "PNG"))
    idat = data.index(b"IDAT")
    data[idat + 8] ^= 0xFF  # corrupt the compressed data: the chunk CRC no longer matches
    body = assert_error(post(client, bytes(data)), 400, "invalid_image")
    assert "0x" not in body["error"]["message"], body


def test_the_reduced_image_is_what_the_model_sees(client: TestClient) -> None:
    cfg = client.app.state.model.backend.cfg  # the tiny test model has a smaller input than the default one
    short, long = int(cfg.INPUT.MIN_SIZE_TEST), int(cfg.INPUT.MAX_SIZE_TEST)
    data = encode(car_like_array(1600, 1200), "JPEG", quality=80)
    image = decode_upload(data, 10_000_000, 40_000_000, client.app.state.model.backend.working_size())
    assert min(image.width, image.height) == short or max(image.width, image.height) == long
    assert image.rgb.dtype == np.uint8 and image.reported_size == (1600, 1200)
