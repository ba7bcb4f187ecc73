"""POST /pose/rekognition end to end: real boto3 HTTP calls to the local Rekognition stand-in."""

from __future__ import annotations

import math
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from service.metrics import REGISTRY
from tests.service.images import exif_rotated_jpeg

from .conftest import AppFactory
from .helpers import (
    ARN,
    custom_labels_body,
    detect_labels_body,
    image_bytes,
    pixels,
)
from .stand_in import IMAGE_MAX_BYTES, Scripted, StandIn

W, H = 320, 240
SIDE_CAR = (0.1, 0.3, 0.9, 0.75)
SIDE_WHEELS = [((0.18, 0.55, 0.30, 0.74), 95.0), ((0.68, 0.53, 0.80, 0.72), 94.0)]


def post(client: TestClient, data: bytes, name: str = "car.jpg", render: bool = False) -> httpx.Response:
    params = {"render": "true"} if render else None
    return client.post("/pose/rekognition", params=params, files={"image": (name, data)})


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, {"backend": "rekognition", **labels}) or 0.0


def assert_box(actual: list[float], expected: tuple[float, float, float, float]) -> None:
    # The response rounds boxes to 0.1 px.
    assert actual == pytest.approx(list(expected), abs=0.06)


# ----------------------------------------------------------------------------------- DetectLabels poses


def test_side_view_gives_tilt_and_side_but_no_guessed_view(make_client: AppFactory, stand_in: StandIn) -> None:
    client = make_client(rekognition_min_confidence=55.0)
    stand_in.script(Scripted(body=detect_labels_body(cars=[(SIDE_CAR, 98.7)], wheels=SIDE_WHEELS)))
    upload = image_bytes(W, H)
    calls_before = sample("carpose_upstream_duration_seconds_count", operation="DetectLabels")

    response = post(client, upload, render=True)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["backend"] == "rekognition"
    assert body["model"] == {"name": "rekognition-detect-labels", "version": "3.0"}
    # Partial pose, stated as such: tilt and "side", no view or azimuth (car + wheels cannot tell left/right).
    assert body["view"] is None and body["azimuth_deg"] is None
    assert body["coarse_view"] == "side"
    assert body["reason"] == "view_ambiguous"
    # Wheel centres (0.24, 0.645) and (0.74, 0.625) of 320x240: the right one is 4.8 px higher over 160 px.
    assert body["tilt_deg"] == pytest.approx(math.degrees(math.atan2(0.02 * H, 0.5 * W)), abs=0.01)
    assert body["cars_detected"] == 1
    assert_box(body["car"]["box"], pixels(SIDE_CAR, W, H))
    assert body["car"]["score"] == pytest.approx(0.987)
    assert sorted(w["score"] for w in body["wheels"]) == pytest.approx([0.94, 0.95])
    assert body["parts"] == []
    assert body["image"] == {"width": W, "height": H}
    assert body["rendered_image"].startswith("data:image/jpeg;base64,")
    assert set(body["timings_ms"]) >= {"decode", "inference", "postprocess", "render", "total"}
    # One request, the upload sent unchanged (a small upright JPEG), with the configured MinConfidence.
    [request] = stand_in.received
    assert request.operation == "DetectLabels"
    assert request.params == {"MinConfidence": 55.0}
    assert (request.image_format, request.image_size, request.image_bytes) == ("JPEG", (W, H), len(upload))
    assert sample("carpose_upstream_duration_seconds_count", operation="DetectLabels") == calls_before + 1


@pytest.mark.parametrize(
    "wheels",
    [
        # Front view: the visible wheels are an axle's two tyres, seen edge-on (narrow) at the car's corners.
        [((0.33, 0.60, 0.37, 0.74), 93.0), ((0.63, 0.60, 0.67, 0.74), 92.0)],
        # Round wheels, but close together (a quarter of the car's width): not a side's front and rear wheel.
        [((0.40, 0.60, 0.46, 0.74), 93.0), ((0.47, 0.60, 0.53, 0.74), 92.0)],
    ],
    ids=["narrow_at_corners", "close_together"],
)
def test_front_view_is_not_called_side(
    make_client: AppFactory, stand_in: StandIn, wheels: list[tuple[tuple[float, float, float, float], float]]
) -> None:
    client = make_client()
    stand_in.script(Scripted(body=detect_labels_body(cars=[((0.3, 0.3, 0.7, 0.75), 97.0)], wheels=wheels)))
    body = post(client, image_bytes(W, H)).json()
    assert body["coarse_view"] is None
    assert body["view"] is None and body["azimuth_deg"] is None and body["tilt_deg"] is None
    assert body["reason"] == "view_ambiguous"
    assert len(body["wheels"]) == 2


