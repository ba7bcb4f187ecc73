"""The request pipeline every pose route shares: decode -> detect -> postprocess -> (render) -> response.

The steps are the runtime's (`service.runtime.Runtime`, `service.response.to_response`); what this module adds is
the serving around them: the decode limiter and the backend's gate between the steps, the client's presence,
the render off the event loop and the Prometheus stage timings."""

from __future__ import annotations

import asyncio
from functools import partial

from starlette.concurrency import run_in_threadpool

from ..backends.base import DetectionBackend
from ..exceptions import ClientGone
from ..gate import DecodeLimiter, InferenceGate, batch_policy
from ..metrics import STAGE_DURATION, VIEWS
from ..render import jpeg_data_url, render_pose
from ..response import to_response
from ..runtime import Runtime, Stopwatch
from ..schemas import PoseResponse
from ..settings import Settings


class StageClock(Stopwatch):
    """The runtime's stopwatch, and seconds per stage for Prometheus (the HTTP edge's metrics)."""

    def __init__(self, backend: str) -> None:
        super().__init__()
        self.backend = backend

    def lap(self, stage: str) -> float:
        seconds = super().lap(stage)
        STAGE_DURATION.labels(stage=stage, backend=self.backend).observe(seconds)
        return seconds


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
    render_parts: bool = True,
) -> PoseResponse:
    """`client_gone`: set by the admission middleware (which has then also taken this request's gate place).
    `min_confidence`: the request's view confidence floor; None takes the setting's default. `render_parts`: the
    part boxes and names in the rendered image (with `render`)."""
    clock = StageClock(backend.name)
    runtime = Runtime.from_settings(backend, settings)  # the same steps as `Runtime.predict`, limited in between
    decode = partial(runtime.decode, data)
    async with decoder.image():
        _check_client(client_gone, "queued")
        image = await decoder.decode(decode)
        clock.lap("decode")
        policy = batch_policy(settings, backend.device)
        if backend.supports_batch and policy.max_size > 1:  # requests waiting together share one model call
            detections = await gate.run_batched(
                image, runtime.detect_batch, policy, client_gone, client_gone is not None
            )
        else:  # one request per call (batching off: POSE_BATCH_MAX_SIZE=1, the CPU default)
            async with gate.slot(client_gone, admitted=client_gone is not None):
                detections = await gate.run(lambda: runtime.detect(image))
        clock.lap("inference")
        # The pose is computed on the reduced pixels; to_response maps the boxes back to the uploaded image.
        pose = runtime.pose(detections, image, min_confidence)
        quality = runtime.quality(image, pose)
        clock.lap("postprocess")
        rendered = None
        if render:
            rendered = await run_in_threadpool(lambda: jpeg_data_url(render_pose(image.rgb, pose, render_parts)))
            clock.lap("render")
    VIEWS.labels(view=pose.view or "none", backend=backend.name).inc()
    return to_response(pose, image, backend, clock.total(), rendered, quality)
