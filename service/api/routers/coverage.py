"""POST /coverage: a listing's set of photos -> each photo's pose and quality, and which required views are missing.

The request is admitted like a single pose request (the admission middleware, before its body is read) and
its photos then go one after another through the same pipeline, decode limits and model queue as POST /pose
under that one place: a set of 24 photos waits its turn like 24 requests in a row, and cannot take the model
from single requests.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from ...backends.base import DetectionBackend
from ...backends.registry import spec_named
from ...coverage import parse_required, problems_of, summarise
from ...exceptions import ClientGone, PoseError
from ...gate import DecodeLimiter, InferenceGate
from ...guidance import next_view
from ...postprocess.vocabulary import VIEWS
from ...response import with_guidance
from ...schemas import CoveragePhoto, CoverageResponse, ErrorDetail, View
from ...settings import Settings
from ..dependencies import backend_of, gate_of, get_client_gone, get_decoder, get_settings
from ..openapi import COVERAGE_CODES, error_responses, route_codes
from ..pipeline import pose_from_upload
from ..upload import IMAGE_FIELD_DESCRIPTION

log = logging.getLogger("service.coverage")
router = APIRouter(tags=["coverage"])
LOCAL = spec_named("detectron2")
FIELD = "images"
COVERAGE_PATH = "/coverage"

REQUIRED_DESCRIPTION = f"Comma list of the views the set must show; default all eight: {','.join(VIEWS)}"
MIN_CONFIDENCE_DESCRIPTION = (
    "A photo counts for its view only above this confidence; default POSE_COVERAGE_MIN_CONFIDENCE"
)
TARGET_VIEW_DESCRIPTION = (
    "Guided capture: each photo's `pose.guidance` aims at this view; without it, at the answer's `next_view` "
    "(no guidance once the set is complete). Unknown views are 422 validation_error"
)
REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FIELD],
                    "properties": {
                        FIELD: {
                            "type": "array",
                            "minItems": 1,
                            "items": {"type": "string", "format": "binary"},
                            "description": f"The photos, repeated field `{FIELD}`. {IMAGE_FIELD_DESCRIPTION}; "
                            "at most POSE_COVERAGE_MAX_IMAGES photos and POSE_COVERAGE_MAX_TOTAL_BYTES in all",
                        }
                    },
                }
            }
        },
    }
}


async def read_photos(request: Request, settings: Settings) -> list[UploadFile]:
    limit = settings.coverage_max_images
    try:
        # One file over the limit is enough to know there are too many; the parser stops there.
        form = await request.form(max_files=limit + 1, max_fields=limit + 16)
    except HTTPException as exc:
        if "Too many files" in str(exc.detail):
            raise PoseError("too_many_images", f"more than {limit} photos; send at most {limit}") from exc
        raise
    request.state.coverage_form = form  # closed (its spooled files deleted) by the route when it is done
    photos = [item for item in form.getlist(FIELD) if isinstance(item, UploadFile)]
    if len(photos) > limit:
        raise PoseError("too_many_images", f"{len(photos)} photos; send at most {limit}")
    if not photos:
        raise PoseError("validation_error", f"body.{FIELD}: at least one photo (repeated multipart file field)")
    return photos


@router.post(
    COVERAGE_PATH,
    response_model=CoverageResponse,
    responses=error_responses(route_codes(LOCAL) + COVERAGE_CODES),
    summary="Coverage of a listing's photo set: each photo's view and quality, and the required views missing",
    openapi_extra=REQUEST_BODY,
)
async def coverage(
    request: Request,
    settings: Annotated[Settings, Depends(get_settings)],
    backend: Annotated[DetectionBackend, Depends(backend_of(LOCAL))],
    gate: Annotated[InferenceGate, Depends(gate_of(LOCAL))],
    decoder: Annotated[DecodeLimiter, Depends(get_decoder)],
    client_gone: Annotated[asyncio.Event | None, Depends(get_client_gone)],
    required: Annotated[str | None, Query(description=REQUIRED_DESCRIPTION)] = None,
    min_confidence: Annotated[float | None, Query(ge=0.0, le=1.0, description=MIN_CONFIDENCE_DESCRIPTION)] = None,
    target_view: Annotated[View | None, Query(description=TARGET_VIEW_DESCRIPTION)] = None,
) -> CoverageResponse:
    request.state.backend = backend.name
    try:
        views = parse_required(required)
    except ValueError as exc:
        raise RequestValidationError([{"loc": ("query", "required"), "msg": str(exc), "type": "value_error"}]) from exc
    # A set is where a view is acted on: its own floor, calibrated (docs/views.md), unless the request sets one.
    floor = settings.coverage_min_confidence if min_confidence is None else min_confidence
    try:
        photos = await read_photos(request, settings)
        entries: list[CoveragePhoto] = []
        for index, upload in enumerate(photos):
            pose, error = None, None
            try:
                data = await upload.read(settings.max_upload_bytes + 1)
                pose = await pose_from_upload(data, backend, gate, settings, False, decoder, client_gone, floor)
            except PoseError as exc:  # this photo's problem only; the set goes on
                error = ErrorDetail(code=exc.code, message=exc.message)
            except ClientGone:
                raise  # nobody is waiting for the rest of the set
            except Exception:  # a bug of ours on this photo: logged, reported in its slot, the set goes on
                log.exception("photo %d of a coverage set failed", index)
                error = ErrorDetail(code="internal_error", message="internal error; see the service log")
            problems = problems_of(pose)
            entries.append(
                CoveragePhoto(
                    index=index,
                    filename=upload.filename,
                    pose=pose,
                    error=error,
                    usable=not problems,
                    problems=problems,
                )
            )
    finally:
        form = getattr(request.state, "coverage_form", None)
        if form is not None:
            await form.close()
    poses = [entry.pose for entry in entries]
    summary = summarise(poses, views)
    following = next_view(poses, summary.missing)
    target = target_view or following
    for entry in entries:
        if entry.pose is not None:
            entry.pose = with_guidance(entry.pose, target)
    return CoverageResponse(
        photos=entries,
        required=views,
        covered=summary.covered,
        missing=summary.missing,
        duplicates=summary.duplicates,
        complete=summary.complete,
        next_view=following,
    )
