"""The Amazon SageMaker serving contract: `GET /ping` and `POST /invocations` (mounted when POSE_SAGEMAKER=true).

SageMaker starts the container as `IMAGE serve`, sends health checks to `/ping` on port 8080 and each
InvokeEndpoint call's body, with its ContentType, to `/invocations`. Here the body is the raw image; the answer is
the JSON of POST /pose, through the same pipeline, limits and errors.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ...backends.detectron import DetectronBackend
from ...backends.registry import spec_named
from ...exceptions import PoseError
from ...gate import DecodeLimiter, InferenceGate
from ...model_state import ModelState
from ...schemas import PoseResponse
from ...settings import Settings
from ..dependencies import (
    gate_of,
    get_client_gone,
    get_decoder,
    get_detectron,
    get_model_state,
    get_settings,
    require_model,
)
from ..openapi import ERROR_RESPONSES, error_responses
from ..pipeline import pose_from_upload
from ..upload import JSON_IMAGE_CONTENT, JSON_MEDIA_TYPE, image_from_json, is_json, max_json_body_bytes

router = APIRouter(tags=["sagemaker"])
LOCAL = spec_named("detectron2")

# The declared type must say "an image"; which image is judged from the bytes, as for POST /pose.
# application/x-image is the SageMaker SDK's generic image type; octet-stream is what clients send by default.
IMAGE_CONTENT_TYPES = (
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/heic",
    "image/heif",
    "image/avif",
    "application/x-image",
    "application/octet-stream",
)
# InvokeEndpoint's CustomAttributes reach the container in this header (no query string gets through).
CUSTOM_ATTRIBUTES_HEADER = "x-amzn-sagemaker-custom-attributes"


def custom_attributes(request: Request) -> dict[str, str]:
    """`render=true,other=x` (commas or semicolons) -> {"render": "true", "other": "x"}; other text is ignored."""
    raw = request.headers.get(CUSTOM_ATTRIBUTES_HEADER, "")
    pairs = (item.partition("=") for item in raw.replace(";", ",").split(","))
    return {key.strip().lower(): value.strip() for key, sep, value in pairs if sep}


async def read_body(request: Request, limit: int) -> bytes:
    # One byte over the limit is enough for decode_upload's 413; never hold more than that.
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(chunks)[: limit + 1]


@router.get(
    "/ping",
    summary="SageMaker health check: 200 once the model is loaded and warmed up",
    responses=error_responses(["model_loading", "model_unavailable"]),
)
async def ping(state: Annotated[ModelState, Depends(get_model_state)]) -> JSONResponse:
    require_model(state)  # 503 model_loading / model_unavailable until then
    return JSONResponse({"status": "ok"})


@router.post(
    "/invocations",
    response_model=PoseResponse,
    responses=ERROR_RESPONSES,
    summary="SageMaker inference: the raw image as the body (Content-Type image/jpeg, png, webp, heic, heif or "
    "avif), or JSON {image: base64 or data URL}",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                **{t: {"schema": {"type": "string", "format": "binary"}} for t in IMAGE_CONTENT_TYPES},
                JSON_MEDIA_TYPE: JSON_IMAGE_CONTENT,
            },
        }
    },
)
async def invocations(
    request: Request,
    settings: Annotated[Settings, Depends(get_settings)],
    backend: Annotated[DetectronBackend, Depends(get_detectron)],
    gate: Annotated[InferenceGate, Depends(gate_of(LOCAL))],
    decoder: Annotated[DecodeLimiter, Depends(get_decoder)],
    client_gone: Annotated[asyncio.Event | None, Depends(get_client_gone)],
) -> PoseResponse:
    request.state.backend = backend.name
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    render = custom_attributes(request).get("render", "").lower() in {"true", "1", "yes"}
    if is_json(request):  # the original car-angle sample's request shape: {"image": "<base64 or data URL>"}
        body = await read_body(request, max_json_body_bytes(settings.max_upload_bytes))
        data = image_from_json(body, settings.max_upload_bytes)
        return await pose_from_upload(data, backend, gate, settings, render, decoder, client_gone)
    if media_type not in IMAGE_CONTENT_TYPES:
        raise PoseError(
            "unsupported_media_type",
            f"Content-Type {media_type or '(none)'} is not an image type; send the raw image as "
            f"{', '.join(IMAGE_CONTENT_TYPES[:6])}",
        )
    data = await read_body(request, settings.max_upload_bytes)
    return await pose_from_upload(data, backend, gate, settings, render, decoder, client_gone)
