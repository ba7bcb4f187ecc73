"""GET /backends: which pose routes this server offers, one entry per registered backend."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ...backends.base import DetectionBackend
from ...backends.registry import BACKENDS, BackendSpec, PoseKind
from ...model_state import ModelState
from ...schemas import BackendName
from ...settings import Settings
from ..dependencies import Serving, get_model_state, get_serving, get_settings

router = APIRouter()

NO_CREDENTIALS_HINT = (
    "no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or use an instance role"
)
PARTIAL_HINT = (
    "DetectLabels finds only the car and its wheels: tilt and 'side' when clear, no eight-way view; "
    "set POSE_REKOGNITION_PROJECT_VERSION_ARN to a Custom Labels car-parts model for the full pose"
)


LOCAL_MODEL_HINTS = {"loading": "the model is still loading", "failed": "the model failed to load: {error}"}


class BackendInfo(BaseModel):
    name: BackendName
    label: str = Field(description="For people: what to call this backend")
    enabled: bool = Field(description="The route accepts requests (false: it answers 404 backend_disabled)")
    ready: bool = Field(description="Enabled and able to answer now (Detectron2: model loaded)")
    route: str = Field(description="POST an image here (multipart field `image`)")
    pose: PoseKind = Field(description="full: eight-way view, azimuth and tilt; partial: tilt and side/not-side only")
    hint: str | None = Field(description="For people: how to enable it, why it is not ready, or what it lacks")


class BackendsResponse(BaseModel):
    backends: list[BackendInfo]


def backend_info(
    spec: BackendSpec, settings: Settings, state: ModelState, built: DetectionBackend | None
) -> BackendInfo:
    """Blocking (a remote backend's readiness may ask for credentials): run off the event loop."""
    pose = spec.pose(settings)
    hint: str | None
    if spec.local_model:
        enabled, ready = True, state.status == "ok"
        hint = None if ready else LOCAL_MODEL_HINTS.get(state.status, "").format(error=state.error)
    else:
        enabled = built is not None
        ready = built is not None and built.credentials_available()
        if not enabled:
            hint = spec.enable_hint
        elif not ready:
            hint = NO_CREDENTIALS_HINT
        else:
            hint = PARTIAL_HINT if pose == "partial" else None
    return BackendInfo(
        name=spec.name, label=spec.label, enabled=enabled, ready=ready, route=spec.route, pose=pose, hint=hint
    )


@router.get("/backends", response_model=BackendsResponse, tags=["operations"], summary="Pose backends offered")
async def backends(
    settings: Annotated[Settings, Depends(get_settings)],
    state: Annotated[ModelState, Depends(get_model_state)],
    serving: Annotated[Serving, Depends(get_serving)],
) -> BackendsResponse:
    built = serving.backends

    def describe() -> list[BackendInfo]:
        return [backend_info(spec, settings, state, built.get(spec.name)) for spec in BACKENDS]

    return BackendsResponse(backends=await run_in_threadpool(describe))
