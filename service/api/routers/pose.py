"""The pose routes: one per registered backend (`service.backends.registry`), all built by `pose_route`."""

# No `from __future__ import annotations`: FastAPI reads the route's annotations at runtime, and they name
# dependencies built for each backend in `add_pose_route` (locals a string annotation could not reach).
import asyncio
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from ...backends.base import DetectionBackend
from ...backends.registry import BACKENDS, BackendSpec
from ...gate import DecodeLimiter, InferenceGate
from ...response import with_guidance
from ...schemas import PoseResponse, View
from ...settings import Settings
from ..dependencies import backend_of, gate_of, get_client_gone, get_decoder, get_settings
from ..openapi import error_responses, route_codes
from ..pipeline import pose_from_upload
from ..upload import IMAGE_REQUEST_BODY, read_image

RENDER_DESCRIPTION = "Add an annotated JPEG (data URL) with the car box, parts, wheel line and pose"
RENDER_PARTS_DESCRIPTION = (
    "With render=true: draw the part boxes, their names and the caption (the pose in words, top left); false "
    "leaves all three out, for a client that draws `parts` itself on a layer it can hide and so writes its own "
    "caption, where its tags cannot cover it"
)
MIN_CONFIDENCE_DESCRIPTION = (
    "Confidence floor: below it view and coarse_view are null with reason low_confidence (azimuth_deg is kept "
    "as the best guess); default POSE_MIN_CONFIDENCE, 0 = off"
)
TARGET_VIEW_DESCRIPTION = (
    "Guided capture: the view the seller is after; the answer's `guidance` says whether the photo shows it, "
    "how far to walk round the car (walk_deg) and what to fix. Unknown views are 422 validation_error"
)


def add_pose_route(router: APIRouter, spec: BackendSpec) -> None:
    """POST `spec.route`: an uploaded photo through this backend and the shared pipeline."""

    async def pose(
        request: Request,
        settings: Annotated[Settings, Depends(get_settings)],
        backend: Annotated[DetectionBackend, Depends(backend_of(spec))],
        gate: Annotated[InferenceGate, Depends(gate_of(spec))],
        decoder: Annotated[DecodeLimiter, Depends(get_decoder)],
        client_gone: Annotated[asyncio.Event | None, Depends(get_client_gone)],
        render: Annotated[bool, Query(description=RENDER_DESCRIPTION)] = False,
        render_parts: Annotated[bool, Query(description=RENDER_PARTS_DESCRIPTION)] = True,
        min_confidence: Annotated[float | None, Query(ge=0.0, le=1.0, description=MIN_CONFIDENCE_DESCRIPTION)] = None,
        target_view: Annotated[View | None, Query(description=TARGET_VIEW_DESCRIPTION)] = None,
    ) -> PoseResponse:
        request.state.backend = backend.name
        data = await read_image(request, settings.max_upload_bytes)
        answer = await pose_from_upload(
            data, backend, gate, settings, render, decoder, client_gone, min_confidence, render_parts
        )
        return with_guidance(answer, target_view)

    router.add_api_route(
        spec.route,
        pose,
        # The route's name makes its OpenAPI operation id (pose_pose_post, pose_rekognition_pose_rekognition_post).
        name="pose" if spec.local_model else f"pose_{spec.name}",
        methods=["POST"],
        response_model=PoseResponse,
        responses=error_responses(route_codes(spec)),
        summary=spec.summary,
        openapi_extra=IMAGE_REQUEST_BODY,
    )


def pose_router(specs: Sequence[BackendSpec] = BACKENDS) -> APIRouter:
    router = APIRouter(tags=["pose"])
    for spec in specs:
        add_pose_route(router, spec)
    return router
