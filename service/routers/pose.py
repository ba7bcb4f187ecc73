"""POST /pose: the Detectron2 backend."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile

from ..backends.detectron import DetectronBackend
from ..dependencies import get_client_gone, get_decoder, get_detectron, get_gate, get_settings
from ..gate import DecodeLimiter, InferenceGate
from ..pipeline import pose_from_upload
from ..schemas import ERROR_RESPONSES, PoseResponse
from ..settings import Settings

router = APIRouter(tags=["pose"])

IMAGE_FIELD_DESCRIPTION = "Car photo: JPEG, PNG or WebP (EXIF orientation is applied)"
RENDER_DESCRIPTION = "Add an annotated JPEG (data URL) with the car box, parts, wheel line and pose"
MIN_CONFIDENCE_DESCRIPTION = (
    "Confidence floor: below it view and coarse_view are null with reason low_confidence (azimuth_deg is kept "
    "as the best guess); default POSE_MIN_CONFIDENCE, 0 = off"
)


async def read_upload(upload: UploadFile, settings: Settings) -> bytes:
    # One byte over the limit is enough to know it is too large; never read more.
    return await upload.read(settings.max_upload_bytes + 1)


@router.post(
    "/pose",
    response_model=PoseResponse,
    responses=ERROR_RESPONSES,
    summary="Pose of the main car in a photo (Detectron2 car-parts model)",
)
async def pose(
    request: Request,
    image: Annotated[UploadFile, File(description=IMAGE_FIELD_DESCRIPTION)],
    settings: Annotated[Settings, Depends(get_settings)],
    backend: Annotated[DetectronBackend, Depends(get_detectron)],
    gate: Annotated[InferenceGate, Depends(get_gate)],
    decoder: Annotated[DecodeLimiter, Depends(get_decoder)],
    client_gone: Annotated[asyncio.Event | None, Depends(get_client_gone)],
    render: Annotated[bool, Query(description=RENDER_DESCRIPTION)] = False,
    min_confidence: Annotated[float | None, Query(ge=0.0, le=1.0, description=MIN_CONFIDENCE_DESCRIPTION)] = None,
) -> PoseResponse:
    request.state.backend = backend.name
    data = await read_upload(image, settings)
    return await pose_from_upload(data, backend, gate, settings, render, decoder, client_gone, min_confidence)
