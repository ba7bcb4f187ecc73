"""Detected car parts -> which side of the car faces the camera (pure numpy, never raises on model output).

Frames and conventions
----------------------
Car frame: x forward, y to the car's LEFT, z up. The camera sits at azimuth phi around the car, in direction
d = (cos phi, sin phi) from the car: phi = 0 sees the front, 90 the LEFT side (nose toward the image's left),
180 the back, 270 the right side. The camera looks along -d, so its right vector in the car frame is
r = (-sin phi, cos phi) (phi = 0: the car's left is on the image's right; phi = 90: the nose is on the image's
left). Under weak perspective a car point p lands at image x ~ p . r.

Cue 1, part areas (the main one)
--------------------------------
Every part label p has an outward surface normal at azimuth theta_p in the car frame (front_bumper 0,
front_left_light 35, left_mirror 60, left doors 90, back_left_light 145, back parts 180, ... see
`PART_NORMAL_DEG`). A face of area A_p seen from azimuth phi projects to A_p * max(0, cos(phi - theta_p)).
The car's height in the image barely changes with yaw (its width does), so with a mask
a_p / (K_p * H**2) (a_p mask pixels, H the car box height, K_p the part's typical head-on area relative to
H**2, calibrated on the training split by `calibrate.py` -> `part_areas.py`), and without a mask
w_p / (Kw_p * H) (box width against the typical head-on width: box HEIGHTS of wide parts seen obliquely from
above grow, since their far end rises in the image, while the width of a vertical face is exactly its
head-on width times cos), estimates c_p = max(0, cos(phi - theta_p)). The weighted vector sum

    V = sum_p g_p * s_p * c_p * u(theta_p),        u(t) = (cos t, sin t), s_p the detection score,

is, for parts spread around the visible half circle, proportional to the integral of cos(phi - t) u(t) over
|t - phi| < 90, which points at phi. g_p gives each face (front, back, each side) the same total weight so a
face with three parts (bumper, glass, hood) does not drag the direction toward itself; lights get less and
mirrors much less (small, often missed, their normal is vague). The normals are few and uneven, so even
perfect measurements bias atan2(V) toward well-populated faces by a few degrees; `debias_azimuth` inverts
the expected response of a complete car (a monotonic lookup table built at import). So phi is estimated
from ALL the evidence: a half-seen front bumper and two big doors give a side-leaning diagonal, not
"front" because a bumper is present.

Cue 2, layout (fixes signs, robust to left/right label confusion)
-----------------------------------------------------------------
With x_img(p) = p . r, for two parts at the same lateral position (y) but front vs rear (front_left_door vs
back_left_door, front_bumper vs back_bumper, ...): x_front - x_rear = -(dx) sin phi, dx > 0. For two parts at
the same longitudinal position but left vs right (front_left_light vs front_right_light, mirrors, ...):
x_left - x_right = (dy) cos phi, dy > 0. These are exact sign relations of the geometry. The first one holds
even when a detector calls the right doors "left doors" (both labels of a pair swap together), so it decides
the sign of sin(phi) (which side faces us) over the left/right labels' vote. Front/back labels are rarely
confused, so for the sign of cos(phi) the area cue keeps the larger vote and left-vs-right pairs
(lights, mirrors) help when front and back evidence is weak. A sign decision reflects V (y -> -y or x -> -x).

Cue 3, wheel ellipses
---------------------
A wheel is a disc whose axis is the car's y axis: seen from phi its box is |sin phi| as wide as it is tall,
plus the tyre tread seen end-on; we model width / height = sqrt(sin^2 phi + t^2 cos^2 phi) (t ~ 0.3). This
gives |sin phi| without labels but no sign, so it is placed in the quadrant of the part estimate and blended
in with a weight that shrinks near side views, where |sin| is flat and says little about the angle.

Combination and confidence
--------------------------
Final direction = atan2 of kappa_parts * u(phi_parts) + kappa_wheels * u(phi_wheels), kappa_parts = |V|.
Confidence multiplies the mean part score, the amount of evidence (1 - exp(-sum of weights / scale)), the
concentration |V| / sum of weights (low when front and back evidence cancel) and the agreement of the cues
(layout vs labels, wheels vs parts). Concentration below `min_concentration` -> no view, "view_ambiguous".

Tilt comes from two wheels on the same side of the car; which pair is "same side" is decided from the
expected horizontal separation at the estimated azimuth (wheelbase * |sin| vs track * |cos|), or, without
azimuth (car + wheels only, e.g. Amazon Rekognition DetectLabels), from near-round, similar, far-apart wheels.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .geometry import box_areas, boxes_array, coarse_view_of, inside_fraction, union_box, view_of, wrap_deg
from .labels import CAR_LABEL, PART_LABELS, WHEEL_LABEL
from .part_areas import K_MASK, K_WIDTH
from .types import Detection, Point, PoseEstimate

logger = logging.getLogger(__name__)

REASON_NO_CAR = "no_car"
REASON_CAR_TOO_SMALL = "car_too_small"
REASON_TOO_FEW_PARTS = "too_few_parts"
REASON_VIEW_AMBIGUOUS = "view_ambiguous"
REASONS: tuple[str, ...] = (REASON_NO_CAR, REASON_CAR_TOO_SMALL, REASON_TOO_FEW_PARTS, REASON_VIEW_AMBIGUOUS)

# Outward normal azimuth of each part in the car frame (degrees, 0 = forward, 90 = car's left).
PART_NORMAL_DEG: dict[str, float] = {
    "front_bumper": 0.0,
    "front_glass": 0.0,
    "hood": 0.0,
    "front_left_light": 35.0,
    "left_mirror": 60.0,
    "front_left_door": 90.0,
    "back_left_door": 90.0,
    "back_left_light": 145.0,
    "back_bumper": 180.0,
    "back_glass": 180.0,
    "trunk": 180.0,
    "tailgate": 180.0,
    "back_right_light": 215.0,
    "back_right_door": 270.0,
    "front_right_door": 270.0,
    "right_mirror": 300.0,
    "front_right_light": 325.0,
}
# Per-label weight. Each face sums to ~2 (two doors at 1; bumper + glass + hood; bumper + glass + trunk OR
# tailgate), so faces with more parts do not pull the direction toward themselves. Within the front and back
# faces the vertical bumper counts most: windscreens and the hood lean back, so their image size follows the
# yaw much less (a hood is still wide when seen from 60 degrees). Lights less, mirrors little (small, often
# missed, normal vague).
PART_WEIGHT: dict[str, float] = {
    "front_bumper": 1.0,
    "front_glass": 0.5,
    "hood": 0.35,
    "back_bumper": 1.0,
    "back_glass": 0.4,
    "trunk": 0.6,
    "tailgate": 0.6,
    "front_left_door": 1.0,
    "back_left_door": 1.0,
    "front_right_door": 1.0,
    "back_right_door": 1.0,
    "front_left_light": 0.7,
    "front_right_light": 0.7,
    "back_left_light": 0.7,
    "back_right_light": 0.7,
    "left_mirror": 0.25,
    "right_mirror": 0.25,
}
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
KNOWN_LABELS = frozenset((*PART_LABELS, CAR_LABEL))


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


# Typical car dimensions (m), only their ratios matter: expected wheel separations in car-box widths.
CAR_LENGTH, CAR_WIDTH, WHEELBASE, TRACK = 4.6, 1.8, 2.7, 1.55
MAX_WHEELS_CONSIDERED = 6  # pairs grow quadratically; more than 6 wheels on one car is detector noise


@dataclass(frozen=True)
class PoseConfig:
    score_threshold: float = 0.5  # detections below are ignored
    min_car_area_fraction: float = 0.01  # car box area / image area below -> car_too_small
    min_car_side_px: float = 32.0  # shorter car box side below -> car_too_small
    min_part_inside: float = 0.5  # part box fraction inside the main car box to belong to it
    other_car_margin: float = 0.25  # ...unless it lies this much more inside another car box
    min_part_evidence: float = 0.25  # sum of weighted normalised part areas below -> too few parts
    min_concentration: float = 0.2  # |V| / sum of weights below -> view_ambiguous
    max_area_ratio: float = 2.0  # cap of a_p / (K_p H^2): one oversized box must not dominate
    label_sign_weight: float = 0.5  # vote of the left/right labels on the sign of sin(phi)
    layout_sign_weight: float = 1.0  # vote of front-vs-rear positions on the sign of sin(phi)
    front_back_sign_weight: float = 1.0  # vote of the front/back labels on the sign of cos(phi)
    left_right_sign_weight: float = 0.5  # vote of left-vs-right positions on the sign of cos(phi)
    layout_scale: float = 0.05  # position offsets (in car widths) beyond this count as a full vote
    wheel_weight: float = 0.75  # weight of the wheel-ellipse cue relative to |V|
    wheel_tread_ratio: float = 0.3  # tyre width / wheel diameter: a wheel's aspect seen end-on
    side_wheel_min_aspect: float = 0.55  # without azimuth: wheels at least this round count as side-on
    side_wheel_min_separation: float = 0.35  # without azimuth: pair centres at least this far (car widths)
    wheel_similar_ratio: float = 0.7  # without azimuth: smaller / larger wheel height of a same-side pair
    wheel_separation_tolerance: float = 0.5  # with azimuth: max |log(separation / expected)| of a same-side pair
    tilt_min_side_deg: float = 20.0  # |azimuth from front/back| below: same-side wheels are not usable
    evidence_scale: float = 1.5  # sum of weights giving 63% of the "amount of evidence" factor


DEFAULT_CONFIG = PoseConfig()


@dataclass(frozen=True)
class _Image:
    width: float | None  # None when the given size is unusable: no clipping, no area fraction
    height: float | None


def estimate_pose(
    detections: Sequence[Detection], image_size: tuple[int, int], config: PoseConfig | None = None
) -> PoseEstimate:
    """Pose of the main car from detections (pixels of the image of `image_size` = (width, height))."""
    cfg = config or DEFAULT_CONFIG
    try:
        return estimate_pose_unguarded(detections, image_size, cfg)
    except Exception:  # last-resort guard: a pose bug must not turn into a 500
        logger.exception("pose estimation failed; returning no view")
        return _empty(REASON_TOO_FEW_PARTS, cars_detected=0)


def estimate_pose_unguarded(
    detections: Sequence[Detection], image_size: tuple[int, int], cfg: PoseConfig = DEFAULT_CONFIG
) -> PoseEstimate:
    """`estimate_pose` without the safety net, so tests see real exceptions."""
    image = _image(image_size)
    clean = _clean(detections, image, cfg)
    cars = [d for d in clean if d.label == CAR_LABEL]
    candidates = [d for d in clean if d.label != CAR_LABEL]

    if cars:
        car, other_cars = _main_car(cars, image)
        cars_detected = len(cars)
    elif candidates:
        # Parts-only models (e.g. Custom Labels): the car is the union of the parts.
        box = union_box(boxes_array([d.box for d in candidates]))
        car = Detection(CAR_LABEL, box, max(d.score for d in candidates))
        other_cars, cars_detected = [], 1
    else:
        return _empty(REASON_NO_CAR, cars_detected=0)

    members = _assign(candidates, car, other_cars, cfg)
    wheels = [d for d in members if d.label == WHEEL_LABEL]
    parts = [d for d in members if d.label != WHEEL_LABEL]

    def result(**kw: object) -> PoseEstimate:
        base: dict[str, object] = {
            "view": None,
            "coarse_view": None,
            "azimuth_deg": None,
            "tilt_deg": None,
            "confidence": 0.0,
            "reason": None,
            "cars_detected": cars_detected,
            "car": car,
            "wheels": wheels,
            "parts": parts,
            "wheel_line": None,
        }
        base.update(kw)
        return PoseEstimate(**base)  # type: ignore[arg-type]

    if _too_small(car, image, cfg):
        return result(reason=REASON_CAR_TOO_SMALL)

    car_w = max(car.width, 1e-6)
    car_h = max(car.height, 1e-6)
    parts_est = _part_evidence(parts, car_h, car_w, image, cfg)

    if parts_est is None:
        # Car + wheels only (Rekognition DetectLabels): tilt and maybe "side", never a guessed view.
        pair = _wheel_pair(wheels, car_w, None, cfg)
        if len(wheels) < 2:
            return result(reason=REASON_TOO_FEW_PARTS)
        tilt, line = _tilt(wheels, pair)
        coarse = "side" if pair is not None else None
        confidence = 0.4 * min(wheels[pair[0]].score, wheels[pair[1]].score) if pair is not None else 0.0
        return result(
            coarse_view=coarse,
            tilt_deg=tilt,
            wheel_line=line,
            confidence=round(confidence, 3),
            reason=REASON_VIEW_AMBIGUOUS,
        )

    phi_parts, kappa, concentration, layout_agreement, evidence, mean_score = parts_est
    if concentration < cfg.min_concentration:
        pair = _wheel_pair(wheels, car_w, None, cfg)
        tilt, line = _tilt(wheels, pair)
        return result(
            coarse_view="side" if pair is not None else None,
            tilt_deg=tilt,
            wheel_line=line,
            confidence=round(0.2 * mean_score * concentration / cfg.min_concentration, 3),
            reason=REASON_VIEW_AMBIGUOUS,
        )

    pair = _wheel_pair(wheels, car_w, phi_parts, cfg)
    azimuth, wheel_agreement = _fuse_wheels(phi_parts, kappa, wheels, pair, cfg)
    if pair is not None and not _side_on(azimuth, cfg):
        pair = None  # the final azimuth is front/back-on: the pair is an axle, not one side
    tilt, line = _tilt(wheels, pair)

    amount = 1.0 - math.exp(-evidence / cfg.evidence_scale)
    spread = min(1.0, max(0.0, (concentration - cfg.min_concentration) / (0.8 - cfg.min_concentration)))
    confidence = mean_score * (0.4 + 0.6 * amount) * (0.3 + 0.7 * spread) * layout_agreement * wheel_agreement
    azimuth = round(wrap_deg(azimuth), 1) % 360.0
    return result(
        view=view_of(azimuth),
        coarse_view=coarse_view_of(azimuth),
        azimuth_deg=azimuth,
        tilt_deg=tilt,
        confidence=round(min(1.0, max(0.0, confidence)), 3),
        wheel_line=line,
    )


# --------------------------------------------------------------------------------------------------- input


def _image(image_size: tuple[int, int]) -> _Image:
    try:
        width, height = (float(v) for v in image_size)
    except (TypeError, ValueError):
        return _Image(None, None)
    if not (math.isfinite(width) and math.isfinite(height) and width > 0 and height > 0):
        return _Image(None, None)
    return _Image(width, height)


def _clean(detections: Sequence[Detection], image: _Image, cfg: PoseConfig) -> list[Detection]:
    """Known labels above threshold with finite, ordered, image-clipped, non-empty boxes."""
    out: list[Detection] = []
    for det in detections if detections is not None else ():
        try:
            label = det.label
            score = float(det.score)
            x0, y0, x1, y1 = (float(v) for v in det.box)
        except (AttributeError, TypeError, ValueError):
            continue
        if not isinstance(label, str) or label not in KNOWN_LABELS:
            continue  # unknown labels are ignored, never an error
        if not math.isfinite(score) or score < cfg.score_threshold:
            continue
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
            continue
        x0, x1 = min(x0, x1), max(x0, x1)  # inverted boxes: a backend's coordinate slip, not garbage
        y0, y1 = min(y0, y1), max(y0, y1)
        if image.width is not None and image.height is not None:
            x0, x1 = min(max(x0, 0.0), image.width), min(max(x1, 0.0), image.width)
            y0, y1 = min(max(y0, 0.0), image.height), min(max(y1, 0.0), image.height)
        if x1 - x0 <= 0.0 or y1 - y0 <= 0.0:
            continue
        box = (x0, y0, x1, y1)
        if box == det.box and score <= 1.0 and label == det.label:
            out.append(det)
        else:
            out.append(replace(det, box=box, score=min(score, 1.0)))
    return out


def _main_car(cars: list[Detection], image: _Image) -> tuple[Detection, list[Detection]]:
    """The car with the largest score x area x centrality; the others."""
    boxes = boxes_array([c.box for c in cars])
    scores = np.array([c.score for c in cars])
    merit = scores * box_areas(boxes)
    if image.width is not None and image.height is not None:
        cx = (boxes[:, 0] + boxes[:, 2]) / 2.0 - image.width / 2.0
        cy = (boxes[:, 1] + boxes[:, 3]) / 2.0 - image.height / 2.0
        off_centre = np.hypot(cx, cy) / (0.5 * math.hypot(image.width, image.height))
        # 1 at the centre, 0.5 in a corner: centrality breaks near-ties, a much bigger car still wins.
        merit = merit * (1.0 - 0.5 * np.clip(off_centre, 0.0, 1.0))
    best = int(np.argmax(merit))
    return cars[best], [c for i, c in enumerate(cars) if i != best]


def _assign(candidates: list[Detection], car: Detection, others: list[Detection], cfg: PoseConfig) -> list[Detection]:
    """Parts mostly inside the main car box, unless clearly more inside another car's box."""
    if not candidates:
        return []
    boxes = boxes_array([d.box for d in candidates])
    inside = inside_fraction(boxes, np.asarray(car.box, dtype=np.float64))
    keep = inside >= cfg.min_part_inside
    for other in others:
        keep &= inside_fraction(boxes, np.asarray(other.box, dtype=np.float64)) <= inside + cfg.other_car_margin
    return [d for d, k in zip(candidates, keep, strict=True) if k]


