"""A learned view classifier's probabilities -> view, confidence and an azimuth inside the chosen view's bin.

The classifier (run by a backend on the main car's crop) knows the eight-way view better than the part rule. By
default the rule's azimuth sets the angle inside the chosen view when it lies within reach
(`PoseConfig.rule_sets_angle`), moved just inside the bin when it does not agree. Otherwise the angle is read from
the probabilities: a classifier trained with `HeadRecipe.yaw_targets` encodes a yaw a fraction f of the way from
view k's centre to view k+1's as k: 1 - f, k+1: f, and `azimuth_from_probs` reads that back (docs/views.md).
"""

from __future__ import annotations

import math

import numpy as np

from .geometry import VIEW_BIN_DEG, angle_diff_deg, signed_delta_deg, wrap_deg
from .vocabulary import VIEWS

# Moved or clamped azimuths end this far inside the bin edge, so that `view_of(azimuth)` is the chosen view
# also after the API rounds the azimuth to 0.1 degree (a whole degree cost the turntable's half-step positions,
# which lie on bin edges, exactly that much error).
EDGE_INSET_DEG = 0.1

# The rule's azimuth sets the angle within the chosen view only while it lies at most one bin beyond that view's
# edge: a rule one bin off (its typical miss, a three-quarter view read as `front`) still knows which edge is
# nearer, but a rule that is further off (a back view read as front) knows nothing about the angle inside the bin.
RULE_REACH_DEG = VIEW_BIN_DEG


def valid_view_probs(probs: object) -> np.ndarray | None:
    """The probabilities normalised to sum 1, or None unless they are len(VIEWS) finite non-negative numbers
    with a positive sum (anything else is ignored, never an error)."""
    if probs is None or isinstance(probs, str | bytes):
        return None
    try:
        arr = np.asarray(probs, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if arr.shape != (len(VIEWS),) or not np.all(np.isfinite(arr)) or np.any(arr < 0.0):
        return None
    total = float(arr.sum())
    if not (math.isfinite(total) and total > 0.0):
        return None
    return arr / total


def bin_centre(index: int) -> float:
    return (index % len(VIEWS)) * VIEW_BIN_DEG


def into_bin(azimuth: float, index: int) -> float:
    """`azimuth` when it lies in view `index`'s bin, else the nearest point EDGE_INSET_DEG inside its edge."""
    centre = bin_centre(index)
    offset = signed_delta_deg(wrap_deg(azimuth), centre)
    half = VIEW_BIN_DEG / 2.0
    if -half <= offset < half:
        return wrap_deg(azimuth)
    limit = half - EDGE_INSET_DEG
    return wrap_deg(centre + (limit if offset > 0.0 else -limit))


def clamp_into_bin(azimuth: float, index: int) -> float:
    """`azimuth` limited to EDGE_INSET_DEG inside view `index`'s bin (for an azimuth made from the bin itself)."""
    centre = bin_centre(index)
    offset = signed_delta_deg(wrap_deg(azimuth), centre)
    limit = VIEW_BIN_DEG / 2.0 - EDGE_INSET_DEG
    return wrap_deg(centre + max(-limit, min(limit, offset)))


def azimuth_from_probs(probs: np.ndarray, index: int) -> float:
    """The yaw the probabilities encode, inside view `index`'s bin: its centre moved toward the stronger neighbour
    (the one above on a tie) by that neighbour's share of the pair: the inverse of the training targets, where a
    share f means f x 45 degrees."""
    n = len(VIEWS)
    below, above = float(probs[(index - 1) % n]), float(probs[(index + 1) % n])
    neighbour, sign = (above, 1.0) if above >= below else (below, -1.0)
    total = float(probs[index]) + neighbour
    share = neighbour / total if total > 0.0 else 0.0
    return clamp_into_bin(bin_centre(index) + sign * VIEW_BIN_DEG * share, index)


def with_rule_veto(
    probs: np.ndarray, rule_azimuth: float | None, rule_confidence: float, strength: float, free_deg: float
) -> np.ndarray:
    """The probabilities with views far from the rule's azimuth made less likely, renormalised.

    The rule and the classifier fail differently: the rule is often one bin off (three-quarter views read as
    the axis) but rarely on the wrong side of the car, where its layout cues (front vs rear parts, left vs
    right) are exact sign relations; the classifier is rarely off by one bin but, on an unusual car, can split
    its belief between a view and its mirror or its opposite. So views within `free_deg` of the rule's azimuth
    keep their probability, and beyond that a view loses up to exp(-strength x rule confidence) at the opposite
    side: a confident classifier still wins over an unsure rule, a split classifier follows the rule's side.
    """
    if rule_azimuth is None or not math.isfinite(rule_azimuth) or strength <= 0.0:
        return probs
    centres = np.array([bin_centre(i) for i in range(len(VIEWS))])
    distance = np.abs(signed_delta_deg(centres, wrap_deg(rule_azimuth)))
    beyond = np.clip((distance - free_deg) / max(180.0 - free_deg, 1e-6), 0.0, 1.0)
    weighted = probs * np.exp(-strength * max(0.0, min(1.0, rule_confidence)) * beyond)
    total = float(weighted.sum())
    return weighted / total if total > 0.0 and math.isfinite(total) else probs


def classifier_azimuth(
    probs: np.ndarray, rule_azimuth: float | None, index: int | None = None, rule_sets_angle: bool = True
) -> tuple[int, float]:
    """(chosen view index, azimuth in its bin): with `rule_sets_angle`, the rule's azimuth when it has one within
    reach of the bin, else (and always without it) the yaw the probabilities encode. `index`: the chosen view when
    it is not the probs' argmax (after a rule veto)."""
    index = int(np.argmax(probs)) if index is None else index
    reach = VIEW_BIN_DEG / 2.0 + RULE_REACH_DEG
    if (
        rule_sets_angle
        and rule_azimuth is not None
        and math.isfinite(rule_azimuth)
        and angle_diff_deg(rule_azimuth, bin_centre(index)) <= reach
    ):
        return index, into_bin(rule_azimuth, index)
    return index, azimuth_from_probs(probs, index)
