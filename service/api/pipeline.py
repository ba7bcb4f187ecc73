"""The request pipeline every pose route shares: decode -> detect -> postprocess -> (render) -> response."""

from __future__ import annotations

import asyncio
from functools import partial

from starlette.concurrency import run_in_threadpool

from ..backends.base import DetectionBackend
from ..gate import BatchPolicy, DecodeLimiter, InferenceGate
from ..imaging import DecodedImage
from ..metrics import STAGE_DURATION, VIEWS
from ..postprocess import PoseEstimate
from ..quality import Quality
from ..render import jpeg_data_url, render_pose
from ..runtime import Runtime, Stopwatch, working_size
from ..schemas import CarOut, ImageOut, ModelOut, PartOut, PoseResponse, QualityOut, WheelOut
from ..settings import Settings
from .errors import ClientGone

__all__ = ["StageClock", "batch_policy", "pose_from_upload", "to_response", "working_size"]


class StageClock(Stopwatch):
    """The runtime's stopwatch, and seconds per stage for Prometheus (the HTTP edge's metrics)."""

    def __init__(self, backend: str) -> None:
        super().__init__()
        self.backend = backend

    def lap(self, stage: str) -> float:
        seconds = super().lap(stage)
        STAGE_DURATION.labels(stage=stage, backend=self.backend).observe(seconds)
        return seconds


# Images per model call when POSE_BATCH_MAX_SIZE is 0. CPU: 1, measured (docs/gpu.md: on two cores a batch
# costs what its images cost one by one, and the wait for company only adds latency). CUDA: unmeasured; a GPU
# has the idle width that batching fills.
DEVICE_BATCH_SIZE = {"cpu": 1, "cuda": 8}


def batch_policy(settings: Settings, device: str) -> BatchPolicy:
    """The batching a backend on `device` gets. Each request holds a decoded image while it waits, so a batch
    is never larger than POSE_MAX_DECODED_IMAGES: the device default is capped there."""
    size = settings.batch_max_size or min(DEVICE_BATCH_SIZE.get(device.split(":")[0], 1), settings.max_decoded_images)
    return BatchPolicy(max_size=size, timeout_s=settings.batch_timeout_ms / 1000.0)


def _check_client(client_gone: asyncio.Event | None, stage: str) -> None:
    if client_gone is not None and client_gone.is_set():
        raise ClientGone(stage)


async def pose_from_upload(
    data: bytes,
    backend: DetectionBackend,
    gate: InferenceGate,
    settings: Settings,
    render: bool,
    decoder: DecodeLimiter,
    client_gone: asyncio.Event | None = None,
    min_confidence: float | None = None,
) -> PoseResponse:
    """`client_gone`: set by the admission middleware (which has then also taken this request's gate place).
    `min_confidence`: the request's view confidence floor; None takes the setting's default."""
    clock = StageClock(backend.name)
    runtime = Runtime.from_settings(backend, settings)  # the same steps as `Runtime.predict`, limited in between
    decode = partial(runtime.decode, data)
    async with decoder.image():
        _check_client(client_gone, "queued")
        image = await decoder.decode(decode)
        clock.lap("decode")
        detect_batch = getattr(backend, "detect_batch", None)
        policy = batch_policy(settings, getattr(backend, "device", "cpu"))
        if detect_batch is not None and policy.max_size > 1:  # requests waiting together share one model call
            detections = await gate.run_batched(image, detect_batch, policy, client_gone, client_gone is not None)
        else:  # one request per call (batching off: POSE_BATCH_MAX_SIZE=1, the CPU default)
            async with gate.slot(client_gone, admitted=client_gone is not None):
                detections = await gate.run(lambda: backend.detect(image))
        clock.lap("inference")
        # The pose is computed on the reduced pixels; to_response maps the boxes back to the uploaded image.
        pose = runtime.pose(detections, image, min_confidence)
        quality = runtime.quality(image, pose)
        clock.lap("postprocess")
        rendered = None
        if render:
            rendered = await run_in_threadpool(lambda: jpeg_data_url(render_pose(image.rgb, pose)))
            clock.lap("render")
    VIEWS.labels(view=pose.view or "none", backend=backend.name).inc()
    return to_response(pose, image, backend, clock.total(), rendered, quality)


def to_response(
    pose: PoseEstimate,
    image: DecodedImage,
    backend: DetectionBackend,
    timings_ms: dict[str, float],
    rendered: str | None,
    quality: Quality | None = None,
) -> PoseResponse:
    sx, sy = image.scale_x, image.scale_y  # reduced pixels -> the uploaded (EXIF-corrected) image

    def box(b: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        return (round(b[0] * sx, 1), round(b[1] * sy, 1), round(b[2] * sx, 1), round(b[3] * sy, 1))

    return PoseResponse(
        view=pose.view,
        coarse_view=pose.coarse_view,
        azimuth_deg=None if pose.azimuth_deg is None else round(pose.azimuth_deg, 1),
        tilt_deg=None if pose.tilt_deg is None else round(pose.tilt_deg, 2),
        confidence=round(pose.confidence, 3),
        reason=pose.reason,
        cars_detected=pose.cars_detected,
        car=None if pose.car is None else CarOut(box=box(pose.car.box), score=round(pose.car.score, 3)),
        wheels=[
            WheelOut(
                box=box(w.box), center=(round(w.center[0] * sx, 1), round(w.center[1] * sy, 1)), score=round(w.score, 3)
            )
            for w in pose.wheels
        ],
        parts=[PartOut(label=p.label, box=box(p.box), score=round(p.score, 3)) for p in pose.parts],
        image=ImageOut(width=image.reported_size[0], height=image.reported_size[1]),
        backend=backend.name,
        model=ModelOut(**backend.info()),
        timings_ms=timings_ms,
        rendered_image=rendered,
        quality=quality_out(quality),
    )


def quality_out(quality: Quality | None) -> QualityOut | None:
    if quality is None:
        return None
    return QualityOut(
        ok=quality.ok,
        in_frame=quality.in_frame,
        cut_sides=quality.cut_sides,
        car_fraction=round(quality.car_fraction, 3),
        large_enough=quality.large_enough,
        sharpness=round(quality.sharpness, 1),
        sharp=quality.sharp,
        brightness=round(quality.brightness, 3),
        clipped_fraction=round(quality.clipped_fraction, 3),
        exposure_ok=quality.exposure_ok,
    )
