"""POST /pose/rekognition (Amazon Rekognition backend) and GET /backends (which pose routes this server offers)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ..backends.rekognition import RekognitionBackend
from ..dependencies import (
    get_client_gone,
    get_decoder,
    get_model_state,
    get_rekognition,
    get_rekognition_gate,
    get_settings,
)
from ..gate import DecodeLimiter, InferenceGate
from ..model_state import ModelState
from ..pipeline import pose_from_upload
from ..schemas import REKOGNITION_CODES, PoseResponse, error_responses
from ..settings import Settings
from .pose import IMAGE_FIELD_DESCRIPTION, RENDER_DESCRIPTION, read_upload

router = APIRouter()

REKOGNITION_ROUTE = "/pose/rekognition"
ENABLE_HINT = "set POSE_REKOGNITION_ENABLED=true (and give the service AWS credentials)"
NO_CREDENTIALS_HINT = (
    "no AWS credentials found: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE, or use an instance role"
)
PARTIAL_HINT = (
    "DetectLabels finds only the car and its wheels: tilt and 'side' when clear, no eight-way view; "
    "set POSE_REKOGNITION_PROJECT_VERSION_ARN to a Custom Labels car-parts model for the full pose"
)

REKOGNITION_ERRORS = error_responses(REKOGNITION_CODES)


@router.post(
    REKOGNITION_ROUTE,
    response_model=PoseResponse,
    responses=REKOGNITION_ERRORS,
    tags=["pose"],
    summary="Pose of the main car in a photo (Amazon Rekognition DetectLabels or Custom Labels)",
)
async def pose_rekognition(
    request: Request,
    image: Annotated[UploadFile, File(description=IMAGE_FIELD_DESCRIPTION)],
    settings: Annotated[Settings, Depends(get_settings)],
    backend: Annotated[RekognitionBackend, Depends(get_rekognition)],
    gate: Annotated[InferenceGate, Depends(get_rekognition_gate)],
    decoder: Annotated[DecodeLimiter, Depends(get_decoder)],
    client_gone: Annotated[asyncio.Event | None, Depends(get_client_gone)],
    render: Annotated[bool, Query(description=RENDER_DESCRIPTION)] = False,
) -> PoseResponse:
    request.state.backend = backend.name
    data = await read_upload(image, settings)
    return await pose_from_upload(data, backend, gate, settings, render, decoder, client_gone)


class BackendInfo(BaseModel):
    name: Literal["detectron2", "rekognition"]
    enabled: bool = Field(description="The route accepts requests (false: it answers 404 backend_disabled)")
    ready: bool = Field(description="Enabled and able to answer now (Detectron2: model loaded)")
    route: str = Field(description="POST an image here (multipart field `image`)")
    pose: Literal["full", "partial"] = Field(
        description="full: eight-way view, azimuth and tilt; partial: tilt and side/not-side only"
    )
    hint: str | None = Field(description="For people: how to enable it, why it is not ready, or what it lacks")


class BackendsResponse(BaseModel):
    backends: list[BackendInfo]


@router.get("/backends", response_model=BackendsResponse, tags=["operations"], summary="Pose backends offered")
async def backends(
    request: Request,
    settings: Annotated[Settings, Depends(get_settings)],
    state: Annotated[ModelState, Depends(get_model_state)],
) -> BackendsResponse:
    detectron_hint = {
        "ok": None,
        "loading": "the model is still loading",
        "failed": f"the model failed to load: {state.error}",
    }[state.status]
    custom = bool(settings.rekognition_project_version_arn)
    rekognition: RekognitionBackend | None = getattr(request.app.state, "rekognition", None)
    # Off the event loop: the credential chain may ask the instance metadata service (the backend caches the answer).
    has_credentials = rekognition is not None and await run_in_threadpool(rekognition.credentials_available)
    if not settings.rekognition_enabled:
        rekognition_hint: str | None = ENABLE_HINT
    elif not has_credentials:
        rekognition_hint = NO_CREDENTIALS_HINT
    else:
        rekognition_hint = None if custom else PARTIAL_HINT
    return BackendsResponse(
        backends=[
            BackendInfo(
                name="detectron2",
                enabled=True,
                ready=state.status == "ok",
                route="/pose",
                pose="full",
                hint=detectron_hint,
            ),
            BackendInfo(
                name="rekognition",
                enabled=settings.rekognition_enabled,
                ready=has_credentials,
                route=REKOGNITION_ROUTE,
                pose="full" if custom else "partial",
                hint=rekognition_hint,
            ),
        ]
    )
