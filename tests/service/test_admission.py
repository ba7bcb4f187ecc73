"""Admission before work: refusals read no body, Retry-After follows the observed service time and backlog."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest

from service.api.errors import ClientGone, PoseError, http_status
from service.api.middleware import AdmissionMiddleware
from service.gate import InferenceGate


def app_state(gate: InferenceGate, model: SimpleNamespace) -> SimpleNamespace:
    """The app state the middleware reads: the loaded model and the local model's gate (in `Serving.gates`)."""
    return SimpleNamespace(serving=SimpleNamespace(gates={"detectron2": gate}), model=model)


def pose_scope(state: Any, path: str = "/pose") -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(b"content-length", b"1000000")],
        "app": SimpleNamespace(state=state),
        "state": {},
    }


class Probe:
    """The inner app, `receive` and `send` of one request through the middleware, recording what they saw."""

    def __init__(self, body: bytes = b"x" * 1000, more_body: bool = True) -> None:
        self.sent: list[dict] = []
        self.receive_calls = 0
        self.app_called = False
        self._chunk = {"type": "http.request", "body": body, "more_body": more_body}

    async def app(self, scope, receive, send) -> None:
        self.app_called = True

    async def receive(self) -> dict:
        self.receive_calls += 1
        return self._chunk

    async def send(self, message: dict) -> None:
        self.sent.append(message)

    def seen(self) -> dict[str, Any]:
        return {"app_called": self.app_called, "receive_calls": self.receive_calls}


def run_admission(
    gate: InferenceGate, model_status: str = "ok", refusal_delay_s: float = 0.0
) -> tuple[list[dict], dict[str, Any]]:
    """One request through AdmissionMiddleware; returns what it sent and what the inner app and receive saw."""
    probe = Probe()
    model = SimpleNamespace(status=model_status, backend=object() if model_status == "ok" else None, error="boom")
    state = app_state(gate, model)
    middleware = AdmissionMiddleware(probe.app, body_timeout_s=5.0, refusal_delay_s=refusal_delay_s)
    asyncio.run(middleware(pose_scope(state), probe.receive, probe.send))
    return probe.sent, probe.seen()


def test_a_full_gate_refuses_without_reading_the_body() -> None:
    gate = InferenceGate(workers=1, max_queue=1)
    try:
        gate.admit()
        gate.admit()  # one running, one waiting: full
        sent, seen = run_admission(gate)
        assert sent[0]["status"] == 503
        assert b'"overloaded"' in sent[1]["body"]
        headers = dict(sent[0]["headers"])
        assert int(headers[b"retry-after"]) >= 1
        assert seen == {"app_called": False, "receive_calls": 0}  # no body read, no parse, no decode
        assert gate.admitted == 2  # a refusal takes no place
    finally:
        gate.shutdown()


def test_an_overloaded_refusal_is_held_for_the_refusal_delay() -> None:
    gate = InferenceGate(workers=1, max_queue=0)
    try:
        gate.admit()
        started = time.perf_counter()
        sent, seen = run_admission(gate, refusal_delay_s=0.4)
        assert time.perf_counter() - started >= 0.4  # a client that resends at once cannot spin faster than this
        assert sent[0]["status"] == 503 and seen["receive_calls"] == 0
    finally:
        gate.shutdown()


@pytest.mark.parametrize(("status", "code"), [("loading", "model_loading"), ("failed", "model_unavailable")])
def test_a_model_that_is_not_ready_refuses_without_reading_the_body(status: str, code: str) -> None:
    gate = InferenceGate(workers=1, max_queue=1)
    try:
        sent, seen = run_admission(gate, model_status=status)
        assert sent[0]["status"] == 503 and code.encode() in sent[1]["body"]
        assert seen["receive_calls"] == 0 and not seen["app_called"]
    finally:
        gate.shutdown()


def test_an_admitted_request_holds_its_place_until_it_answers() -> None:
    gate = InferenceGate(workers=1, max_queue=0)
    try:
        sent, seen = run_admission(gate)
        assert seen["app_called"] and sent == []  # the inner app answered nothing; the place is given back
        assert gate.admitted == 0
    finally:
        gate.shutdown()


def test_draining_gate_refuses_with_shutting_down() -> None:
    gate = InferenceGate(workers=1, max_queue=4)
    try:
        gate.draining = True
        with pytest.raises(PoseError) as refused:
            gate.admit()
        assert http_status(refused.value) == 503 and refused.value.code == "shutting_down"
    finally:
        gate.shutdown()


def test_retry_after_follows_service_time_and_backlog() -> None:
    async def scenario() -> None:
        gate = InferenceGate(workers=1, max_queue=10)
        try:
            for _ in range(5):
                async with gate.slot():
                    await gate.run(lambda: time.sleep(0.3))
            assert 0.3 <= gate.service_seconds() < 1.0  # learnt from the calls (the first guess was 1 s)
            for _ in range(8):
                gate.admit()
            # 8 admitted x ~0.45 s / 1 worker: a few seconds, not the constant 1 s of an idle gate.
            assert 3 <= gate.retry_after_s() <= 8
            for _ in range(8):
                gate.release()
            assert gate.retry_after_s() == 1
        finally:
            gate.shutdown()

    asyncio.run(scenario())


