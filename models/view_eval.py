"""`carpose eval --views FILE.tsv`: the served pipeline's views against views labelled by eye.

Runs exactly what `POST /pose` runs (`Runtime.predict` on each photo's bytes: decode, detector, view classifier,
pose) and reports agreement, the confusion matrix and calibration (`view_metrics.view_report`). Photos that trained
the view classifier are reported apart: figures on them are not held-out; the held-out figures of the shipped
classifier are its cross-validated ones in model.json.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from service.backends.detectron import DetectronBackend
from service.backends.view_classifier import MODEL_CARD_KEY
from service.console import progress
from service.engines import AUTO
from service.margin import FrameMargin

from .served import served_runtime
from .view_metrics import agrees, view_report
from .view_training import iter_labelled, read_view_labels


def evaluate_views(
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
    entry = backend.card.extra.get(MODEL_CARD_KEY) or {}
    trained_on = set(entry.get("training_photos", []))
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    labelled = list(iter_labelled(read_view_labels(labels_path), image_dir))
    for path, label in progress(labelled, desc="carpose eval --views", unit="photo"):
        pose = runtime.predict(path.read_bytes()).pose  # decoded as POST /pose decodes uploads
        rows.append({"file": path.name, "label": label, "pose": pose, "seen": path.name in trained_on})
    elapsed = time.perf_counter() - started

    def report(selected: list[dict[str, Any]]) -> dict[str, Any] | None:
        if not selected:
            return None
        return view_report(
            [r["pose"].view for r in selected],
            [r["pose"].confidence for r in selected],
            [r["label"] for r in selected],
            [r["pose"].coarse_view for r in selected],
        )

    return {
        "labels": str(labels_path),
        "photos": len(rows),
        "seconds_per_photo": elapsed / max(1, len(rows)),
        "view_classifier": bool(entry),
        "unseen": report([r for r in rows if not r["seen"]]),
        "seen_by_view_classifier": report([r for r in rows if r["seen"]]),
        "misses": [
            {"file": r["file"], "label": r["label"].view, "view": r["pose"].view, "confidence": r["pose"].confidence}
            for r in rows
            if not agrees(r["pose"].view, r["label"])
        ],
    }
