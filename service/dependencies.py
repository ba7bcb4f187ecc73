"""FastAPI dependencies: settings, the loaded model, the inference gates, the Rekognition backend."""

from __future__ import annotations

import asyncio

from fastapi import Request

from .backends.detectron import DetectronBackend
from .backends.rekognition import RekognitionBackend
from .exceptions import PoseError
from .gate import DecodeLimiter, InferenceGate
from .model_state import ModelState
from .settings import Settings


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_model_state(request: Request) -> ModelState:
    state: ModelState = request.app.state.model
    return state


def get_detectron(request: Request) -> DetectronBackend:
    return require_model(get_model_state(request))


def require_model(state: ModelState) -> DetectronBackend:
    """The loaded backend, or the 503 that says why not (also used by admission, before the body is read)."""
    if state.status == "loading":
        raise PoseError("model_loading", "the model is still loading; retry shortly", retry_after_s=5)
    if state.status == "failed" or state.backend is None:
        raise PoseError("model_unavailable", f"the model failed to load: {state.error}")
    return state.backend


def get_gate(request: Request) -> InferenceGate:
    gate: InferenceGate = request.app.state.gate
    return gate


def get_decoder(request: Request) -> DecodeLimiter:
    decoder: DecodeLimiter = request.app.state.decoder
    return decoder


def get_rekognition(request: Request) -> RekognitionBackend:
    backend: RekognitionBackend | None = getattr(request.app.state, "rekognition", None)
    if backend is None:
        raise PoseError(
            "backend_disabled",
            "the Amazon Rekognition backend is disabled; set POSE_REKOGNITION_ENABLED=true (and give the service "
            "AWS credentials) to enable POST /pose/rekognition",
        )
    return backend


def get_rekognition_gate(request: Request) -> InferenceGate:
    gate: InferenceGate = request.app.state.rekognition_gate
    return gate


def get_client_gone(request: Request) -> asyncio.Event | None:
    """Set when the client disconnects (by the admission middleware, which then also holds the gate place)."""
    event: asyncio.Event | None = request.scope.get("state", {}).get("client_gone")
    return event
