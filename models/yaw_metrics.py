"""Answered yaw against a measured (continuous) yaw: accuracy within a tolerance, error figures, failure kinds,
and how well `confidence` is calibrated against the true yaw's view bin. Pure numpy, no model.

Conventions are the API's: 0 = front, 90 = the car's left side, 180 = back, 270 = right side. A photo without an
answered azimuth counts as wrong everywhere (its error is taken as 180 degrees); one with an azimuth but no view
(withheld below `min_confidence`) is judged on its azimuth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.postprocess import VIEWS
from service.postprocess.geometry import VIEW_BIN_DEG, signed_delta_deg, view_of

from .view_metrics import ece_interval, expected_calibration_error, reliability_table

TOLERANCES_DEG = (15.0, 30.0)
NO_ANSWER_ERROR_DEG = 180.0


def signed_error(answered: float, truth: float) -> float:
    """answered - truth wrapped to [-180, 180)."""
    return signed_delta_deg(answered, truth)


def failure_kind(answered: float | None, truth: float) -> str:
    """What an answer more than 30 degrees off did: `flip` (front <-> back: the answer nearer the truth mirrored
    through the car's side axis), `mirror` (left <-> right: nearer the truth mirrored through the long axis),
    `neighbour` (the next view), `other`; `ok` within 30 degrees, `none` without an azimuth."""
    if answered is None:
        return "none"
    error = abs(signed_error(answered, truth))
    if error <= 30.0:
        return "ok"
    flipped = abs(signed_error(answered, 180.0 - truth))  # front <-> back, same side
    mirrored = abs(signed_error(answered, -truth))  # left <-> right, same end
    if min(flipped, mirrored) <= 30.0:
        return "flip" if flipped <= mirrored else "mirror"
    return "neighbour" if error <= VIEW_BIN_DEG + 30.0 else "other"


@dataclass(frozen=True)
class YawAnswer:
    truth: float  # measured yaw, degrees
    azimuth: float | None  # answered azimuth_deg
    view: str | None  # answered view (None when withheld or absent)
    confidence: float


def yaw_report(answers: Sequence[YawAnswer]) -> dict[str, Any]:
    truth = np.array([a.truth for a in answers], dtype=float)
    has = np.array([a.azimuth is not None for a in answers])
    signed = np.array(
        [signed_error(a.azimuth, a.truth) if a.azimuth is not None else np.nan for a in answers], dtype=float
    )
    error = np.where(has, np.abs(signed), NO_ANSWER_ERROR_DEG)
    true_view = [view_of(t) for t in truth]
    # The eight-way answer: the view when given, else the view of the azimuth (a withheld view still has one).
    answered_view = [a.view or (view_of(a.azimuth) if a.azimuth is not None else None) for a in answers]
    right_bin = np.array([v == t for v, t in zip(answered_view, true_view, strict=True)])
    conf = np.array([a.confidence for a in answers], dtype=float)
    kinds = [failure_kind(a.azimuth, a.truth) for a in answers]
    n = max(1, len(answers))
    by_view: dict[str, dict[str, Any]] = {}
    for view in VIEWS:
        members = np.array([t == view for t in true_view])
        if members.any():
            by_view[view] = {
                "photos": int(members.sum()),
                "within_30": float((error[members] <= 30.0).mean()),
                "median_error": float(np.median(error[members])),
                "eight_way": float(right_bin[members].mean()),
            }
    inside = error[error <= 30.0]
    return {
        "photos": len(answers),
        "answered": int(has.sum()),
        "eight_way": float(right_bin.mean()) if len(answers) else float("nan"),
        **{f"within_{t:g}": float((error <= t).mean()) if len(answers) else float("nan") for t in TOLERANCES_DEG},
        "median_error": float(np.median(error)) if len(answers) else float("nan"),
        "mean_error": float(error.mean()) if len(answers) else float("nan"),
        "p75_error": float(np.percentile(error, 75)) if len(answers) else float("nan"),
        "median_error_within_30": float(np.median(inside)) if inside.size else float("nan"),
        "bias": float(np.nanmean(signed)) if has.any() else float("nan"),
        "median_signed_error": float(np.nanmedian(signed)) if has.any() else float("nan"),
        "failures": {k: sum(kind == k for kind in kinds) / n for k in ("flip", "mirror", "neighbour", "other", "none")},
        "by_true_view": by_view,
        "mean_confidence": float(conf.mean()) if conf.size else None,
        "ece": expected_calibration_error(conf, right_bin),
        "ece_interval_95": ece_interval(conf, right_bin),
        "reliability": reliability_table(conf, right_bin),
    }
