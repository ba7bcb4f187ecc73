"""Dynamic batching: the gate's grouping, cancellation and admission, and answers that batching does not change."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from service.api.errors import ClientGone
from service.backends.detectron import DetectronBackend
from service.gate import BatchPolicy, InferenceGate, batch_policy
from service.metrics import REGISTRY
from service.postprocess import Detection, PoseConfig, estimate_pose
from service.settings import Settings
from tests.service.images import car_like_array, jpeg_bytes


class Recorder:
    """A batch function that records each call's items; `hold` blocks the calls until released."""

    def __init__(self, hold: bool = False) -> None:
        self.calls: list[list[int]] = []
        self.started = threading.Event()
        self.release = threading.Event()
        if not hold:
            self.release.set()

    def __call__(self, items: Sequence[int]) -> list[int]:
        self.calls.append(list(items))
        self.started.set()
        self.release.wait(10)
        if any(i < 0 for i in items):
            raise ValueError("negative item")
        return [i * 10 for i in items]


def batch_count(backend: str) -> float:
    return REGISTRY.get_sample_value("carpose_batch_size_count", {"backend": backend}) or 0.0


async def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


def test_requests_within_the_timeout_share_one_call_and_get_their_own_answer() -> None:
    async def scenario() -> None:
        gate = InferenceGate(workers=1, max_queue=8, name="batch-test-1")
        call = Recorder()
        before = batch_count("batch-test-1")
        results = await asyncio.gather(
            *(gate.run_batched(i, call, BatchPolicy(max_size=4, timeout_s=0.5)) for i in range(4))
        )
        assert results == [0, 10, 20, 30]
        assert call.calls == [[0, 1, 2, 3]]  # full: no need to wait out the timeout
        assert batch_count("batch-test-1") == before + 1
        assert gate.admitted == 0 and gate.waiting == 0
        gate.shutdown()

    asyncio.run(scenario())


def test_batches_never_exceed_the_maximum_and_queued_requests_go_together() -> None:
    async def scenario() -> None:
        gate = InferenceGate(workers=1, max_queue=8, name="batch-test-2")
        call = Recorder(hold=True)
        policy = BatchPolicy(max_size=3, timeout_s=0.0)
        first = asyncio.ensure_future(gate.run_batched(0, call, policy))
        await _until(call.started.is_set)  # the worker is busy with [0]
        rest = [asyncio.ensure_future(gate.run_batched(i, call, policy)) for i in range(1, 6)]
        await _until(lambda: gate.waiting == 5)
        call.release.set()
        assert await asyncio.gather(first, *rest) == [0, 10, 20, 30, 40, 50]
        assert call.calls == [[0], [1, 2, 3], [4, 5]]
        gate.shutdown()

    asyncio.run(scenario())


def test_size_one_is_one_request_per_call() -> None:
    async def scenario() -> None:
        gate = InferenceGate(workers=1, max_queue=8, name="batch-test-3")
        call = Recorder()
        results = await asyncio.gather(*(gate.run_batched(i, call, BatchPolicy(1, 0.5)) for i in range(3)))
        assert results == [0, 10, 20]
        assert call.calls == [[0], [1], [2]]
        gate.shutdown()

    asyncio.run(scenario())


def test_a_request_whose_client_left_before_its_batch_formed_is_not_in_it() -> None:
    async def scenario() -> None:
        gate = InferenceGate(workers=1, max_queue=8, name="batch-test-4")
        call = Recorder(hold=True)
        policy = BatchPolicy(max_size=4, timeout_s=0.0)
        first = asyncio.ensure_future(gate.run_batched(0, call, policy))
        await _until(call.started.is_set)
        gone = [asyncio.Event() for _ in range(3)]
        queued = [asyncio.ensure_future(gate.run_batched(i + 1, call, policy, gone[i])) for i in range(3)]
        await _until(lambda: gate.waiting == 3)
        gone[1].set()  # the client of item 2 leaves while the worker is busy
        with pytest.raises(ClientGone):
            await queued[1]
        call.release.set()
        assert await first == 0
        assert [await queued[0], await queued[2]] == [10, 30]
        assert call.calls == [[0], [1, 3]]
        assert gate.admitted == 0
        gate.shutdown()

    asyncio.run(scenario())


def test_admission_limits_hold_for_batched_requests() -> None:
    async def scenario() -> None:
        gate = InferenceGate(workers=1, max_queue=1, name="batch-test-5")
        call = Recorder(hold=True)
        policy = BatchPolicy(max_size=4, timeout_s=0.0)
        running = asyncio.ensure_future(gate.run_batched(0, call, policy))
        await _until(call.started.is_set)
        waiting = asyncio.ensure_future(gate.run_batched(1, call, policy))
        await _until(lambda: gate.waiting == 1)
        with pytest.raises(Exception) as refused:  # workers + queue are taken: refused at once
            await gate.run_batched(2, call, policy)
        assert getattr(refused.value, "code", None) == "overloaded"
        call.release.set()
        assert await asyncio.gather(running, waiting) == [0, 10]
        gate.shutdown()

    asyncio.run(scenario())