def test_no_car(make_client: AppFactory, stand_in: StandIn) -> None:
    client = make_client()
    # Wheels without a car (a tyre shop) are not a car either.
    stand_in.script(Scripted(body=detect_labels_body(wheels=[((0.2, 0.5, 0.3, 0.7), 90.0)])))
    body = post(client, image_bytes(W, H)).json()
    assert body["reason"] == "no_car"
    assert body["cars_detected"] == 0 and body["car"] is None
    assert body["view"] is None and body["coarse_view"] is None and body["tilt_deg"] is None


def test_several_cars_pose_the_main_one(make_client: AppFactory, stand_in: StandIn) -> None:
    client = make_client()
    main = (0.15, 0.35, 0.9, 0.8)  # side-on: 2.2 times as wide as tall (a head-on box's two wheels are an axle)
    cars = [((0.0, 0.1, 0.15, 0.25), 99.0), (main, 96.0), ((0.85, 0.05, 1.0, 0.2), 98.0)]
    wheels = [((0.30, 0.62, 0.40, 0.79), 92.0), ((0.65, 0.62, 0.75, 0.79), 91.0), ((0.02, 0.2, 0.05, 0.25), 90.0)]
    stand_in.script(Scripted(body=detect_labels_body(cars=cars, wheels=wheels)))
    body = post(client, image_bytes(W, H)).json()
    assert body["cars_detected"] == 3
    assert_box(body["car"]["box"], pixels(main, W, H))
    assert len(body["wheels"]) == 2  # the far car's wheel is not this car's
    assert body["coarse_view"] == "side" and body["tilt_deg"] == pytest.approx(0.0, abs=0.01)


def test_one_wheel_gives_no_tilt(make_client: AppFactory, stand_in: StandIn) -> None:
    client = make_client()
    stand_in.script(Scripted(body=detect_labels_body(cars=[(SIDE_CAR, 98.0)], wheels=SIDE_WHEELS[:1])))
    body = post(client, image_bytes(W, H)).json()
    assert body["tilt_deg"] is None and body["view"] is None and body["coarse_view"] is None
    assert body["reason"] == "too_few_parts"
    assert len(body["wheels"]) == 1


# ----------------------------------------------------------------------------------- Custom Labels


FRONT_LEFT_PARTS = [
    ("Whole Car", (0.15, 0.14, 0.82, 0.63), 99.0),  # mapped by POSE_REKOGNITION_LABEL_MAP
    ("front_bumper", (0.16, 0.33, 0.41, 0.62), 96.0),
    ("hood", (0.19, 0.30, 0.48, 0.45), 93.0),
    ("front_glass", (0.30, 0.22, 0.53, 0.37), 95.0),
    ("Front Left Light", (0.32, 0.39, 0.41, 0.48), 90.0),  # spelled differently: normalised
    ("front_right_light", (0.21, 0.36, 0.23, 0.46), 81.0),
    ("left_mirror", (0.50, 0.33, 0.54, 0.38), 77.0),
    ("front_left_door", (0.50, 0.25, 0.59, 0.53), 94.0),
    ("back_left_door", (0.61, 0.22, 0.69, 0.50), 93.0),
    ("wheel", (0.44, 0.43, 0.51, 0.56), 97.0),
    ("wheel", (0.695, 0.357, 0.761, 0.486), 96.0),
]


