"""POST /pose/rekognition (Amazon Rekognition backend) and GET /backends (which pose routes this server offers)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from pydantic import BaseModel, Field

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
from ..schemas import ERROR_RESPONSES, ErrorResponse, PoseResponse
from ..settings import Settings
from .pose import IMAGE_FIELD_DESCRIPTION, RENDER_DESCRIPTION, read_upload

router = APIRouter()

REKOGNITION_ROUTE = "/pose/rekognition"
ENABLE_HINT = "set POSE_REKOGNITION_ENABLED=true (and give the service AWS credentials)"
PARTIAL_HINT = (
    "DetectLabels finds only the car and its wheels: tilt and 'side' when clear, no eight-way view; "
    "set POSE_REKOGNITION_PROJECT_VERSION_ARN to a Custom Labels car-parts model for the full pose"
)

REKOGNITION_ERRORS: dict[int | str, dict[str, object]] = {
    **ERROR_RESPONSES,
    404: {"model": ErrorResponse, "description": "backend_disabled: POSE_REKOGNITION_ENABLED is false"},
    422: {"model": ErrorResponse, "description": "Missing form field, or Rekognition refused the image (upstream_*)"},
    502: {"model": ErrorResponse, "description": "Rekognition refused the service's credentials or permissions"},
    503: {
        "model": ErrorResponse,
        "description": "Throttled, upstream error, Custom Labels model not running, no AWS credentials, overloaded",
    },
    504: {"model": ErrorResponse, "description": "Rekognition unreachable or too slow"},
}


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
    settings: Annotated[Settings, Depends(get_settings)],
    state: Annotated[ModelState, Depends(get_model_state)],
) -> BackendsResponse:
    detectron_hint = {
        "ok": None,
        "loading": "the model is still loading",
        "failed": f"the model failed to load: {state.error}",
    }[state.status]
    custom = bool(settings.rekognition_project_version_arn)
    if not settings.rekognition_enabled:
        rekognition_hint: str | None = ENABLE_HINT
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
                # Not probed: checking credentials may call the instance metadata service, too slow for a page.
                ready=settings.rekognition_enabled,
                route=REKOGNITION_ROUTE,
                pose="full" if custom else "partial",
                hint=rekognition_hint,
            ),
        ]
    )
