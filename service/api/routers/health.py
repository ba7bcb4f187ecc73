"""Liveness, readiness, model information and Prometheus metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ...backends.detectron import DetectronBackend
from ...exceptions import public_value
from ...metrics import REGISTRY
from ...model_state import ModelState
from ...schemas import HealthResponse, ModelInfoResponse
from ..dependencies import get_detectron, get_model_state

router = APIRouter(tags=["operations"])


@router.api_route(
    "/healthz", methods=["GET", "HEAD"], response_model=HealthResponse, summary="Alive (answers while the model loads)"
)
async def healthz() -> HealthResponse:
    return HealthResponse(status="ok")


@router.get(
    "/readyz",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "Model loading or failed"}},
    summary="Ready: model loaded and warmed up",
)
async def readyz(state: Annotated[ModelState, Depends(get_model_state)]) -> Response:
    body = HealthResponse(status=state.status, detail=state.error)
    return JSONResponse(body.model_dump(), status_code=200 if state.status == "ok" else 503)


@router.get("/model", response_model=ModelInfoResponse, summary="The loaded Detectron2 model")
async def model_info(backend: Annotated[DetectronBackend, Depends(get_detectron)]) -> ModelInfoResponse:
    return ModelInfoResponse(
        backend=backend.name,
        name=backend.card.name,
        version=backend.card.version,
        device=backend.device,
        engine=backend.engine.name,
        classes=list(backend.classes),
        model_dir=backend.model_dir.name,  # the directory's name: the server's paths are not the client's business
        card=public_value(backend.card.extra),  # a card written on the training machine may name its paths
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
