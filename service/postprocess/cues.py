"""Azimuth cues from the parts: part areas (the direction) and part layout (its signs). See `pose.py`."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .config import PoseConfig
from .geometry import wrap_deg
from .part_areas import K_MASK, K_WIDTH
from .types import Detection
from .vocabulary import PART_NORMAL_DEG, PART_WEIGHT

# (front part, rear part) at the same lateral position: x_front - x_rear = -dx * sin(phi).
FRONT_REAR_PAIRS: tuple[tuple[str, str], ...] = (
    ("front_left_door", "back_left_door"),
    ("front_right_door", "back_right_door"),
    ("front_left_light", "back_left_light"),
    ("front_right_light", "back_right_light"),
    ("front_bumper", "back_bumper"),
    ("front_glass", "back_glass"),
    ("hood", "trunk"),
    ("hood", "tailgate"),
)
# (left part, right part) at the same longitudinal position: x_left - x_right = dy * cos(phi).
LEFT_RIGHT_PAIRS: tuple[tuple[str, str], ...] = (
    ("front_left_light", "front_right_light"),
    ("back_left_light", "back_right_light"),
    ("left_mirror", "right_mirror"),
    ("front_left_door", "front_right_door"),
    ("back_left_door", "back_right_door"),
)


def _response_table() -> tuple[np.ndarray, np.ndarray]:
    """(raw vector-sum azimuth, true azimuth), both unwrapped and increasing, for a complete typical car.

    The normals are few and unevenly spread (three labels at 0, one at 35, ...), so even perfect
    measurements give atan2(V) a few degrees off toward the nearest well-populated face. Computing that
    expected response once for a car with every part (trunk standing for trunk/tailgate) and inverting it
    removes the systematic part of the error. The response is monotonic, so inversion is a table lookup.
    """
    labels = [label for label in PART_NORMAL_DEG if label != "tailgate"]
    theta = np.radians([PART_NORMAL_DEG[label] for label in labels])
    weight = np.array([PART_WEIGHT[label] for label in labels])
    phi = np.radians(np.arange(0.0, 360.0, 0.5))
    visible = np.clip(np.cos(phi[:, None] - theta[None, :]), 0.0, None) * weight[None, :]
    raw = np.unwrap(np.arctan2(visible @ np.sin(theta), visible @ np.cos(theta)))
    raw_deg, true_deg = np.degrees(raw), np.degrees(phi)
    # Extend by one turn on both ends so lookups near 0/360 interpolate across the seam.
    return np.concatenate([raw_deg - 360.0, raw_deg, raw_deg + 360.0]), np.concatenate(
        [true_deg - 360.0, true_deg, true_deg + 360.0]
    )


_RAW_AZIMUTH, _TRUE_AZIMUTH = _response_table()


def debias_azimuth(raw_deg: float) -> float:
    """Invert the expected vector-sum response of a complete car (see `_response_table`)."""
    # The middle copy of the table starts at raw 0 (a complete car seen from the front sums to 0 by symmetry).
    return wrap_deg(float(np.interp(wrap_deg(raw_deg), _RAW_AZIMUTH, _TRUE_AZIMUTH)))


@dataclass(frozen=True)
class PartEvidence:
    azimuth: float  # degrees, signs fixed by the layout, debiased
    strength: float  # |V|
    concentration: float  # |V| / sum of weights
    agreement: float  # 1, or less when the layout overruled the labels' signs
    evidence: float  # sum of weights
    mean_score: float  # weight-averaged detection score


def mask_area(det: Detection, image_width: float | None, image_height: float | None) -> float | None:
    """Mask pixels inside the box, or None when there is no usable mask."""
    mask = det.mask
    if not isinstance(mask, np.ndarray) or mask.ndim != 2:
        return None
    if image_width is not None and image_height is not None and mask.shape != (int(image_height), int(image_width)):
        return None  # a mask of another size cannot be trusted to line up with the box
    x0, y0, x1, y1 = det.box
    # Only count inside the box: O(box) instead of O(image), and stray pixels elsewhere are not this part.
    region = mask[int(y0) : math.ceil(y1), int(x0) : math.ceil(x1)]
    count = np.count_nonzero(region) if region.dtype == np.bool_ else np.count_nonzero(region > 0.5)
    return float(count) if count > 0 else None


def part_evidence(
    parts: list[Detection],
    car_h: float,
    car_w: float,
    image_width: float | None,
    image_height: float | None,
    cfg: PoseConfig,
) -> PartEvidence | None:
    """The part-area direction with layout-fixed signs, or None without enough evidence."""
    usable = [p for p in parts if p.label in PART_NORMAL_DEG]
    if not usable:
        return None
    n = len(usable)
    theta = np.empty(n)
    weight = np.empty(n)
    for i, part in enumerate(usable):
        area = mask_area(part, image_width, image_height)
        if area is not None:
            ratio = area / (K_MASK[part.label] * car_h * car_h)
        else:
            # Box only: the width, not the box area. A wide part seen obliquely from above grows taller in
            # the image (its far end rises), so box area overstates bumpers and lights in diagonal views;
            # the width of a vertical face is exactly its head-on width times cos(phi - theta).
            ratio = part.width / (K_WIDTH[part.label] * car_h)
        ratio = min(ratio, cfg.max_area_ratio)
        theta[i] = PART_NORMAL_DEG[part.label]
        weight[i] = PART_WEIGHT[part.label] * part.score * ratio
    evidence = float(weight.sum())
    if evidence < cfg.min_part_evidence:
        return None
    rad = np.radians(theta)
    vx = float(np.dot(weight, np.cos(rad)))
    vy = float(np.dot(weight, np.sin(rad)))
    norm = math.hypot(vx, vy)
    concentration = norm / evidence
    mean_score = float(np.dot(weight, [p.score for p in usable]) / evidence)

    centres = _label_centres(usable)
    # sin(phi) sign: labels say vy; front-vs-rear positions say -(x_front - x_rear).
    layout_sin = _pair_vote(centres, FRONT_REAR_PAIRS, car_w, cfg, sign=-1.0)
    layout_cos = _pair_vote(centres, LEFT_RIGHT_PAIRS, car_w, cfg, sign=1.0)
    agreement = 1.0
    if norm > 0.0:
        label_sin, label_cos = vy / norm, vx / norm
        vote_sin = cfg.label_sign_weight * label_sin + cfg.layout_sign_weight * layout_sin
        if vote_sin * vy < 0.0:
            vy = -vy  # the geometry says we see the other side than the labels claim: trust the geometry
            agreement *= cfg.sign_flip_agreement
        vote_cos = cfg.front_back_sign_weight * label_cos + cfg.left_right_sign_weight * layout_cos
        if vote_cos * vx < 0.0:
            vx = -vx
            agreement *= cfg.sign_flip_agreement
    azimuth = debias_azimuth(math.degrees(math.atan2(vy, vx)))
    return PartEvidence(azimuth, norm, concentration, agreement, evidence, mean_score)


def _label_centres(parts: list[Detection]) -> dict[str, tuple[float, float]]:
    """Label -> (score-weighted mean centre x, summed score); duplicates (two bumpers) are averaged."""
    acc: dict[str, list[float]] = {}
    for p in parts:
        cx = (p.box[0] + p.box[2]) / 2.0
        entry = acc.setdefault(p.label, [0.0, 0.0])
        entry[0] += p.score * cx
        entry[1] += p.score
    return {label: (s / w, w) for label, (s, w) in acc.items() if w > 0.0}


def _pair_vote(
    centres: dict[str, tuple[float, float]],
    pairs: tuple[tuple[str, str], ...],
    car_w: float,
    cfg: PoseConfig,
    sign: float,
) -> float:
    """Sum over available pairs of min(score) * tanh(sign * (x_a - x_b) / car width / scale), clamped."""
    vote = 0.0
    for a, b in pairs:
        if a in centres and b in centres:
            offset = (centres[a][0] - centres[b][0]) / car_w
            vote += min(1.0, centres[a][1], centres[b][1]) * math.tanh(sign * offset / cfg.layout_scale)
    return max(-cfg.max_pair_vote, min(cfg.max_pair_vote, vote))
