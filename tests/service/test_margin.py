"""The grey margin before detection (service.margin): the answers stay in the photo's own pixels, a cut car stays
cut, and a photo framed tight to its car gets the yaw the margin was added for.

The geometry test is pure numpy; the others are real Detectron2 inference with the embedded default model on Car
Parts test and turntable photos (skip without them).
"""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.whole_car import crop as close_up
from models.turntable import acceptable_views, angular_error
from service.cli import main as carpose
from service.imaging import DecodedImage
from service.margin import MARGIN_GREY, FrameMargin, is_tight, to_photo, with_margin, with_photo_readings
from service.postprocess import Detection
from service.runtime import Runtime
from service.settings import Settings
from tests.service.helpers import CLEAR_PHOTO

# A Car Parts test photo with road around its car.
ROOMY_TEST_PHOTO = "te30.jpg"
# Turntable photos whose yaw the margin mends once the photo is cropped to its car box (as web photos come): file,
# true yaw ((step - 1) x 22.5), the largest error allowed with the margin, the least error without it. With the
# default model of 2026-12-03 the crops read 19.5 and 27.4 degrees off without the margin, 0.1 and 4.4 with it
# (found by cropping all 64 turntable photos).
TIGHT_REGRESSIONS = [("02159e548029_06.jpg", 112.5, 5.0, 15.0), ("00087a6bd4dc_04.jpg", 67.5, 10.0, 20.0)]
# Crops the classifier on the frozen ImageNet trunk read 118 (`left`) and 45 degrees off without the margin; the one
# fine-tuned on web-framed crops (issue 19) reads them within 30 without it: file, true yaw.
TIGHT_WITHOUT_MARGIN = [("02159e548029_10.jpg", 202.5), ("02159e548029_06.jpg", 112.5)]


def jpeg(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_detections_on_the_canvas_map_back_to_the_photo() -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (60, 100, 3), dtype=np.uint8)
    framed = with_margin(DecodedImage(rgb=rgb, format="ARRAY", data=b"", exif_rotated=False), 0.2)
    assert (framed.left, framed.top) == (20, 12) and framed.canvas.rgb.shape == (84, 140, 3)
    assert np.array_equal(framed.canvas.rgb[12:72, 20:120], rgb)  # the photo's pixels, untouched
    assert (framed.canvas.rgb[:12] == MARGIN_GREY).all() and (framed.canvas.rgb[:, :20] == MARGIN_GREY).all()

    mask = np.zeros((84, 140), bool)
    mask[5:40, 10:70] = True  # starts in the margin, ends inside the photo
    inside = Detection("car", (10.0, 5.0, 70.0, 40.0), 0.9, mask=mask, view_probs=(1.0,) + (0.0,) * 7)
    spilling = Detection("wheel", (100.0, 60.0, 135.5, 80.0), 0.8)  # past the photo's right and bottom edges
    in_margin = Detection("front_bumper", (0.0, 0.0, 19.5, 11.0), 0.7)  # wholly in the margin: dropped
    mapped = to_photo([inside, spilling, in_margin], framed)

    assert [d.label for d in mapped] == ["car", "wheel"]
    car, wheel = mapped
    assert car.box == (0.0, 0.0, 50.0, 28.0) and car.view_probs == inside.view_probs
    assert car.mask is not None and car.mask.shape == (60, 100)
    assert np.array_equal(car.mask, mask[12:72, 20:120])
    assert wheel.box == (80.0, 48.0, 100.0, 60.0)


def test_a_cars_mask_fading_short_of_a_border_it_runs_past_reaches_it() -> None:
    rgb = np.zeros((60, 100, 3), np.uint8)
    framed = with_margin(DecodedImage(rgb=rgb, format="ARRAY", data=b"", exif_rotated=False), 0.2)  # left 20, top 12
    mask = np.zeros((84, 140), bool)
    mask[30:40, 22:60] = True  # photo columns 2-39: two pixels short of the left border
    mask[45:50, 26:60] = True  # photo columns 6-39: beyond one mask cell (65 / 28 -> 3 px) from it
    past = Detection("car", (15.0, 28.0, 80.0, 52.0), 0.9, mask=mask)  # runs 5 px past the left border
    within = Detection("car", (21.0, 28.0, 80.0, 52.0), 0.9, mask=mask)  # ends inside the photo
    part = Detection("front_bumper", (15.0, 28.0, 80.0, 52.0), 0.9, mask=mask)  # parts' masks stay as found
    carried, kept, bumper = (d.mask for d in to_photo([past, within, part], framed))
    assert carried is not None and kept is not None and bumper is not None
    assert carried[18:28, :2].all() and not carried[33:38, :6].any()
    assert np.array_equal(carried[:, 2:], kept[:, 2:]) and not kept[:, :2].any()
    assert np.array_equal(bumper, kept)


