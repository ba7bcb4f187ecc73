"""The service in a real uvicorn process on 127.0.0.1: readiness, real inference, limits on a real socket."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.uvicorn_server import Server, server_env, uvicorn_server
from tests.service.helpers import assert_error
from tests.service.images import exif_rotated_jpeg, jpeg_bytes

LIMIT = 100_000


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = server_env(tiny_model_dir, max_upload_bytes=str(LIMIT))
    log_path = tmp_path_factory.mktemp("uvicorn") / "uvicorn.log"
    with uvicorn_server(env, log_path) as running:
        print(f"\nuvicorn ready {running.ready_s:.2f} s after process start ({running.url})")
        yield running
    assert running.process.poll() is not None, "uvicorn still running after the fixture"


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60.0) as client:
        yield client


def test_ready_and_alive(http: httpx.Client) -> None:
    assert http.get("/healthz").status_code == 200
    assert http.get("/readyz").json() == {"status": "ok", "detail": None}
    assert http.get("/model").json()["name"] == "tiny_test_model"


def test_pose_over_a_real_socket(http: httpx.Client) -> None:
    response = http.post("/pose", files={"image": ("car.jpg", jpeg_bytes(320, 240), "image/jpeg")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["backend"] == "detectron2"
    assert body["image"] == {"width": 320, "height": 240}
    assert body["timings_ms"]["inference"] > 0


def test_exif_and_render_over_a_real_socket(http: httpx.Client) -> None:
    response = http.post(
        "/pose", params={"render": "true"}, files={"image": ("p.jpg", exif_rotated_jpeg(300, 200), "image/jpeg")}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["image"] == {"width": 200, "height": 300}
    assert body["rendered_image"].startswith("data:image/jpeg;base64,")


def test_bad_image_over_a_real_socket(http: httpx.Client) -> None:
    response = http.post("/pose", files={"image": ("a.txt", b"plain text", "text/plain")})
    assert_error(response, 415, "unsupported_media_type")


def test_declared_length_over_the_limit(http: httpx.Client) -> None:
    data = b"\xff\xd8\xff\xe0" + os.urandom(3 * LIMIT)
    assert_error(http.post("/pose", files={"image": ("big.jpg", data, "image/jpeg")}), 413, "upload_too_large")


def test_chunked_upload_without_content_length_over_the_limit(http: httpx.Client) -> None:
    boundary = "carposeboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="big.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + b"\xff\xd8\xff\xe0"
        + os.urandom(3 * LIMIT)
        + f"\r\n--{boundary}--\r\n".encode()
    )

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 16384):
            yield body[start : start + 16384]

    request = http.build_request(
        "POST", "/pose", content=chunks(), headers={"content-type": f"multipart/form-data; boundary={boundary}"}
    )
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    assert_error(http.send(request), 413, "upload_too_large")


def test_still_serving_after_the_refusals(http: httpx.Client) -> None:
    response = http.post("/pose", files={"image": ("car.jpg", jpeg_bytes(), "image/jpeg")})
    assert response.status_code == 200, response.text
    metrics = http.get("/metrics").text
    assert 'route="/pose"' in metrics and 'backend="detectron2"' in metrics
