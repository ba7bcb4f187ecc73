"""Photo quality: the measures on a real photo and on copies a seller must retake, and the `quality` object over HTTP.

Real inference with the embedded default model on a turntable photo (skips without either).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageFilter

from service.quality import QualityThresholds, cut_sides, laplacian_variance, sharpness
from service.runtime import Runtime
from service.settings import Settings
from tests.service.helpers import CLEAR_PHOTO


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    if not CLEAR_PHOTO.is_file():
        pytest.skip(f"turntable photo not found at {CLEAR_PHOTO}")
    return np.asarray(Image.open(CLEAR_PHOTO).convert("RGB"))


@pytest.fixture(scope="module")
def runtime(default_backend: object) -> Runtime:
    return Runtime.from_settings(default_backend, Settings(device="cpu"))  # type: ignore[arg-type]


def quality_of(runtime: Runtime, rgb: np.ndarray):
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=92)
    result = runtime.predict(buffer.getvalue())
    assert result.pose.car is not None, "the car must still be found for its quality to be judged"
    assert result.quality is not None
    return result.quality


def test_the_clear_photo_is_ok(runtime: Runtime, photo: np.ndarray) -> None:
    quality = quality_of(runtime, photo)
    assert quality.ok, quality
    assert quality.cut_sides == [] and 0.1 < quality.car_fraction < 1


def test_a_blurred_copy_is_not_sharp(runtime: Runtime, photo: np.ndarray) -> None:
    sharp = quality_of(runtime, photo)
    blurred = np.asarray(Image.fromarray(photo).filter(ImageFilter.GaussianBlur(6)))
    quality = quality_of(runtime, blurred)
    assert not quality.sharp and not quality.ok
    assert quality.sharpness < sharp.sharpness / 4


def test_a_dark_copy_is_badly_exposed(runtime: Runtime, photo: np.ndarray) -> None:
    quality = quality_of(runtime, (photo.astype(np.float32) * 0.15).astype(np.uint8))
    assert not quality.exposure_ok and not quality.ok
    assert quality.brightness < 0.2


def test_a_cropped_copy_is_cut_on_that_side(runtime: Runtime, photo: np.ndarray) -> None:
    found = runtime.predict(photo).pose.car
    assert found is not None
    middle = int((found.box[0] + found.box[2]) / 2)
    quality = quality_of(runtime, np.ascontiguousarray(photo[:, middle - 40 :]))
    assert "left" in quality.cut_sides and not quality.in_frame and not quality.ok


def test_a_small_car_is_not_large_enough(runtime: Runtime, photo: np.ndarray) -> None:
    h, w = photo.shape[:2]
    canvas = np.full((h * 3, w * 3, 3), 235, np.uint8)  # the photo's own studio grey around it
    canvas[h : 2 * h, w : 2 * w] = photo
    quality = quality_of(runtime, canvas)
    assert not quality.large_enough and quality.car_fraction < 0.1


def test_a_box_at_the_border_without_mask_pixels_there_is_not_a_cut() -> None:
    mask = np.zeros((100, 200), bool)
    mask[20:80, 10:150] = True
    assert cut_sides((0.0, 20.0, 150.0, 80.0), mask, (200, 100), 0.01) == []
    assert cut_sides((0.0, 20.0, 150.0, 80.0), None, (200, 100), 0.01) == ["left"]
    mask[20:80, 0:10] = True
    assert cut_sides((0.0, 20.0, 150.0, 80.0), mask, (200, 100), 0.01) == ["left"]


def test_sharpness_does_not_depend_on_the_upload_size(photo: np.ndarray) -> None:
    """Measured at a fixed scale: the same scene at twice the pixels measures about the same."""
    gray = photo.astype(np.float32).mean(axis=2)
    big = np.kron(gray, np.ones((2, 2), np.float32))
    assert laplacian_variance(np.full((50, 50), 7.0, np.float32)) == 0.0
    assert sharpness(big, None) == pytest.approx(sharpness(gray, None), rel=0.35)


def test_the_thresholds_are_the_settings() -> None:
    settings = Settings(quality_min_sharpness=5.0, quality_max_brightness=0.5, quality_max_roll_deg=3.0)
    thresholds = QualityThresholds.from_settings(settings)
    assert (thresholds.min_sharpness, thresholds.max_brightness, thresholds.max_roll_deg) == (5.0, 0.5, 3.0)
    assert QualityThresholds.defaults().min_sharpness == Settings.model_fields["quality_min_sharpness"].default


def test_every_pose_answer_has_quality(photo_client: TestClient) -> None:
    body = photo_client.post(
        "/pose", files={"image": (CLEAR_PHOTO.name, CLEAR_PHOTO.read_bytes(), "image/jpeg")}
    ).json()
    quality = body["quality"]
    assert set(quality) == {
        "ok",
        "in_frame",
        "cut_sides",
        "car_fraction",
        "large_enough",
        "sharpness",
        "sharp",
        "brightness",
        "clipped_fraction",
        "exposure_ok",
        "exposure",
        "whole_car",
        "other_cars",
        "level",
    }
    assert quality["ok"] is True
    assert quality["whole_car"] is True and quality["other_cars"] == 0 and quality["exposure"] == "ok"
    schema = photo_client.get("/openapi.json").json()["components"]["schemas"]
    assert "quality" in schema["PoseResponse"]["properties"] and "QualityOut" in schema
