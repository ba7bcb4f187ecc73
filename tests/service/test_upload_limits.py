"""413 upload_too_large: checked on the declared Content-Length, on the bytes actually received, and on the file."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.api.middleware import MULTIPART_ENVELOPE_BYTES, BodySizeLimitMiddleware
from tests.service.helpers import assert_error
from tests.service.images import jpeg_bytes

LIMIT = 50_000


@pytest.fixture(scope="module")
def small_limit_client(make_client) -> Iterator[TestClient]:
    with make_client(max_upload_bytes=LIMIT) as client:
        yield client


def jpeg_like(size: int) -> bytes:
    return b"\xff\xd8\xff\xe0" + os.urandom(size - 4)


def multipart_body(data: bytes, boundary: str = "carposeboundary") -> tuple[bytes, str]:
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="car.jpg"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def test_image_under_the_limit_is_served(small_limit_client: TestClient) -> None:
    data = jpeg_bytes(160, 120)
    assert len(data) < LIMIT
    response = small_limit_client.post("/pose", files={"image": ("car.jpg", data, "image/jpeg")})
    assert response.status_code == 200, response.text


def test_file_over_the_limit_within_the_envelope_is_413(small_limit_client: TestClient) -> None:
    # The body passes the middleware (limit + multipart envelope) but the file itself is over the limit.
    response = small_limit_client.post("/pose", files={"image": ("car.jpg", jpeg_like(LIMIT + 1000), "image/jpeg")})
    body = assert_error(response, 413, "upload_too_large")
    assert str(LIMIT) in body["error"]["message"]


def test_declared_content_length_over_the_limit_is_413(small_limit_client: TestClient) -> None:
    response = small_limit_client.post("/pose", files={"image": ("car.jpg", jpeg_like(4 * LIMIT), "image/jpeg")})
    body = assert_error(response, 413, "upload_too_large")
    assert body["error"]["message"] == f"the upload is over the limit of {LIMIT} bytes"  # the middleware's


def test_chunked_body_over_the_limit_is_413(small_limit_client: TestClient) -> None:
    body, content_type = multipart_body(jpeg_like(4 * LIMIT))

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    response = small_limit_client.post("/pose", content=chunks(), headers={"content-type": content_type})
    assert_error(response, 413, "upload_too_large")


# The middleware on its own, at the ASGI level: what it reads and what it lets through.


def run_middleware(headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[list[dict], dict]:
    seen = {"app_called": False, "received": 0, "receive_calls": 0}
    sent: list[dict] = []

    async def app(scope, receive, send) -> None:
        seen["app_called"] = True
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RuntimeError("client went away")  # what a real body parser does
            seen["received"] += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    queue = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1} for i, chunk in enumerate(chunks)
    ]

    async def receive() -> dict:
        seen["receive_calls"] += 1
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/pose", "headers": headers}
    asyncio.run(BodySizeLimitMiddleware(app, max_upload_bytes=LIMIT)(scope, receive, send))
    return sent, seen


def test_middleware_refuses_a_declared_length_without_reading_the_body() -> None:
    too_big = str(LIMIT + MULTIPART_ENVELOPE_BYTES + 1).encode()
    sent, seen = run_middleware([(b"content-length", too_big)], [b"x" * 10])
    assert not seen["app_called"] and seen["receive_calls"] == 0
    assert sent[0]["status"] == 413


def test_middleware_counts_bytes_when_the_declared_length_lies() -> None:
    chunks = [b"x" * 16384] * ((LIMIT + MULTIPART_ENVELOPE_BYTES) // 16384 + 2)
    sent, seen = run_middleware([(b"content-length", b"100")], chunks)
    assert seen["app_called"]
    assert seen["received"] <= LIMIT + MULTIPART_ENVELOPE_BYTES
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [413]


def test_middleware_passes_a_body_within_the_limit() -> None:
    sent, seen = run_middleware([], [b"x" * 1000, b"y" * 1000])
    assert seen["received"] == 2000
    assert sent[0]["status"] == 200