def test_the_canvas_pass_carries_the_photo_pass_readings() -> None:
    first = [Detection("car", (0.0, 0.0, 50.0, 40.0), 0.9, view_probs=(1.0,) + (0.0,) * 7, roll_deg=-15.0)]
    canvas_car = Detection("car", (0.0, 0.0, 50.0, 40.0), 0.95, view_probs=(0.0, 1.0) + (0.0,) * 6, roll_deg=-6.0)
    wheel = Detection("wheel", (5.0, 30.0, 15.0, 40.0), 0.9)
    car, kept = with_photo_readings(first, [canvas_car, wheel])
    assert car.roll_deg == -15.0 and car.view_probs == canvas_car.view_probs  # the photo's roll, the canvas's view
    assert car.photo_pass == tuple(first) and kept is wheel
    assert with_photo_readings([], [canvas_car]) == [canvas_car]  # nothing read on the photo: nothing carried


# Halves of test photos' cars (benchmarks.whole_car's crops) that the canvas pass made look whole (more parts found,
# the car ended at the photo's edge) before the framing verdicts read the photo's own pass.
MARGIN_HALVES = {"te14.jpg": (84, 61, 511, 593), "te39.jpg": (345, 66, 652, 440)}


@pytest.mark.parametrize("name", sorted(MARGIN_HALVES))
def test_half_a_car_stays_half_a_car_with_the_margin(framed_runtime: Runtime, car_parts_dir: Path, name: str) -> None:
    photo = Image.open(car_parts_dir / "testset" / "JPEGImages" / name).convert("RGB")
    half = close_up(photo, MARGIN_HALVES[name])  # upscaled as the benchmark's crops are
    answer = framed_runtime.predict(jpeg(np.asarray(half)))
    assert answer.pose.car is not None and answer.pose.car.photo_pass is not None  # tight: the canvas pass ran
    assert answer.quality is not None and not answer.quality.whole_car, answer.pose


@pytest.fixture(scope="module")
def framed_runtime(default_backend: object) -> Runtime:
    # Off by default (docs/decisions.md): the share the development set was measured with, as an operator sets it.
    runtime = Runtime.from_settings(default_backend, Settings(device="cpu", frame_margin=0.2))  # type: ignore[arg-type]
    assert runtime.frame_margin.share == 0.2
    return runtime


def test_the_answer_is_in_the_uploads_pixels(framed_runtime: Runtime, car_parts_dir: Path) -> None:
    data = (car_parts_dir / "testset" / "JPEGImages" / ROOMY_TEST_PHOTO).read_bytes()
    always = replace(framed_runtime, frame_margin=FrameMargin(framed_runtime.frame_margin.share, "always"))
    framed = always.predict(data)
    plain = replace(framed_runtime, frame_margin=FrameMargin(0.0)).predict(data)
    assert framed.pose.car is not None and plain.pose.car is not None
    # The same car at a smaller scale in the model's input: nearly the same box. Left on the canvas (not mapped
    # back) it would lie the margin's width and height off, far below that overlap.
    assert iou(framed.pose.car.box, plain.pose.car.box) > 0.8
    share = always.frame_margin.share
    dx, dy = share * framed.image.width, share * framed.image.height
    x0, y0, x1, y1 = framed.pose.car.box
    assert iou((x0 + dx, y0 + dy, x1 + dx, y1 + dy), plain.pose.car.box) < 0.6
    width, height = framed.image.width, framed.image.height
    for detection in framed.detections:
        x0, y0, x1, y1 = detection.box
        assert 0.0 <= x0 < x1 <= width and 0.0 <= y0 < y1 <= height, detection
        assert detection.mask is None or detection.mask.shape == (height, width)
    assert framed.quality is not None and framed.quality.in_frame


def test_a_photo_with_road_around_its_car_is_answered_as_before(framed_runtime: Runtime, car_parts_dir: Path) -> None:
    data = (car_parts_dir / "testset" / "JPEGImages" / ROOMY_TEST_PHOTO).read_bytes()
    tight_mode = framed_runtime.predict(data)
    plain = replace(framed_runtime, frame_margin=FrameMargin(0.0)).predict(data)
    assert framed_runtime.frame_margin.mode == "tight" and plain.pose.car is not None
    assert not is_tight(plain.pose.car.box, (plain.image.width, plain.image.height))
    assert tight_mode.detections == plain.detections  # one pass, without the margin
    assert tight_mode.pose.azimuth_deg == plain.pose.azimuth_deg


