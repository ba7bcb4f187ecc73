"""Bounded queue: with every worker busy and the queue full, 503 `overloaded` with Retry-After at once."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from service.api.errors import PoseError, http_headers, http_status
from service.gate import InferenceGate
from tests.service.helpers import assert_error
from tests.service.images import jpeg_bytes

# InferenceGate on its own, with asyncio.


async def hold_slot(gate: InferenceGate, entered: asyncio.Event, release: asyncio.Event) -> str:
    async with gate.slot():
        entered.set()
        await release.wait()
    return "done"


def test_gate_refuses_when_workers_and_queue_are_full() -> None:
    async def scenario() -> None:
        gate = InferenceGate(workers=1, max_queue=1)
        try:
            entered_a, entered_b, release = asyncio.Event(), asyncio.Event(), asyncio.Event()
            a = asyncio.create_task(hold_slot(gate, entered_a, release))
            await entered_a.wait()
            b = asyncio.create_task(hold_slot(gate, entered_b, release))
            await asyncio.sleep(0.01)
            assert gate.waiting == 1 and not entered_b.is_set()  # b queued behind a

            with pytest.raises(PoseError) as refused:
                async with gate.slot():
                    pytest.fail("a third request must not get a slot")
            assert http_status(refused.value) == 503
            assert refused.value.code == "overloaded"
            assert int(http_headers(refused.value)["Retry-After"]) >= 1

            release.set()
            assert await asyncio.wait_for(asyncio.gather(a, b), 5) == ["done", "done"]
            assert gate.waiting == 0
            async with gate.slot():  # free again
                pass
        finally:
            gate.shutdown()

    asyncio.run(scenario())


def test_gate_with_no_queue_refuses_while_busy() -> None:
    async def scenario() -> None:
        gate = InferenceGate(workers=2, max_queue=0)
        try:
            entered = [asyncio.Event(), asyncio.Event()]
            release = asyncio.Event()
            tasks = [asyncio.create_task(hold_slot(gate, e, release)) for e in entered]
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in entered)), 5)  # two workers: both run
            with pytest.raises(PoseError) as refused:
                async with gate.slot():
                    pass
            assert refused.value.code == "overloaded"
            release.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 5)
        finally:
            gate.shutdown()

    asyncio.run(scenario())


def test_gate_runs_calls_on_its_own_threads_and_learns_latency() -> None:
    async def scenario() -> None:
        gate = InferenceGate(workers=1, max_queue=2, name="testgate")
        try:
            async with gate.slot():
                name = await gate.run(lambda: (time.sleep(0.05), threading.current_thread().name)[1])
            assert name.startswith("testgate-worker")
            assert gate.retry_after_s() >= 1
            with pytest.raises(ZeroDivisionError):
                async with gate.slot():
                    await gate.run(lambda: 1 / 0)
            async with gate.slot():  # an exception in a call releases its slot
                assert await gate.run(lambda: 42) == 42
        finally:
            gate.shutdown()

    asyncio.run(scenario())


# The same at the HTTP level: one slow request in flight, no queue.


def test_http_503_overloaded_while_a_slow_request_runs(make_client, monkeypatch: pytest.MonkeyPatch) -> None:
    entered, release = threading.Event(), threading.Event()
    with make_client(max_queue=0, inference_workers=1) as client:
        backend = client.app.state.model.backend
        real_detect = backend.detect

        def slow_detect(image):
            entered.set()
            release.wait(60)
            return real_detect(image)

        monkeypatch.setattr(backend, "detect", slow_detect)
        data = jpeg_bytes()
        with ThreadPoolExecutor(1) as pool:
            try:
                first = pool.submit(client.post, "/pose", files={"image": ("a.jpg", data, "image/jpeg")})
                assert entered.wait(30), "the first request never reached the model"

                started = time.perf_counter()
                second = client.post("/pose", files={"image": ("b.jpg", data, "image/jpeg")})
                elapsed = time.perf_counter() - started
                assert_error(second, 503, "overloaded")
                assert int(second.headers["retry-after"]) >= 1
                assert elapsed < 5.0, elapsed  # refused at once, not after the first request finished
                assert not first.done()
            finally:
                release.set()
            assert first.result(timeout=60).status_code == 200

        third = client.post("/pose", files={"image": ("c.jpg", data, "image/jpeg")})
        assert third.status_code == 200, third.text
