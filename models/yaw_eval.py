"""`carpose eval --yaw LABELS.tsv --images DIR`: the served `azimuth_deg` against a measured, continuous yaw.

Runs what `POST /pose` runs (`Runtime.predict` on each photo's bytes: decode at the working size, detector, view
classifier, pose) and reports `yaw_metrics.yaw_report`: eight-way against the true yaw's bin, the share within 15
and 30 degrees, median / mean absolute error, signed bias, the figures by true view, the kinds of gross failure and
the calibration of `confidence` against the true bin. Labels: `file<TAB>yaw_deg[<TAB>...]` lines, `#` comments
(the stanford-cars-3d development set's labels.tsv, read in place: evaluation only, never copied).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from service.backends.detectron import DetectronBackend
from service.console import progress
from service.engines import AUTO
from service.margin import FrameMargin

from .served import served_runtime
from .yaw_metrics import YawAnswer, yaw_report


def read_yaw_labels(path: Path) -> dict[str, float]:
    labels: dict[str, float] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        try:
            labels[fields[0].strip()] = float(fields[1]) % 360.0
        except (IndexError, ValueError) as error:
            raise ValueError(f"{path}:{number}: expected file<TAB>yaw_deg, got {line!r}") from error
    return labels


def evaluate_yaw(
    model_dir: Path,
    labels_path: Path,
    image_dir: Path,
    device: str = "auto",
    engine: str = AUTO,
    margin: FrameMargin | None = None,
) -> dict[str, Any]:
    """`margin`: POSE_FRAME_MARGIN's (None: the service's default)."""
    backend = DetectronBackend(model_dir, device=device, engine=engine)
    runtime = served_runtime(backend, margin)
    labels = read_yaw_labels(labels_path)
    rows: list[dict[str, Any]] = []
    missing = 0
    started = time.perf_counter()
    for name in progress(sorted(labels), desc="carpose eval --yaw", unit="photo"):
        path = image_dir / name
        if not path.is_file():
            missing += 1
            continue
        prediction = runtime.predict(path.read_bytes())  # decoded as POST /pose decodes uploads
        pose = prediction.pose
        # The part rule's own answer on the same detections (postprocessing only), to study the two apart.
        rule = runtime.pose([replace(d, view_probs=None) for d in prediction.detections], prediction.image)
        rows.append(
            {
                "file": name,
                "truth": labels[name],
                "azimuth": pose.azimuth_deg,
                "view": pose.view,
                "confidence": pose.confidence,
                "reason": pose.reason,
                "cars_detected": pose.cars_detected,
                # The classifier's probabilities (None without one): enough to study the decode offline.
                "view_probs": None if pose.car is None or pose.car.view_probs is None else list(pose.car.view_probs),
                "rule": {"azimuth": rule.azimuth_deg, "confidence": rule.confidence, "reason": rule.reason},
                "car_box": None if pose.car is None else list(pose.car.box),
            }
        )
    elapsed = time.perf_counter() - started
    answers = [YawAnswer(r["truth"], r["azimuth"], r["view"], r["confidence"]) for r in rows]
    return {
        "labels": str(labels_path),
        "missing_photos": missing,
        "seconds_per_photo": elapsed / max(1, len(rows)),
        "report": yaw_report(answers),
        "rows": rows,
    }
