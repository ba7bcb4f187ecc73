"""Hostile and impatient clients against a real uvicorn on 127.0.0.1: stalled bodies, lying Content-Length,
abandoned uploads, and clients that leave while queued (their requests never reach the model)."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.uvicorn_server import Server, server_env, uvicorn_server
from tests.service.helpers import BackgroundPosts
from tests.service.images import jpeg_bytes

BODY_TIMEOUT_S = 1.5
HEADER_TIMEOUT_S = 2.0
SLOWLORIS_CONNECTIONS = 200
BOUNDARY = "carposeboundary"


def multipart(data: bytes) -> bytes:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="car.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def request_head(server: Server, content_length: int) -> bytes:
    port = server.url.rsplit(":", 1)[1]
    return (
        f"POST /pose HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {content_length}\r\n\r\n"
    ).encode()


def connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def read_until_closed(sock: socket.socket, timeout_s: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    started = time.perf_counter()
    sock.settimeout(timeout_s)
    chunks = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks), time.perf_counter() - started
        chunks.append(chunk)


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = server_env(tiny_model_dir, body_timeout_s=str(BODY_TIMEOUT_S), header_timeout_s=str(HEADER_TIMEOUT_S))
    with uvicorn_server(env, tmp_path_factory.mktemp("uvicorn") / "uvicorn.log") as running:
        yield running


def test_slowloris_connections_are_closed_while_others_are_served(server: Server) -> None:
    """200 clients sending one header byte a second: each is closed within the header timeout + 5 s (most with
    a JSON 408), and a real client is answered meanwhile."""
    host, port = server.url.removeprefix("http://").split(":")
    started = time.perf_counter()
    pending: dict[socket.socket, bytes] = {}
    closed_after: list[float] = []
    for _ in range(SLOWLORIS_CONNECTIONS):
        sock = socket.create_connection((host, int(port)), timeout=30)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        sock.setblocking(False)
        pending[sock] = b""
    served = None
    next_byte = time.perf_counter() + 1.0
    deadline = started + HEADER_TIMEOUT_S + 5 + 5  # the assertion below is the stricter bound
    try:
        while pending and time.perf_counter() < deadline:
            readable, _, _ = select.select(list(pending), [], [], 0.05)
            for sock in readable:
                try:
                    chunk = sock.recv(65536)
                except OSError:
                    chunk = b""
                if chunk:
                    pending[sock] += chunk
                    continue
                answer = pending.pop(sock)
                sock.close()
                closed_after.append(time.perf_counter() - started)
                assert not answer or answer.startswith(b"HTTP/1.1 408"), answer[:200]
                assert not answer or b'"request_timeout"' in answer, answer
            if served is None and time.perf_counter() - started > 0.5:
                served = httpx.post(
                    f"{server.url}/pose", files={"image": ("a.jpg", jpeg_bytes(), "image/jpeg")}, timeout=30
                ).status_code
            if time.perf_counter() >= next_byte:
                next_byte += 1.0
                for sock in list(pending):
                    with contextlib.suppress(OSError):  # closed by the server: the next select sees it
                        sock.send(b"a")
    finally:
        for sock in pending:
            sock.close()
    assert not pending, f"{len(pending)} slowloris connections still open"
    assert served == 200
    assert max(closed_after) < HEADER_TIMEOUT_S + 5, max(closed_after)


def test_the_servers_own_protocol_errors_are_json(server: Server) -> None:
    with connect(server) as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        response, _ = read_until_closed(sock, 10)
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), response[:200]
    assert json.loads(body)["error"]["code"] == "invalid_request"


def test_a_declared_body_over_the_limit_is_refused_and_the_connection_closed(server: Server) -> None:
    """The 413 comes from the head alone, and the server closes rather than reading 50 MB it will discard."""
    with connect(server) as sock:
        sock.sendall(request_head(server, 50_000_000))
        response, elapsed = read_until_closed(sock, 10)
    assert response.startswith(b"HTTP/1.1 413"), response[:200]
    assert b"connection: close" in response.lower() and elapsed < 5


def test_a_stalled_body_gets_408_and_the_connection_is_closed(server: Server) -> None:
    body = multipart(jpeg_bytes())
    with connect(server) as sock:
        sock.sendall(request_head(server, len(body)) + body[: len(body) // 2])  # then nothing
        response, elapsed = read_until_closed(sock, BODY_TIMEOUT_S + 10)
    assert response.startswith(b"HTTP/1.1 408"), response[:200]
    assert b'"request_timeout"' in response
    assert elapsed < BODY_TIMEOUT_S + 5  # answered and closed within the timeout + 5 s


def test_a_lying_content_length_gets_an_answer(server: Server) -> None:
    body = multipart(jpeg_bytes())
    with connect(server) as sock:
        sock.sendall(request_head(server, len(body) + 5000) + body)  # the whole body, but 5000 bytes fewer
        response, elapsed = read_until_closed(sock, BODY_TIMEOUT_S + 10)
    assert response.startswith(b"HTTP/1.1 408"), response[:200]
    assert elapsed < BODY_TIMEOUT_S + 5


def test_a_slow_trickle_is_cut_off_at_the_timeout(server: Server) -> None:
    body = multipart(jpeg_bytes())
    with connect(server) as sock:
        sock.sendall(request_head(server, len(body)))
        started = time.perf_counter()
        answered = b""
        sock.settimeout(0.25)
        for i in range(len(body)):  # one byte every 0.25 s would take hours
            try:
                sock.sendall(body[i : i + 1])
                answered = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if answered:
                break
        elapsed = time.perf_counter() - started
    assert answered.startswith(b"HTTP/1.1 408"), answered[:200]
    assert elapsed < BODY_TIMEOUT_S + 5


def test_an_abandoned_upload_is_counted_as_a_disconnect_not_an_error(server: Server) -> None:
    before_gone = server.metric("carpose_client_disconnects_total", stage="upload")
    before_errors = server.metric("carpose_errors_total")
    before_500 = server.metric("carpose_request_duration_seconds_count", status="500")
    before_499 = server.metric("carpose_request_duration_seconds_count", status="499")
    body = multipart(jpeg_bytes())
    with connect(server) as sock:
        sock.sendall(request_head(server, len(body)) + body[:100])
    deadline = time.perf_counter() + 10
    while server.metric("carpose_client_disconnects_total", stage="upload") == before_gone:
        assert time.perf_counter() < deadline, "the disconnect was never counted"
        time.sleep(0.05)
    assert server.metric("carpose_client_disconnects_total", stage="upload") == before_gone + 1
    assert server.metric("carpose_errors_total") == before_errors
    # In the latency histogram it is a 499 (client closed the request), never a 500 of ours.
    assert server.metric("carpose_request_duration_seconds_count", status="500") == before_500
    assert server.metric("carpose_request_duration_seconds_count", status="499") == before_499 + 1


def test_stalled_uploads_do_not_take_the_models_places(server: Server) -> None:
    """More stalled uploads than the gate has places: a complete request is still served at once."""
    body = multipart(jpeg_bytes())
    stalled = [connect(server) for _ in range(12)]  # the gate has 1 worker + 8 queue places
    try:
        for sock in stalled:
            sock.sendall(request_head(server, len(body)) + body[:200])
        time.sleep(0.2)
        response = httpx.post(f"{server.url}/pose", files={"image": ("a.jpg", jpeg_bytes(), "image/jpeg")}, timeout=30)
        assert response.status_code == 200, response.text
    finally:
        for sock in stalled:
            sock.close()


def test_still_serving_after_the_hostile_clients(server: Server) -> None:
    response = httpx.post(f"{server.url}/pose", files={"image": ("a.jpg", jpeg_bytes(), "image/jpeg")}, timeout=60)
    assert response.status_code == 200, response.text


# Cancellation needs a model slow enough to queue behind: the default model (about 0.5 s a call on one thread).


@pytest.fixture(scope="module")
def default_server(default_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # PyTorch, not the default OpenVINO engine: on a quiet machine OpenVINO answers the three requests that stay
    # before all six leavers are queued behind them; the test is about the queue, not the engine.
    env = server_env(default_model_dir, inference_workers="1", max_queue="8", engine="torch")
    with uvicorn_server(env, tmp_path_factory.mktemp("uvicorn") / "uvicorn.log") as running:
        yield running


def test_requests_abandoned_while_queued_never_reach_the_model(default_server: Server) -> None:
    server = default_server
    inference_calls = {"name": "carpose_stage_duration_seconds_count", "stage": "inference"}
    calls_before = server.metric(**inference_calls)
    gone_before = server.metric("carpose_client_disconnects_total")
    data = jpeg_bytes(640, 480)
    # Three requests that stay: one runs, two queue ahead of the ones that will leave (the queue is FIFO).
    busy = BackgroundPosts(server.url, data, 3)
    time.sleep(0.3)
    body = multipart(data)
    leavers = [connect(server) for _ in range(6)]
    for sock in leavers:
        sock.sendall(request_head(server, len(body)) + body)
    deadline = time.perf_counter() + 30
    while server.metric("carpose_queue_depth", backend="detectron2") < 8:  # 2 staying + 6 leaving, all waiting
        assert time.perf_counter() < deadline, "the requests never queued"
        time.sleep(0.02)
    for sock in leavers:
        sock.close()
    assert busy.statuses() == [200, 200, 200]
    deadline = time.perf_counter() + 10
    while server.metric("carpose_client_disconnects_total") < gone_before + 6:
        assert time.perf_counter() < deadline, "the disconnects were never counted"
        time.sleep(0.05)
    assert server.metric(**inference_calls) == calls_before + 3  # only the requests that stayed ran
    assert server.metric("carpose_client_disconnects_total", stage="queued") >= 1
