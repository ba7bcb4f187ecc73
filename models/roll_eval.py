"""Measure the served camera roll (`roll_deg`) on photos nothing trained on, through the service's own path.

Each photo, and copies of it rolled by known angles (`models.roll_training.rolled_photo`: turned, cut to a full
frame), goes through the Detectron2 backend as a request would (detector -> main car box -> the view
classifier's crop -> its trunk -> the roll head). The truth is the applied roll plus the photo's own roll, taken
as 0 for photos presumed level (Car Parts test split, the turntable) or given per photo (a labels file, e.g.
Stanford Cars 3D's `inplane_deg`, evaluation only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from service.console import progress

from .roll_training import error_summary, rolled_photo, shrunk
from .view_training import load_rgb

DEFAULT_ROLLS: tuple[float, ...] = (-15.0, -8.0, -4.0, 0.0, 4.0, 8.0, 15.0)


def read_label_column(path: Path, column: str) -> dict[str, float]:
    """File name -> the value of `column` from a TSV whose first line names the columns (a leading `#` allowed)."""
    lines = [line for line in Path(path).read_text().splitlines() if line.strip()]
    header = lines[0].lstrip("#").strip().split("\t")
    file_index, value_index = header.index("file"), header.index(column)
    return {fields[file_index]: float(fields[value_index]) for fields in (line.split("\t") for line in lines[1:])}


@dataclass(frozen=True)
class RollReading:
    photo: str
    applied_deg: float
    truth_deg: float
    roll_deg: float | None  # None: no car found, or no roll head


def read_rolls(
    backend: Any,
    photos: Sequence[Path],
    own_roll: dict[str, float] | None = None,
    rolls: Sequence[float] = DEFAULT_ROLLS,
) -> list[RollReading]:
    """The backend's `roll_deg` of the posed car in each photo and each rolled copy of it."""
    from service.postprocess import estimate_pose

    readings = []
    for path in progress(list(photos), desc="roll: measure", unit="photo"):
        rgb = load_rgb(path)
        height, width = rgb.shape[:2]
        frame = np.array([[0.0, 0.0], [width, height]])  # the outline is not needed: the detector finds the car
        base, _ = shrunk(rgb, frame)
        for applied in rolls:
            photo = base if applied == 0.0 else rolled_photo(base, frame, applied)[0]
            detections = backend.detect_array(photo)
            pose = estimate_pose(detections, (photo.shape[1], photo.shape[0]))
            roll = None if pose.car is None else pose.car.roll_deg
            truth = applied + (own_roll or {}).get(path.name, 0.0)
            readings.append(RollReading(path.name, applied, truth, roll))
    return readings


def summarise_readings(readings: Sequence[RollReading], threshold_deg: float) -> dict[str, Any]:
    """Errors over the photos with a reading, the share without one, and the false `hold_level` rate on the
    unrolled photos (truth within 1 degree of level read beyond the threshold)."""
    read = [r for r in readings if r.roll_deg is not None]
    predicted = np.array([r.roll_deg for r in read], dtype=float)
    truth = np.array([r.truth_deg for r in read], dtype=float)
    out: dict[str, Any] = error_summary(predicted, truth) if read else {"count": 0}
    out["unread"] = len(readings) - len(read)
    level = np.array([r.applied_deg == 0.0 and abs(r.truth_deg) <= 1.0 for r in read])
    out["level_photos"] = int(level.sum())
    out["level_flagged_share"] = (
        round(float(np.mean(np.abs(predicted[level]) > threshold_deg)), 4) if level.any() else None
    )
    rolled = np.array([abs(r.applied_deg) > threshold_deg for r in read])
    out["rolled_beyond_threshold"] = int(rolled.sum())
    out["rolled_caught_share"] = (
        round(float(np.mean(np.abs(predicted[rolled]) > threshold_deg)), 4) if rolled.any() else None
    )
    by_roll: dict[str, Any] = {}
    for applied in sorted({r.applied_deg for r in read}):
        rows = [i for i, r in enumerate(read) if r.applied_deg == applied]
        by_roll[f"{applied:+g}"] = error_summary(predicted[rows], truth[rows])
    out["by_applied_roll"] = by_roll
    return out
