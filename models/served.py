"""The served path the evaluations measure (`carpose eval --views/--yaw`, `carpose turntable`): what `POST /pose`
runs with a loaded backend, stated once so the three cannot drift apart."""

from __future__ import annotations

from service.backends.detectron import DetectronBackend
from service.margin import FrameMargin
from service.postprocess import PoseConfig
from service.runtime import Runtime


def served_runtime(backend: DetectronBackend, margin: FrameMargin | None = None) -> Runtime:
    """`Runtime.predict` as the service runs it: the pose at the backend's score threshold, and `margin`
    (POSE_FRAME_MARGIN's; None: the service's default) around tight photos."""
    return Runtime(backend, PoseConfig(score_threshold=backend.score_threshold), frame_margin=margin or FrameMargin())