def _too_small(car: Detection, image: _Image, cfg: PoseConfig) -> bool:
    if min(car.width, car.height) < cfg.min_car_side_px:
        return True
    if image.width is None or image.height is None:
        return False
    return car.width * car.height < cfg.min_car_area_fraction * image.width * image.height


def _mask_area(det: Detection, image: _Image) -> float | None:
    """Mask pixels inside the box, or None when there is no usable mask."""
    mask = det.mask
    if not isinstance(mask, np.ndarray) or mask.ndim != 2:
        return None
    if image.width is not None and image.height is not None and mask.shape != (int(image.height), int(image.width)):
        return None  # a mask of another size cannot be trusted to line up with the box
    x0, y0, x1, y1 = det.box
    # Only count inside the box: O(box) instead of O(image), and stray pixels elsewhere are not this part.
    region = mask[int(y0) : math.ceil(y1), int(x0) : math.ceil(x1)]
    count = np.count_nonzero(region) if region.dtype == np.bool_ else np.count_nonzero(region > 0.5)
    return float(count) if count > 0 else None


# --------------------------------------------------------------------------------------------------- parts


def _part_evidence(
    parts: list[Detection], car_h: float, car_w: float, image: _Image, cfg: PoseConfig
) -> tuple[float, float, float, float, float, float] | None:
    """(azimuth, |V|, concentration, layout agreement, evidence, mean score) or None without evidence."""
    usable = [p for p in parts if p.label in PART_NORMAL_DEG]
    if not usable:
        return None
    n = len(usable)
    theta = np.empty(n)
    weight = np.empty(n)
    for i, part in enumerate(usable):
        mask_area = _mask_area(part, image)
        if mask_area is not None:
            ratio = mask_area / (K_MASK[part.label] * car_h * car_h)
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
            agreement *= 0.7
        vote_cos = cfg.front_back_sign_weight * label_cos + cfg.left_right_sign_weight * layout_cos
        if vote_cos * vx < 0.0:
            vx = -vx
            agreement *= 0.7
    azimuth = debias_azimuth(math.degrees(math.atan2(vy, vx)))
    return azimuth, norm, concentration, agreement, evidence, mean_score


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
    """Sum over available pairs of min(score) * tanh(sign * (x_a - x_b) / car width / scale), in [-1.5, 1.5]."""
    vote = 0.0
    for a, b in pairs:
        if a in centres and b in centres:
            offset = (centres[a][0] - centres[b][0]) / car_w
            vote += min(1.0, centres[a][1], centres[b][1]) * math.tanh(sign * offset / cfg.layout_scale)
    return max(-1.5, min(1.5, vote))


