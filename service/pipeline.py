"""The request pipeline every pose route shares: decode -> detect -> postprocess -> (render) -> response."""

from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool

from .backends.base import DetectionBackend
from .gate import InferenceGate
from .imaging import DecodedImage, decode_upload
from .metrics import STAGE_DURATION, VIEWS
from .postprocess import PoseConfig, PoseEstimate, estimate_pose
from .render import jpeg_data_url, render_pose
from .schemas import CarOut, ImageOut, ModelOut, PartOut, PoseResponse, WheelOut
from .settings import Settings


class StageClock:
    """Milliseconds per stage for the response, seconds per stage for Prometheus."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.started = time.perf_counter()
        self._mark = self.started
        self.timings_ms: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        seconds = now - self._mark
        self._mark = now
        self.timings_ms[stage] = round(seconds * 1000.0, 2)
        STAGE_DURATION.labels(stage=stage, backend=self.backend).observe(seconds)

    def total(self) -> dict[str, float]:
        return {**self.timings_ms, "total": round((time.perf_counter() - self.started) * 1000.0, 2)}


async def decode(data: bytes, settings: Settings) -> DecodedImage:
    # Decoding a 40 MP JPEG takes ~0.3 s: keep it off the event loop.
    return await run_in_threadpool(decode_upload, data, settings.max_upload_bytes, settings.max_image_pixels)


async def pose_from_upload(
    data: bytes, backend: DetectionBackend, gate: InferenceGate, settings: Settings, render: bool
) -> PoseResponse:
    clock = StageClock(backend.name)
    image = await decode(data, settings)
    clock.lap("decode")
    async with gate.slot():
        detections = await gate.run(lambda: backend.detect(image))
    clock.lap("inference")
    pose = estimate_pose(detections, (image.width, image.height), PoseConfig(score_threshold=settings.score_threshold))
    clock.lap("postprocess")
    rendered = None
    if render:
        rendered = await run_in_threadpool(lambda: jpeg_data_url(render_pose(image.rgb, pose)))
        clock.lap("render")
    VIEWS.labels(view=pose.view or "none", backend=backend.name).inc()
    return to_response(pose, image, backend, clock.total(), rendered)


def to_response(
    pose: PoseEstimate,
    image: DecodedImage,
    backend: DetectionBackend,
    timings_ms: dict[str, float],
    rendered: str | None,
) -> PoseResponse:
    def box(b: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        return (round(b[0], 1), round(b[1], 1), round(b[2], 1), round(b[3], 1))

    return PoseResponse(
        view=pose.view,  # type: ignore[arg-type]
        coarse_view=pose.coarse_view,  # type: ignore[arg-type]
        azimuth_deg=None if pose.azimuth_deg is None else round(pose.azimuth_deg, 1),
        tilt_deg=None if pose.tilt_deg is None else round(pose.tilt_deg, 2),
        confidence=round(pose.confidence, 3),
        reason=pose.reason,  # type: ignore[arg-type]
        cars_detected=pose.cars_detected,
        car=None if pose.car is None else CarOut(box=box(pose.car.box), score=round(pose.car.score, 3)),
        wheels=[
            WheelOut(box=box(w.box), center=(round(w.center[0], 1), round(w.center[1], 1)), score=round(w.score, 3))
            for w in pose.wheels
        ],
        parts=[PartOut(label=p.label, box=box(p.box), score=round(p.score, 3)) for p in pose.parts],
        image=ImageOut(width=image.width, height=image.height),
        backend=backend.name,  # type: ignore[arg-type]
        model=ModelOut(**backend.info()),
        timings_ms=timings_ms,
        rendered_image=rendered,
    )
