"""The Rekognition backend's pure parts: what is sent upstream, and how answers become detections."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from service.backends.rekognition import (
    MAX_IMAGE_BYTES,
    detections_from_custom_labels,
    detections_from_labels,
    map_custom_label,
    prepare_image,
)
from service.imaging import DecodedImage, decode_upload
from tests.service.images import exif_rotated_jpeg

from .helpers import custom_labels_body, detect_labels_body, image_bytes
from .stand_in import IMAGE_MAX_BYTES


def decoded(data: bytes) -> DecodedImage:
    return decode_upload(data, 50_000_000, 40_000_000)


def test_limit_matches_the_service_model() -> None:
    assert MAX_IMAGE_BYTES == IMAGE_MAX_BYTES


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_small_upright_jpeg_and_png_are_sent_as_uploaded(fmt: str) -> None:
    data = image_bytes(200, 100, fmt)
    upstream = prepare_image(decoded(data))
    assert (upstream.data, upstream.format, upstream.reencoded) == (data, fmt, False)


def test_downscales_until_under_the_limit_keeping_the_aspect() -> None:
    image = decoded(image_bytes(800, 600, "PNG", noise=True))
    upstream = prepare_image(image, max_bytes=150_000)
    assert upstream.reencoded and upstream.format == "JPEG"
    assert len(upstream.data) <= 150_000
    assert upstream.width < 800 and abs(upstream.width / upstream.height - 800 / 600) < 0.01
    with Image.open(io.BytesIO(upstream.data)) as sent:
        assert sent.size == (upstream.width, upstream.height)


def test_exif_rotation_is_applied_before_sending() -> None:
    upstream = prepare_image(decoded(exif_rotated_jpeg(300, 200, orientation=8)))
    assert upstream.reencoded and (upstream.width, upstream.height) == (200, 300)
    with Image.open(io.BytesIO(upstream.data)) as sent:
        assert sent.size == (200, 300) and sent.getexif().get(0x0112, 1) == 1


def test_detect_labels_keeps_car_and_wheel_instances_in_pixels() -> None:
    body = detect_labels_body(cars=[((0.1, 0.2, 0.5, 0.6), 99.0)], wheels=[((0.15, 0.5, 0.2, 0.6), 80.0)])
    detections = detections_from_labels(body, 1000, 500)
    assert [(d.label, d.score) for d in detections] == [("car", pytest.approx(0.99)), ("wheel", pytest.approx(0.8))]
    assert detections[0].box == pytest.approx((100.0, 100.0, 500.0, 300.0))


def test_detect_labels_wheels_without_a_car_are_no_car() -> None:
    assert detections_from_labels(detect_labels_body(wheels=[((0.1, 0.1, 0.2, 0.2), 90.0)]), 100, 100) == []


def test_custom_labels_mapping() -> None:
    label_map = {"Whole Car": "car", "bumper_f": "front_bumper"}
    assert map_custom_label("Whole Car", label_map) == "car"
    assert map_custom_label("bumper_f", label_map) == "front_bumper"
    assert map_custom_label("front_left_door", label_map) == "front_left_door"  # identity by default
    assert map_custom_label("Back-Left Light", label_map) == "back_left_light"
    body = custom_labels_body([("bumper_f", (0.0, 0.5, 1.0, 1.0), 91.0)])
    [bumper] = detections_from_custom_labels(body, 200, 100, label_map)  # the classification label is dropped
    assert bumper.label == "front_bumper" and bumper.box == pytest.approx((0.0, 50.0, 200.0, 100.0))