# -------------------------------------------------------------------------------------------------- wheels


def _side_on(azimuth: float, cfg: PoseConfig) -> bool:
    return abs(math.sin(math.radians(azimuth))) >= math.sin(math.radians(cfg.tilt_min_side_deg))


def _wheel_pair(
    wheels: list[Detection], car_w: float, azimuth: float | None, cfg: PoseConfig
) -> tuple[int, int] | None:
    """Indices of the two wheels most likely on the same (near) side of the car, or None."""
    if len(wheels) < 2:
        return None
    if azimuth is not None and not _side_on(azimuth, cfg):
        return None  # front/back view: the visible wheels are an axle's left and right wheel
    order = sorted(range(len(wheels)), key=lambda i: -wheels[i].height * wheels[i].score)[:MAX_WHEELS_CONSIDERED]
    boxes = boxes_array([wheels[i].box for i in order])
    cx = (boxes[:, 0] + boxes[:, 2]) / 2.0
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    aspect = w / h
    if azimuth is not None:
        s = abs(math.sin(math.radians(azimuth)))
        c = abs(math.cos(math.radians(azimuth)))
        box_w = CAR_LENGTH * s + CAR_WIDTH * c  # car box width in the same units
        expect_same = max(WHEELBASE * s / box_w, 1e-3)
        expect_axle = max(TRACK * c / box_w, 1e-3)
    best: tuple[float, int, int] | None = None
    for i in range(len(order)):
        for j in range(i + 1, len(order)):
            similar = min(h[i], h[j]) / max(h[i], h[j])
            sep = abs(cx[i] - cx[j]) / car_w
            if sep <= 0.0:
                continue
            fit = 1.0
            if azimuth is not None:
                # Same side when the separation fits wheelbase*|sin| better than track*|cos| (log scale) and
                # not much worse than that: a diagonal pair (rear-left + front-right) is further apart.
                misfit = abs(math.log(sep / expect_same))
                if misfit > abs(math.log(sep / expect_axle)) or misfit > cfg.wheel_separation_tolerance:
                    continue
                fit = math.exp(-misfit)
            elif (
                min(aspect[i], aspect[j]) < cfg.side_wheel_min_aspect
                or sep < cfg.side_wheel_min_separation
                or similar < cfg.wheel_similar_ratio
            ):
                continue
            # Near-side wheels are the big, similar ones; far apart beats two wheels of a cluster.
            merit = fit * similar * (h[i] + h[j]) * min(1.0, sep / 0.3)
            if best is None or merit > best[0]:
                best = (merit, order[i], order[j])
    return None if best is None else (best[1], best[2])