def test_retry_after_counts_a_call_that_is_still_running() -> None:
    """A hung upstream (black-holed endpoint) must not keep advertising the last quick call's latency."""

    async def scenario() -> None:
        gate = InferenceGate(workers=1, max_queue=4)
        try:
            release = asyncio.Event()

            async def hung() -> None:
                async with gate.slot():
                    await release.wait()

            task = asyncio.create_task(hung())
            await asyncio.sleep(1.6)
            assert gate.service_seconds() >= 1.5
            assert gate.retry_after_s() >= 2
            release.set()
            await task
        finally:
            gate.shutdown()

    asyncio.run(scenario())


def test_a_queued_request_whose_client_left_never_gets_the_slot() -> None:
    async def scenario() -> None:
        gate = InferenceGate(workers=1, max_queue=4)
        calls: list[str] = []
        try:
            release = asyncio.Event()

            async def holder() -> None:
                async with gate.slot():
                    await release.wait()

            async def queued(gone: asyncio.Event) -> None:
                async with gate.slot(gone):
                    calls.append("model")

            first = asyncio.create_task(holder())
            await asyncio.sleep(0.01)
            gone = asyncio.Event()
            second = asyncio.create_task(queued(gone))
            await asyncio.sleep(0.01)
            assert gate.waiting == 1
            gone.set()  # the client disconnects while queued
            with pytest.raises(ClientGone):
                await asyncio.wait_for(second, 5)
            release.set()
            await first
            assert calls == [] and gate.admitted == 0
            async with gate.slot():  # the slot was not leaked
                pass
        finally:
            gate.shutdown()

    asyncio.run(scenario())


def test_too_many_uploads_at_once_are_refused_before_the_body() -> None:
    gate = InferenceGate(workers=1, max_queue=4)
    probe = Probe(body=b"", more_body=False)
    try:
        middleware = AdmissionMiddleware(probe.app, body_timeout_s=5.0, max_uploads=2)
        # Two uploads in progress that are receiving data: not stalled, so neither gives way.
        middleware.uploads = [SimpleNamespace(evicted=asyncio.Event(), last_activity=float("inf")) for _ in "ab"]
        state = app_state(gate, SimpleNamespace(status="ok", backend=object(), error=None))
        asyncio.run(middleware(pose_scope(state), probe.receive, probe.send))
        assert probe.sent[0]["status"] == 503 and b'"overloaded"' in probe.sent[1]["body"]
        assert probe.seen() == {"app_called": False, "receive_calls": 0} and gate.admitted == 0
    finally:
        gate.shutdown()


def test_a_body_that_completes_when_the_gate_is_full_gets_503_without_a_decode() -> None:
    gate = InferenceGate(workers=1, max_queue=0)
    sent: list[dict] = []
    decoded = False

    async def app(scope, receive, send) -> None:
        nonlocal decoded
        try:
            while (await receive()).get("more_body"):
                pass
        except PoseError:
            # What FastAPI does with an exception from receive(): a 400, which the middleware replaces.
            await send({"type": "http.response.start", "status": 400, "headers": []})
            await send({"type": "http.response.body", "body": b"parse error"})
            return
        decoded = True

    chunks = [{"type": "http.request", "body": b"a", "more_body": True}, {"type": "http.request", "body": b"b"}]

    async def receive() -> dict:
        if len(chunks) == 1:
            gate.admit()  # another request completed its upload first and took the last place
        return chunks.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    try:
        middleware = AdmissionMiddleware(app, body_timeout_s=5.0)
        state = app_state(gate, SimpleNamespace(status="ok", backend=object(), error=None))
        asyncio.run(middleware(pose_scope(state), receive, send))
        assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [503]
        assert b'"overloaded"' in sent[-1]["body"] and not decoded
        assert gate.admitted == 1 and middleware.uploading == 0  # only the other request's place
    finally:
        gate.shutdown()


def test_a_stalled_upload_gives_its_place_to_a_new_request() -> None:
    gate = InferenceGate(workers=1, max_queue=4)
    served = []

    async def app(scope, receive, send) -> None:
        await receive()
        served.append(scope["path"])

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        raise AssertionError("nothing to send: the inner app answers nothing here")

    try:
        middleware = AdmissionMiddleware(app, body_timeout_s=30.0, max_uploads=2)
        stalled = SimpleNamespace(evicted=asyncio.Event(), last_activity=float("-inf"), uploading=True)
        busy = SimpleNamespace(evicted=asyncio.Event(), last_activity=float("inf"), uploading=True)
        middleware.uploads = [busy, stalled]
        state = app_state(gate, SimpleNamespace(status="ok", backend=object(), error=None))
        asyncio.run(middleware(pose_scope(state), receive, send))
        assert served == ["/pose"]
        assert stalled.evicted.is_set() and not busy.evicted.is_set()  # the one that received nothing gave way
        assert middleware.uploads == [busy]
    finally:
        gate.shutdown()


def test_the_sagemaker_route_is_admitted_like_pose_when_served() -> None:
    gate = InferenceGate(workers=1, max_queue=1)
    probe = Probe(body=b"", more_body=False)
    try:
        middleware = AdmissionMiddleware(probe.app, body_timeout_s=5.0, gates={"/invocations": "detectron2"})
        state = app_state(gate, SimpleNamespace(status="loading", backend=None, error=None))
        asyncio.run(middleware(pose_scope(state, "/invocations"), probe.receive, probe.send))
        assert probe.sent[0]["status"] == 503 and b'"model_loading"' in probe.sent[1]["body"]
        assert probe.seen() == {"app_called": False, "receive_calls": 0}
    finally:
        gate.shutdown()