def test_custom_labels_give_the_full_eight_way_view(make_client: AppFactory, stand_in: StandIn) -> None:
    client = make_client(rekognition_project_version_arn=ARN, rekognition_label_map={"Whole Car": "car"})
    stand_in.script(Scripted(body=custom_labels_body(FRONT_LEFT_PARTS)))
    width, height = 640, 480
    body = post(client, image_bytes(width, height)).json()

    assert body["view"] == "front_left", body
    assert 22.5 <= body["azimuth_deg"] < 67.5
    assert body["coarse_view"] == "front" and body["reason"] is None
    assert body["model"] == {"name": "car-parts", "version": "car-parts.2026-11-20"}
    assert_box(body["car"]["box"], pixels(FRONT_LEFT_PARTS[0][1], width, height))
    labels = sorted(p["label"] for p in body["parts"])
    assert "front_left_light" in labels and "front_bumper" in labels and "sedan" not in labels
    [request] = stand_in.received
    assert request.operation == "DetectCustomLabels"
    assert request.params == {"ProjectVersionArn": ARN, "MinConfidence": 50.0}


def test_custom_labels_model_not_running(make_client: AppFactory, stand_in: StandIn) -> None:
    client = make_client(rekognition_project_version_arn=ARN)
    stand_in.script(Scripted(error="ResourceNotReadyException", message="ProjectVersion is not running"))
    response = post(client, image_bytes(W, H))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "upstream_model_not_running"
    assert "StartProjectVersion" in response.json()["error"]["message"]
    assert int(response.headers["Retry-After"]) > 0
    assert len(stand_in.received) == 1


# ----------------------------------------------------------------------------------- retries and errors


def test_throttling_then_success(make_client: AppFactory, stand_in: StandIn) -> None:
    client = make_client(rekognition_total_max_attempts=3)
    stand_in.script(
        Scripted(error="ThrottlingException", message="Rate exceeded"),
        Scripted(body=detect_labels_body(cars=[(SIDE_CAR, 98.0)], wheels=SIDE_WHEELS)),
    )
    response = post(client, image_bytes(W, H))
    assert response.status_code == 200, response.text
    assert response.json()["coarse_view"] == "side"
    assert len(stand_in.received) == 2


@pytest.mark.parametrize("attempts", [1, 3])
def test_throttling_exhausted(make_client: AppFactory, stand_in: StandIn, attempts: int) -> None:
    client = make_client(rekognition_total_max_attempts=attempts)
    stand_in.script(*[Scripted(error="ThrottlingException", message="Rate exceeded")] * attempts)
    errors_before = sample("carpose_upstream_errors_total", code="ThrottlingException")

    response = post(client, image_bytes(W, H))

    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "upstream_throttled" and "ThrottlingException" in error["message"]
    assert int(response.headers["Retry-After"]) >= 1
    # total_max_attempts counts the first try: exactly that many requests, never one more.
    assert len(stand_in.received) == attempts
    assert sample("carpose_upstream_errors_total", code="ThrottlingException") == errors_before + 1


def test_internal_error_is_retried(make_client: AppFactory, stand_in: StandIn) -> None:
    client = make_client()
    stand_in.script(
        Scripted(error="InternalServerError"),
        Scripted(body=detect_labels_body(cars=[(SIDE_CAR, 98.0)], wheels=SIDE_WHEELS)),
    )
    response = post(client, image_bytes(W, H))
    assert response.status_code == 200, response.text
    assert len(stand_in.received) == 2


@pytest.mark.parametrize(
    ("aws_code", "status", "code", "arn"),
    [
        ("InvalidImageFormatException", 422, "upstream_invalid_image", None),
        ("ImageTooLargeException", 422, "upstream_image_too_large", None),
        ("InvalidParameterException", 422, "upstream_invalid_parameter", None),
        ("AccessDeniedException", 502, "upstream_access_denied", None),
        ("UnrecognizedClientException", 502, "upstream_invalid_credentials", None),
        ("InvalidSignatureException", 502, "upstream_invalid_credentials", None),
        ("ProvisionedThroughputExceededException", 503, "upstream_throttled", None),
        ("LimitExceededException", 503, "upstream_throttled", ARN),  # declared by DetectCustomLabels only
        ("ServiceUnavailable", 503, "upstream_unavailable", None),
        ("ResourceNotFoundException", 502, "upstream_model_not_found", ARN),
    ],
)
def test_upstream_error_mapping(
    make_client: AppFactory, stand_in: StandIn, aws_code: str, status: int, code: str, arn: str | None
) -> None:
    # One attempt: this checks the mapping; retries are checked above.
    client = make_client(rekognition_total_max_attempts=1, rekognition_project_version_arn=arn)
    stand_in.script(Scripted(error=aws_code))
    errors_before = sample("carpose_upstream_errors_total", code=aws_code)
    response = post(client, image_bytes(W, H))
    assert response.status_code == status
    assert set(response.json()) == {"error"}
    assert response.json()["error"]["code"] == code
    assert aws_code in response.json()["error"]["message"]  # names the cause
    assert ("Retry-After" in response.headers) == (status == 503)
    assert sample("carpose_upstream_errors_total", code=aws_code) == errors_before + 1