def test_one_failing_item_fails_only_its_own_request() -> None:
    async def scenario() -> None:
        gate = InferenceGate(workers=1, max_queue=8, name="batch-test-6")
        call = Recorder()
        results = await asyncio.gather(
            *(gate.run_batched(i, call, BatchPolicy(3, 0.5)) for i in (1, -1, 2)), return_exceptions=True
        )
        assert results[0] == 10 and results[2] == 20
        assert isinstance(results[1], ValueError)
        assert call.calls[0] == [1, -1, 2]  # the batch failed, then each item ran alone
        gate.shutdown()

    asyncio.run(scenario())


def test_device_defaults() -> None:
    settings = Settings()
    assert batch_policy(settings, "cpu").max_size == 1
    # A waiting request holds its decoded image, so the CUDA default stops at POSE_MAX_DECODED_IMAGES.
    assert batch_policy(settings, "cuda").max_size == min(8, settings.max_decoded_images)
    assert batch_policy(Settings(max_decoded_images=16), "cuda:0").max_size == 8
    explicit = batch_policy(Settings(batch_max_size=6, batch_timeout_ms=2.5), "cpu")
    assert explicit == BatchPolicy(max_size=6, timeout_s=0.0025)


def _assert_same_detections(alone: list[Detection], batched: list[Detection]) -> None:
    # Same detections: batched convolutions may sum in another order, so boxes can move by ~1e-4 px.
    assert [d.label for d in alone] == [d.label for d in batched]
    for a, b in zip(alone, batched, strict=True):
        assert np.allclose(a.box, b.box, atol=1e-2), (a.box, b.box)
        assert abs(a.score - b.score) < 1e-4
        if a.mask is not None:
            assert b.mask is not None and np.mean(a.mask != b.mask) < 1e-3
        assert a.view_probs == pytest.approx(b.view_probs, abs=1e-5) if a.view_probs else not b.view_probs


def _assert_same_pose(alone: list[Detection], batched: list[Detection], size: tuple[int, int]) -> None:
    one, many = estimate_pose(alone, size, PoseConfig()), estimate_pose(batched, size, PoseConfig())
    assert (one.view, one.coarse_view, one.reason, one.cars_detected) == (
        many.view,
        many.coarse_view,
        many.reason,
        many.cars_detected,
    )
    for a, b in ((one.azimuth_deg, many.azimuth_deg), (one.tilt_deg, many.tilt_deg)):
        assert (a is None and b is None) or abs(a - b) < 0.05  # type: ignore[operator]


def test_tiny_model_answers_are_the_same_batched_and_alone(tiny_model_dir: Path) -> None:
    backend = DetectronBackend(tiny_model_dir, device="cpu", score_threshold=0.0)  # every detection compared
    # Three of one size share a model call; the fourth's size gets a call of its own.
    images = [car_like_array(320, 240, seed) for seed in range(3)] + [car_like_array(200, 300, 7)]
    alone = [backend.detect_array(image) for image in images]
    batched = backend.detect_arrays(images)
    assert any(alone), "the tiny model found nothing: the comparison would be empty"
    for image, one, many in zip(images, alone, batched, strict=True):
        _assert_same_detections(one, many)
        _assert_same_pose(one, many, (image.shape[1], image.shape[0]))


def test_default_model_answers_are_the_same_batched_and_alone(default_backend: DetectronBackend) -> None:
    from models.paths import DEFAULT_TURNTABLE_DIR

    files = sorted(DEFAULT_TURNTABLE_DIR.glob("*.jpg"))[::21][:3]
    if len(files) < 3:
        pytest.skip("turntable photos not found")
    images = [np.asarray(Image.open(f).convert("RGB").reduce(2)) for f in files]
    alone = [default_backend.detect_array(image) for image in images]
    batched = default_backend.detect_arrays(images)
    assert all(alone)
    for image, one, many in zip(images, alone, batched, strict=True):
        _assert_same_detections(one, many)
        _assert_same_pose(one, many, (image.shape[1], image.shape[0]))


def test_batched_http_requests_get_the_answers_they_get_alone(make_client: Callable[..., object]) -> None:
    uploads = [jpeg_bytes(320, 240, seed) for seed in range(4)]

    def poses(client: object, parallel: int) -> list[dict[str, object]]:
        def one(data: bytes) -> dict[str, object]:
            response = client.post("/pose", files={"image": ("car.jpg", data, "image/jpeg")})  # type: ignore[attr-defined]
            assert response.status_code == 200, response.text
            body = response.json()
            body.pop("timings_ms")
            return body

        with ThreadPoolExecutor(parallel) as pool:
            return list(pool.map(one, uploads))

    with make_client(batch_max_size=1) as client:
        alone = poses(client, 1)
    before = REGISTRY.get_sample_value("carpose_batch_size_sum", {"backend": "detectron2"}) or 0.0
    calls_before = batch_count("detectron2")
    # A long timeout: the four requests decode at their own pace and still meet in the first batch.
    with make_client(batch_max_size=4, batch_timeout_ms=1000, max_decoded_images=4) as client:
        batched = poses(client, 4)
    images = (REGISTRY.get_sample_value("carpose_batch_size_sum", {"backend": "detectron2"}) or 0.0) - before
    calls = batch_count("detectron2") - calls_before
    assert images == 4 and calls < 4, f"{images} images in {calls} calls: nothing was batched"
    assert batched == alone
