"""FastAPI dependencies: settings, the loaded model, each registered backend and its inference gate.

What the lifespan builds for serving is one typed object, `Serving` (`app.state.serving`), not attributes named
by strings: the routes and the admission middleware look a backend's gate up by the backend's name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from ..backends.base import DetectionBackend
from ..backends.detectron import DetectronBackend
from ..backends.registry import BackendSpec
from ..exceptions import PoseError
from ..gate import DecodeLimiter, InferenceGate
from ..model_state import ModelState
from ..settings import Settings


@dataclass(frozen=True)
class Serving:
    """The serving machinery the app's lifespan builds (and shuts down)."""

    gates: dict[str, InferenceGate]  # backend name -> its gate: one backend's slow calls never hold another's slots
    decoder: DecodeLimiter
    backends: dict[str, DetectionBackend]  # built at startup: the enabled backends other than the local model

    def shutdown(self) -> None:
        for gate in self.gates.values():
            gate.shutdown()
        self.decoder.shutdown()


def serving_of(app_state: Any) -> Serving:
    """The app's `Serving` (from the app's `state`; set by its lifespan)."""
    serving: Serving = app_state.serving
    return serving


def get_serving(request: Request) -> Serving:
    return serving_of(request.app.state)


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


def get_decoder(request: Request) -> DecodeLimiter:
    return get_serving(request).decoder


def backend_of(spec: BackendSpec) -> Callable[[Request], DetectionBackend]:
    """The dependency that gives a registered backend: the loaded local model, or the one built at startup."""

    def get_backend(request: Request) -> DetectionBackend:
        if spec.local_model:
            return require_model(get_model_state(request))
        backend = get_serving(request).backends.get(spec.name)
        if backend is None:
            message = f"the {spec.label} backend is disabled; {spec.enable_hint} to enable POST {spec.route}"
            raise PoseError("backend_disabled", message)
        return backend

    return get_backend


def gate_of(spec: BackendSpec) -> Callable[[Request], InferenceGate]:
    def get_backend_gate(request: Request) -> InferenceGate:
        return get_serving(request).gates[spec.name]

    return get_backend_gate


def get_client_gone(request: Request) -> asyncio.Event | None:
    """Set when the client disconnects (by the admission middleware, which then also holds the gate place)."""
    event: asyncio.Event | None = request.scope.get("state", {}).get("client_gone")
    return event
