"""Measure `azimuth_deg` on turntable photos of known yaw (the Carvana calibration set).

File names are `<car>_<NN>.jpg`: the camera's azimuth is (NN - 1) x 22.5 degrees, from the car's front toward
its LEFT side, the service's own convention. A half-step position (odd multiples of 22.5) lies between two
views, so either neighbour counts as right. Evaluation data only: it is read in place, never copied.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from service.backends.detectron import DetectronBackend
from service.console import progress
from service.engines import AUTO
from service.margin import FrameMargin
from service.postprocess import VIEWS
from service.postprocess.geometry import signed_delta_deg

from .served import served_runtime

STEP_DEG = 22.5
NAME_PATTERN = re.compile(r"^(?P<car>[0-9a-f]+)_(?P<step>\d{2})\.jpe?g$", re.IGNORECASE)


def angular_error(a: float, b: float) -> float:
    return abs(signed_delta_deg(a, b))


def acceptable_views(azimuth: float) -> set[str]:
    """Views that count as right for a true azimuth (both neighbours on a bin edge)."""
    position = (azimuth % 360.0) / 45.0
    if abs(position - round(position)) < 1e-6:
        return {VIEWS[round(position) % 8]}
    return {VIEWS[int(np.floor(position)) % 8], VIEWS[int(np.ceil(position)) % 8]}


def measure(
    model_dir: Path,
    turntable_dir: Path,
    device: str = "auto",
    score_threshold: float = 0.5,
    engine: str = AUTO,
    margin: FrameMargin | None = None,
) -> dict[str, Any]:
    """`margin`: POSE_FRAME_MARGIN's (None: the service's default)."""
    backend = DetectronBackend(model_dir, device=device, score_threshold=score_threshold, engine=engine)
    runtime = served_runtime(backend, margin)
    rows: list[dict[str, Any]] = []
    for path in progress(sorted(turntable_dir.iterdir()), desc="carpose turntable", unit="photo"):
        match = NAME_PATTERN.match(path.name)
        if not match:
            continue
        truth = (int(match["step"]) - 1) * STEP_DEG
        pose = runtime.predict(path.read_bytes()).pose  # decoded as POST /pose decodes uploads
        rows.append(
            {
                "file": path.name,
                "car": match["car"],
                "true_azimuth": truth,
                "azimuth": pose.azimuth_deg,
                "error": None if pose.azimuth_deg is None else angular_error(pose.azimuth_deg, truth),
                "view": pose.view,
                "view_ok": pose.view in acceptable_views(truth),
                "reason": pose.reason,
                "cars_detected": pose.cars_detected,
            }
        )
    errors = np.array([r["error"] for r in rows if r["error"] is not None], dtype=float)
    return {
        "images": len(rows),
        "posed": int(errors.size),
        "azimuth_error_deg": {
            "median": float(np.median(errors)) if errors.size else None,
            "mean": float(errors.mean()) if errors.size else None,
            "p90": float(np.percentile(errors, 90)) if errors.size else None,
            "within_22_5": float((errors <= 22.5).mean()) if errors.size else None,
        },
        "eight_way_accuracy": sum(r["view_ok"] for r in rows) / max(1, len(rows)),
        # Every turntable photo shows one car: the share where the pose counts exactly one (issue 9: >= 98 %).
        "one_car_share": sum(r["cars_detected"] == 1 for r in rows) / max(1, len(rows)),
        "rows": rows,
    }
