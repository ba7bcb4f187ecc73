"""Agreement of predicted views with views labelled by eye, and how well confidences are calibrated.

A prediction agrees with a label when it is the labelled view or one of the label's acceptable neighbours (photos
near a bin edge). `strict` figures ignore the neighbours. Calibration compares the confidence with that same
agreement: a confidence of 0.9 should be right nine times in ten.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from service.postprocess import VIEWS, coarse_view_of
from service.postprocess.geometry import VIEW_BIN_DEG

NO_VIEW = "none"
VIEW_AXIS = (*VIEWS, NO_VIEW)
RELIABILITY_BINS = 10
TARGET_PRECISION = 0.97
BOOTSTRAP_RESAMPLES = 2000


class LabelLike(Protocol):
    @property
    def view(self) -> str: ...
    @property
    def alternates(self) -> tuple[str, ...]: ...


def agrees(view: str | None, label: LabelLike) -> bool:
    """The answered view is the labelled one or one of its acceptable neighbours."""
    return view == label.view or view in label.alternates


def coarse_views_of(view: str) -> frozenset[str]:
    """The coarse views a view's 45-degree bin overlaps: front_left spans front (to 45) and side (from 45)."""
    centre = VIEWS.index(view) * VIEW_BIN_DEG
    half = VIEW_BIN_DEG / 2.0 - 1e-6
    return frozenset({coarse_view_of(centre - half), coarse_view_of(centre + half)})


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = RELIABILITY_BINS) -> float:
    """Share-weighted mean |accuracy - mean confidence| over equal-width confidence bins."""
    if confidence.size == 0:
        return float("nan")
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            total += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(total)


def ece_interval(
    confidence: np.ndarray, correct: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0
) -> tuple[float, float] | None:
    """95% percentile-bootstrap interval of the ECE over the photos: how far a set of this size pins it down (on 100
    photos the ECE moves by a few hundredths with the photos drawn). Fixed seed: the same data prints the same."""
    if confidence.size < 2:
        return None
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, confidence.size, size=(resamples, confidence.size))
    values = [expected_calibration_error(confidence[rows], correct[rows]) for rows in draws]
    low, high = np.percentile(values, [2.5, 97.5])
    return round(float(low), 4), round(float(high), 4)


def ece_interval_text(report: dict[str, Any]) -> str:
    """ " (95% bootstrap interval a-b)" after a printed ECE, or nothing for reports written before it existed."""
    interval = report.get("ece_interval_95")
    return "" if not interval else f" (95% bootstrap interval {interval[0]:.3f}-{interval[1]:.3f})"


def reliability_table(confidence: np.ndarray, correct: np.ndarray, bins: int = RELIABILITY_BINS) -> list[dict]:
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        members = index == b
        rows.append(
            {
                "bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}",
                "count": int(members.sum()),
                "mean_confidence": float(confidence[members].mean()) if members.any() else None,
                "accuracy": float(correct[members].mean()) if members.any() else None,
            }
        )
    return rows


def precision_threshold(confidence: np.ndarray, correct: np.ndarray, target: float = TARGET_PRECISION) -> dict:
    """The lowest confidence floor above which the views are right >= target, and the share of photos above it."""
    order = np.argsort(-confidence, kind="stable")
    ranked = confidence[order]
    right = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    # A floor can only cut between distinct confidences: a prefix may end only where the next photo's confidence
    # is lower (answers are rounded, so ties are common), else the floor would also admit the rest of the tie.
    ends_a_tie = np.append(ranked[:-1] > ranked[1:], True)
    meets = np.flatnonzero((right >= target) & ends_a_tie)
    if meets.size == 0:
        return {"target": target, "threshold": None, "share": 0.0, "accuracy": None}
    # The longest such prefix (by descending confidence) that still meets the target.
    last = int(meets.max())
    threshold = float(ranked[last])
    above = confidence >= threshold
    return {
        "target": target,
        "threshold": round(threshold, 4),
        "share": float(above.mean()),
        "accuracy": float(correct[above].mean()),
    }


def view_report(
    predicted: Sequence[str | None],
    confidence: Sequence[float],
    labels: Sequence[LabelLike],
    predicted_coarse: Sequence[str | None] | None = None,
) -> dict[str, Any]:
    """Agreement, strict agreement, coarse agreement, confusion matrix and calibration figures.

    Coarse agreement: the answered coarse view (from its azimuth) is one the labelled view's bin overlaps; without
    answered coarse views (a classifier alone has no azimuth), the answered view's bin must overlap one of them.
    """
    shown = [p if p is not None else NO_VIEW for p in predicted]
    if predicted_coarse is None:
        answered = [coarse_views_of(p) if p != NO_VIEW else frozenset() for p in shown]
    else:
        answered = [frozenset({c}) if c is not None else frozenset() for c in predicted_coarse]
    ok = np.array([agrees(p, lab) for p, lab in zip(shown, labels, strict=True)])
    strict = np.array([p == lab.view for p, lab in zip(shown, labels, strict=True)])
    coarse_ok = np.array(
        [
            bool(coarse & frozenset().union(*(coarse_views_of(v) for v in (lab.view, *lab.alternates))))
            for coarse, lab in zip(answered, labels, strict=True)
        ]
    )
    matrix = np.zeros((len(VIEWS), len(VIEW_AXIS)), dtype=int)
    for p, lab in zip(shown, labels, strict=True):
        matrix[VIEWS.index(lab.view), VIEW_AXIS.index(p)] += 1
    conf = np.asarray(confidence, dtype=float)
    return {
        "photos": len(labels),
        "eight_way": float(ok.mean()),
        "eight_way_strict": float(strict.mean()),
        "coarse": float(coarse_ok.mean()),
        "confusion": {"rows_labelled": list(VIEWS), "columns_predicted": list(VIEW_AXIS), "counts": matrix.tolist()},
        "ece": expected_calibration_error(conf, ok),
        "ece_interval_95": ece_interval(conf, ok),
        "reliability": reliability_table(conf, ok),
        "precision_97": precision_threshold(conf, ok),
        "mean_confidence": float(conf.mean()) if conf.size else None,
    }


def format_confusion(confusion: dict[str, Any]) -> str:
    """The confusion matrix as a fixed-width text table (rows: labelled, columns: predicted)."""
    columns = confusion["columns_predicted"]
    short = [c.replace("front", "f").replace("back", "b").replace("_left", "L").replace("_right", "R") for c in columns]
    lines = ["labelled \\ predicted".ljust(22) + "".join(s.rjust(6) for s in short)]
    for row, counts in zip(confusion["rows_labelled"], confusion["counts"], strict=True):
        lines.append(row.ljust(22) + "".join(str(n).rjust(6) for n in counts))
    return "\n".join(lines)