def _tilt(wheels: list[Detection], pair: tuple[int, int] | None) -> tuple[float | None, tuple[Point, Point] | None]:
    """Counter-clockwise angle (degrees, (-90, 90]) of the line through the pair's centres; its end points."""
    if pair is None:
        return None, None
    a, b = wheels[pair[0]].center, wheels[pair[1]].center
    left, right = (a, b) if a[0] <= b[0] else (b, a)
    dx, dy = right[0] - left[0], left[1] - right[1]  # image y grows downward: dy > 0 when right is higher
    if dx == 0.0 and dy == 0.0:
        return None, None
    tilt = math.degrees(math.atan2(dy, dx))
    if tilt <= -90.0:
        tilt = 90.0
    return round(tilt, 2), (left, right)


def _fuse_wheels(
    phi_parts: float, kappa: float, wheels: list[Detection], pair: tuple[int, int] | None, cfg: PoseConfig
) -> tuple[float, float]:
    """Blend the wheel-ellipse |sin(phi)| into the part azimuth; returns (azimuth, agreement factor)."""
    chosen = list(pair) if pair is not None else []
    if not chosen and wheels:
        chosen = [max(range(len(wheels)), key=lambda i: wheels[i].height * wheels[i].score)]
    if not chosen:
        return phi_parts, 1.0
    aspects = [wheels[i].width / wheels[i].height for i in chosen]
    score = float(np.mean([wheels[i].score for i in chosen]))
    t = cfg.wheel_tread_ratio
    sin2 = (float(np.median(aspects)) ** 2 - t * t) / (1.0 - t * t)
    s_w = math.sqrt(min(1.0, max(0.0, sin2)))
    c_w = math.sqrt(1.0 - s_w * s_w)
    rad = math.radians(phi_parts)
    cos_sign = 1.0 if math.cos(rad) >= 0.0 else -1.0
    sin_sign = 1.0 if math.sin(rad) >= 0.0 else -1.0
    phi_wheels = math.degrees(math.atan2(sin_sign * s_w, cos_sign * c_w))
    # |sin| is flat near side views: there the wheels say little about the exact angle.
    kappa_w = cfg.wheel_weight * score * max(0.2, c_w)
    x = kappa * math.cos(rad) + kappa_w * math.cos(math.radians(phi_wheels))
    y = kappa * math.sin(rad) + kappa_w * math.sin(math.radians(phi_wheels))
    azimuth = math.degrees(math.atan2(y, x))
    disagreement = abs(s_w - abs(math.sin(rad)))
    agreement = 1.0 - 0.5 * min(1.0, disagreement / 0.5)
    return azimuth, agreement


def _empty(reason: str, cars_detected: int) -> PoseEstimate:
    return PoseEstimate(
        view=None,
        coarse_view=None,
        azimuth_deg=None,
        tilt_deg=None,
        confidence=0.0,
        reason=reason,
        cars_detected=cars_detected,
        car=None,
        wheels=[],
        parts=[],
        wheel_line=None,
    )