def test_tight_means_the_car_box_near_a_border() -> None:
    assert is_tight((2.0, 30.0, 150.0, 80.0), (200, 100))  # 1 % from the left border
    assert is_tight((20.0, 10.0, 180.0, 97.0), (200, 100))  # 3 % from the bottom
    assert not is_tight((20.0, 10.0, 180.0, 90.0), (200, 100))  # 10 % of room on every side


def test_a_car_cut_by_a_tight_crop_is_still_cut(framed_runtime: Runtime) -> None:
    if not CLEAR_PHOTO.is_file():
        pytest.skip(f"turntable photo not found at {CLEAR_PHOTO}")
    photo = np.asarray(Image.open(CLEAR_PHOTO).convert("RGB"))
    car = framed_runtime.predict(photo).pose.car
    assert car is not None
    x0, y0, x1, y1 = (round(v) for v in car.box)
    # Tight on top, bottom and right (as web photos are framed), and the car's left quarter cut away.
    cut = np.ascontiguousarray(photo[y0:y1, x0 + (x1 - x0) // 4 : x1])
    result = framed_runtime.predict(jpeg(cut))
    assert result.quality is not None and result.pose.car is not None
    assert "left" in result.quality.cut_sides and not result.quality.in_frame and not result.quality.ok


def tight_crop(runtime: Runtime, path: Path) -> bytes:
    """The photo cut to the car box the runtime finds in it, as a JPEG: framed as web photos are."""
    first = runtime.predict(path.read_bytes())
    assert first.pose.car is not None
    x0, y0, x1, y1 = (round(v) for v in first.pose.car.box)
    return jpeg(np.ascontiguousarray(first.image.rgb[y0:y1, x0:x1]))


@pytest.mark.parametrize(("name", "truth", "max_error", "min_error_without"), TIGHT_REGRESSIONS)
def test_a_photo_cropped_tight_to_its_car_gets_its_yaw(
    framed_runtime: Runtime, turntable_dir: Path, name: str, truth: float, max_error: float, min_error_without: float
) -> None:
    tight = tight_crop(framed_runtime, turntable_dir / name)
    framed = framed_runtime.predict(tight).pose
    plain = replace(framed_runtime, frame_margin=FrameMargin(0.0)).predict(tight).pose
    assert plain.azimuth_deg is None or angular_error(plain.azimuth_deg, truth) >= min_error_without, (
        "the crop no longer needs the margin: pick another photo"
    )
    assert framed.azimuth_deg is not None and angular_error(framed.azimuth_deg, truth) <= max_error, framed
    assert framed.view in acceptable_views(truth)


@pytest.mark.parametrize(("name", "truth"), TIGHT_WITHOUT_MARGIN)
def test_the_classifier_reads_a_tight_crop_without_the_margin(
    framed_runtime: Runtime, turntable_dir: Path, name: str, truth: float
) -> None:
    plain = replace(framed_runtime, frame_margin=FrameMargin(0.0))
    pose = plain.predict(tight_crop(framed_runtime, turntable_dir / name)).pose
    assert pose.azimuth_deg is not None and angular_error(pose.azimuth_deg, truth) <= 30.0, pose
    assert pose.view in acceptable_views(truth)


def test_carpose_eval_yaw_measures_the_margin_it_is_given(
    framed_runtime: Runtime, turntable_dir: Path, default_model_dir: Path, tmp_path: Path
) -> None:
    # `--frame-margin` measures the served path as a service with that POSE_FRAME_MARGIN runs it: the regression
    # crop is off without the margin and right with it, as in test_a_photo_cropped_tight_to_its_car_gets_its_yaw.
    name, truth, max_error, min_error_without = TIGHT_REGRESSIONS[0]
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / name).write_bytes(tight_crop(framed_runtime, turntable_dir / name))
    labels = photos / "labels.tsv"
    labels.write_text(f"{name}\t{truth}\n")
    command = ["eval", "--model-dir", str(default_model_dir), "--yaw", str(labels), "--quiet"]
    errors = {}
    for share in ("0", "0.2"):
        rows = tmp_path / f"rows-{share}.jsonl"
        assert carpose([*command, "--rows", str(rows), "--frame-margin", share]) == 0
        (row,) = [json.loads(line) for line in rows.read_text().splitlines()]
        errors[share] = angular_error(row["azimuth"], truth)
    assert errors["0"] >= min_error_without and errors["0.2"] <= max_error, errors
    # The model card holds the default served path's figures only.
    with pytest.raises(SystemExit, match="--write"):
        carpose([*command, "--frame-margin", "0.2", "--write"])
