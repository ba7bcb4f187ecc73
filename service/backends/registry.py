"""THE list of pose backends. `service.api.main` builds each one's gate, route, `/backends` entry and the schema's
`backend` enum from it: adding a backend is one module in this package plus one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ..settings import Settings
from .base import DetectionBackend

PoseKind = Literal["full", "partial"]  # full: eight-way view, azimuth and tilt; partial: tilt and side only


@dataclass(frozen=True)
class BackendSpec:
    name: str  # the `backend` field of responses and a metrics label
    route: str  # POST an image here
    label: str  # for people: the upload page's choice
    summary: str  # the route's OpenAPI summary
    workers: Callable[[Settings], int]  # its gate's concurrent calls (a gate each, keyed by `name`)
    pose: Callable[[Settings], PoseKind]
    # Built at startup from the settings; None = disabled (its route answers 404 backend_disabled with
    # `enable_hint`). The local model is not built here: `ModelState` loads it in the background (`local_model`).
    build: Callable[[Settings], DetectionBackend | None]
    enable_hint: str = ""
    local_model: bool = False  # the route needs the local model loaded (admission checks it before the body)
    own_error_codes: tuple[str, ...] = ()  # codes (fnmatch patterns) its route answers beyond every image route's
    # The runtime detects on the photo with POSE_FRAME_MARGIN of grey around it (service.margin). Only for a backend
    # that reads the decoded pixels: Rekognition is sent the upload's own bytes where it can.
    frame_margin: bool = False


def _no_build(settings: Settings) -> DetectionBackend | None:
    return None


def _build_rekognition(settings: Settings) -> DetectionBackend | None:
    from .rekognition import RekognitionBackend

    return RekognitionBackend(settings) if settings.rekognition_enabled else None


def _rekognition_workers(settings: Settings) -> int:
    from .rekognition import REKOGNITION_WORKERS

    return REKOGNITION_WORKERS


BACKENDS: tuple[BackendSpec, ...] = (
    BackendSpec(
        name="detectron2",
        route="/pose",
        label="Detectron2 (this server's model)",
        summary="Pose of the main car in a photo (Detectron2 car-parts model)",
        workers=lambda settings: settings.inference_workers,
        pose=lambda settings: "full",
        build=_no_build,
        local_model=True,
        own_error_codes=("model_loading", "model_unavailable"),
        frame_margin=True,
    ),
    BackendSpec(
        name="rekognition",
        route="/pose/rekognition",
        label="Amazon Rekognition",
        summary="Pose of the main car in a photo (Amazon Rekognition DetectLabels or Custom Labels)",
        workers=_rekognition_workers,
        pose=lambda settings: "full" if settings.rekognition_project_version_arn else "partial",
        build=_build_rekognition,
        enable_hint="set POSE_REKOGNITION_ENABLED=true (and give the service AWS credentials)",
        own_error_codes=("backend_disabled", "upstream_*"),
    ),
)
BACKEND_NAMES: tuple[str, ...] = tuple(spec.name for spec in BACKENDS)


def spec_named(name: str) -> BackendSpec:
    return next(spec for spec in BACKENDS if spec.name == name)