def test_invalid_image_is_not_retried(make_client: AppFactory, stand_in: StandIn) -> None:
    client = make_client(rekognition_total_max_attempts=3)
    stand_in.script(Scripted(error="InvalidImageFormatException", message="Request has invalid image format"))
    response = post(client, image_bytes(W, H))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "upstream_invalid_image"
    assert len(stand_in.received) == 1


@pytest.mark.parametrize(("message", "detail"), [("unsupported format: ", "unsupported format: "), ("", "")])
def test_upstream_message_is_passed_on_whole(
    make_client: AppFactory, stand_in: StandIn, message: str, detail: str
) -> None:
    """The AWS message ends the error message as sent: trailing ':' or ' ' are not stripped from it."""
    stand_in.script(Scripted(error="InvalidImageFormatException", message=message))
    text = post(make_client(), image_bytes(W, H)).json()["error"]["message"]
    suffix = f"InvalidImageFormatException: {detail}" if detail else "InvalidImageFormatException"
    assert text.endswith(suffix), text


def test_missing_credentials_make_no_call(
    make_client: AppFactory, stand_in: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    client = make_client()
    before = sample("carpose_upstream_errors_total", code="credentials_missing")
    response = post(client, image_bytes(W, H))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "upstream_credentials_missing"
    assert stand_in.received == []
    assert sample("carpose_upstream_errors_total", code="credentials_missing") == before + 1


def test_endpoint_down(make_client: AppFactory, stand_in: StandIn, closed_port: int) -> None:
    client = make_client(rekognition_endpoint_url=f"http://127.0.0.1:{closed_port}", rekognition_total_max_attempts=2)
    before = sample("carpose_upstream_errors_total", code="connection")
    response = post(client, image_bytes(W, H))
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_unreachable"
    assert sample("carpose_upstream_errors_total", code="connection") == before + 1


def test_read_timeout(make_client: AppFactory, stand_in: StandIn) -> None:
    client = make_client(rekognition_read_timeout_s=0.3, rekognition_total_max_attempts=2)
    late = Scripted(body=detect_labels_body(), delay_s=3.0)
    stand_in.script(late, late)
    before = sample("carpose_upstream_errors_total", code="timeout")
    started = time.perf_counter()
    response = post(client, image_bytes(W, H))
    elapsed = time.perf_counter() - started
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"
    assert len(stand_in.received) == 2  # timeouts are retried within the budget, then given up
    assert elapsed < 3.0  # the client gave up at the read timeout (twice), it did not wait for an answer
    assert sample("carpose_upstream_errors_total", code="timeout") == before + 1


def test_dropped_connection(make_client: AppFactory, stand_in: StandIn) -> None:
    client = make_client(rekognition_total_max_attempts=2)
    stand_in.script(Scripted(drop=True), Scripted(drop=True))
    response = post(client, image_bytes(W, H))
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_unreachable"
    assert len(stand_in.received) == 2


def test_disabled_route(make_client: AppFactory, stand_in: StandIn) -> None:
    client = make_client(rekognition_enabled=False)
    response = post(client, image_bytes(W, H))
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "backend_disabled"
    assert "POSE_REKOGNITION_ENABLED=true" in error["message"]
    assert stand_in.received == []


# ----------------------------------------------------------------------------------- images sent upstream


def test_webp_is_reencoded(make_client: AppFactory, stand_in: StandIn) -> None:
    client = make_client()
    stand_in.script(Scripted(body=detect_labels_body(cars=[(SIDE_CAR, 98.0)], wheels=SIDE_WHEELS)))
    body = post(client, image_bytes(W, H, "WEBP", quality=80), name="car.webp").json()
    [request] = stand_in.received
    assert request.image_format == "JPEG" and request.image_size == (W, H)
    assert body["image"] == {"width": W, "height": H}
    assert_box(body["car"]["box"], pixels(SIDE_CAR, W, H))


def test_over_5_mb_upload_is_downscaled(make_client: AppFactory, stand_in: StandIn) -> None:
    width, height = 1500, 1250  # noisy PNG: ~5.6 MB, over Rekognition's 5 MiB, under the service's 10 MB
    upload = image_bytes(width, height, "PNG", noise=True, compress_level=1)
    assert IMAGE_MAX_BYTES < len(upload) < 10_000_000
    client = make_client()
    stand_in.script(Scripted(body=detect_labels_body(cars=[(SIDE_CAR, 98.0)], wheels=SIDE_WHEELS)))
    body = post(client, upload, name="big.png").json()
    [request] = stand_in.received
    assert request.image_format in ("JPEG", "PNG") and request.image_bytes <= IMAGE_MAX_BYTES
    sent_w, sent_h = request.image_size
    assert sent_w <= width and abs(sent_w / sent_h - width / height) < 0.01  # same aspect: ratios stay valid
    # Boxes come back as ratios of the image sent, and are given in pixels of the image uploaded.
    assert body["image"] == {"width": width, "height": height}
    assert_box(body["car"]["box"], pixels(SIDE_CAR, width, height))


def test_exif_rotated_jpeg_is_sent_upright(make_client: AppFactory, stand_in: StandIn) -> None:
    # Stored 320x240 with orientation 6 (rotate 90 degrees clockwise): the photo is 240x320, portrait.
    client = make_client()
    stand_in.script(Scripted(body=detect_labels_body(cars=[(SIDE_CAR, 98.0)], wheels=SIDE_WHEELS)))
    body = post(client, exif_rotated_jpeg(W, H, orientation=6)).json()
    [request] = stand_in.received
    assert request.image_size == (H, W) and request.exif_orientation == 1
    assert body["image"] == {"width": H, "height": W}
    assert_box(body["car"]["box"], pixels(SIDE_CAR, H, W))


# ----------------------------------------------------------------------------------- GET /backends


def test_backends_disabled(make_client: AppFactory) -> None:
    body = make_client(rekognition_enabled=False).get("/backends").json()
    assert [b["name"] for b in body["backends"]] == ["detectron2", "rekognition"]
    detectron, rekognition = body["backends"]
    assert detectron["enabled"] is True and detectron["route"] == "/pose" and detectron["pose"] == "full"
    assert detectron["label"] == "Detectron2 (this server's model)"
    assert rekognition == {
        "name": "rekognition",
        "label": "Amazon Rekognition",
        "enabled": False,
        "ready": False,
        "route": "/pose/rekognition",
        "pose": "partial",
        "hint": "set POSE_REKOGNITION_ENABLED=true (and give the service AWS credentials)",
    }


@pytest.mark.parametrize(("arn", "pose"), [(None, "partial"), (ARN, "full")])
def test_backends_enabled(make_client: AppFactory, arn: str | None, pose: str) -> None:
    client = make_client(rekognition_project_version_arn=arn)
    rekognition = client.get("/backends").json()["backends"][1]
    assert rekognition["enabled"] is True and rekognition["ready"] is True and rekognition["pose"] == pose
    assert (rekognition["hint"] is None) == (arn is not None)


def test_views_metric_counts_no_view(make_client: AppFactory, stand_in: StandIn) -> None:
    client = make_client()
    stand_in.script(Scripted(body=detect_labels_body(cars=[(SIDE_CAR, 98.0)], wheels=SIDE_WHEELS)))
    before = REGISTRY.get_sample_value("carpose_views_total", {"view": "none", "backend": "rekognition"}) or 0.0
    assert post(client, image_bytes(W, H)).status_code == 200
    assert REGISTRY.get_sample_value("carpose_views_total", {"view": "none", "backend": "rekognition"}) == before + 1


def test_upload_is_checked_before_the_call(make_client: AppFactory, stand_in: StandIn) -> None:
    client = make_client()
    response = post(client, b"not an image at all")
    assert response.status_code == 415
    assert stand_in.received == []
