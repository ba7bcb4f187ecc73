"""Detected car parts -> which side of the car faces the camera (pure numpy, never raises on model output).

This module assembles the answer; the jobs live next to it: `cars.py` (cleaning, main car, part
assignment), `cues.py` (part-area and layout cues), `wheels.py` (wheel pair, tilt, ellipse cue),
`config.py` (every tunable number) and `vocabulary.py` (labels, normals, weights, mirror twins).

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
`vocabulary.PARTS`). A face of area A_p seen from azimuth phi projects to A_p * max(0, cos(phi - theta_p)).
The car's height in the image barely changes with yaw (its width does), so with a mask
a_p / (K_p * H**2) (a_p mask pixels, H the car box height, K_p the part's typical head-on area relative to
H**2, calibrated on the training split by `models/calibrate.py` -> `part_areas.py`), and without a mask
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
azimuth (car + wheels only, e.g. Amazon Rekognition DetectLabels), from near-round, similar, far-apart wheels
under a side-on car box. An axle pair (what a front or back view shows) never gives tilt or `side`.

Main car
--------
Duplicate car boxes (a box of the car's front or rear half, or of its body: mostly inside the whole car's
box and as tall or as wide) are merged, so `cars_detected` counts cars. The main car is the best score x
area x centrality; a part belongs to it when its box lies mostly inside the car box and not clearly more
inside another car's, and a second box of a one-per-car label that does not overlap the best one is another
car's part.

View classifier
---------------
A backend with a learned view classifier attaches `view_probs` (8 probabilities, `VIEWS` order) to the car
`select_main_car` picks. Then the view is their argmax (after the rule's veto on wrong-side answers) and the
confidence its probability; the rule's azimuth is kept when it lies in that view's bin, moved 0.1 degree inside
the nearer edge when it lies within a bin of it, and otherwise (or with `rule_sets_angle=False`) the azimuth is
the yaw the probabilities encode (`view_probs.azimuth_from_probs`).
`PoseConfig.min_confidence` withholds a view below it (`low_confidence`), keeping the azimuth as the best guess.

Evidence check
--------------
Before the floor, `evidence.check_evidence` withholds a view that contradicts clear front or back parts
(`view_ambiguous`) and caps the confidence of a view without any part: the classifier reads appearance, which
overexposure or blur can turn 180 degrees.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from .cars import assign_parts, image_frame, scene_of, too_small
from .config import DEFAULT_CONFIG, PoseConfig
from .cues import part_evidence
from .evidence import check_evidence
from .geometry import coarse_view_of, view_of, wrap_deg
from .types import Detection, PoseEstimate
from .view_probs import classifier_azimuth, valid_view_probs, with_rule_veto
from .vocabulary import (
    REASON_CAR_TOO_SMALL,
    REASON_LOW_CONFIDENCE,
    REASON_NO_CAR,
    REASON_TOO_FEW_PARTS,
    REASON_VIEW_AMBIGUOUS,
    VIEWS,
    WHEEL_LABEL,
)
from .wheels import fuse_wheels, side_on, tilt_of, wheel_pair

__all__ = ["estimate_pose", "estimate_pose_unguarded"]

logger = logging.getLogger(__name__)


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
    pose = _rule_pose(detections, image_size, cfg)
    probs = valid_view_probs(pose.car.view_probs) if pose.car is not None else None
    # The classifier only needs the car box, so it answers where the parts are too few or ambiguous; a car
    # too small for the rule is too small for a crop classifier as well.
    if probs is not None and pose.reason not in (REASON_NO_CAR, REASON_CAR_TOO_SMALL):
        pose = _with_classifier(pose, probs, cfg)
    if cfg.evidence_check:
        pose = check_evidence(pose)  # the view may not contradict the parts (evidence.py)
    if pose.view is not None and pose.confidence < cfg.min_confidence:
        # Below the requested floor: the azimuth stays as the best guess, the view is withheld.
        pose = replace(pose, view=None, coarse_view=None, reason=REASON_LOW_CONFIDENCE)
    return pose


def _with_classifier(pose: PoseEstimate, probs: np.ndarray, cfg: PoseConfig) -> PoseEstimate:
    """The view and confidence from the classifier (vetoed where the rule is sure of the other side); the
    rule's azimuth kept inside that view's bin."""
    vetoed = probs
    if pose.reason is None:  # the rule's azimuth is a full answer only without a reason
        vetoed = with_rule_veto(
            probs, pose.azimuth_deg, pose.confidence, cfg.rule_veto_strength, cfg.rule_veto_free_deg
        )
    # The veto decides the side; the angle inside the chosen view comes from the rule within reach (by default) or
    # from the yaw the classifier's probabilities encode.
    index, azimuth = classifier_azimuth(probs, pose.azimuth_deg, int(np.argmax(vetoed)), cfg.rule_sets_angle)
    probs = vetoed
    azimuth = round(azimuth, 1) % 360.0
    car_w = max(pose.car.width, 1e-6) if pose.car is not None else 1e-6
    car_h = max(pose.car.height, 1e-6) if pose.car is not None else 1e-6
    pair = wheel_pair(pose.wheels, car_w, car_h, azimuth, cfg)
    tilt, line = tilt_of(pose.wheels, pair)
    return replace(
        pose,
        view=VIEWS[index],
        coarse_view=coarse_view_of(azimuth),
        azimuth_deg=azimuth,
        tilt_deg=tilt,
        wheel_line=line,
        confidence=round(float(probs[index]), 3),
        reason=None,
    )


def _rule_pose(detections: Sequence[Detection], image_size: tuple[int, int], cfg: PoseConfig) -> PoseEstimate:
    """The part rule's pose (no classifier, no confidence floor)."""
    image = image_frame(image_size)
    scene = scene_of(detections, image, cfg)
    car = scene.car
    if car is None:
        return _empty(REASON_NO_CAR, cars_detected=0)

    members = assign_parts(scene.candidates, car, scene.other_cars, cfg)
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
            "cars_detected": scene.cars_detected,
            "car": car,
            "wheels": wheels,
            "parts": parts,
            "wheel_line": None,
            "other_cars": scene.other_cars,
        }
        base.update(kw)
        return PoseEstimate(**base)  # type: ignore[arg-type]

    if too_small(car, image, cfg):
        return result(reason=REASON_CAR_TOO_SMALL)

    car_w = max(car.width, 1e-6)
    car_h = max(car.height, 1e-6)
    est = part_evidence(parts, car_h, car_w, image.width, image.height, cfg)

    if est is None:
        # Car + wheels only (Rekognition DetectLabels): tilt and maybe "side", never a guessed view.
        pair = wheel_pair(wheels, car_w, car_h, None, cfg)
        if len(wheels) < 2:
            return result(reason=REASON_TOO_FEW_PARTS)
        tilt, line = tilt_of(wheels, pair)
        coarse = "side" if pair is not None else None
        confidence = (
            cfg.wheels_only_confidence * min(wheels[pair[0]].score, wheels[pair[1]].score) if pair is not None else 0.0
        )
        return result(
            coarse_view=coarse,
            tilt_deg=tilt,
            wheel_line=line,
            confidence=round(confidence, 3),
            reason=REASON_VIEW_AMBIGUOUS,
        )

    if est.concentration < cfg.min_concentration:
        pair = wheel_pair(wheels, car_w, car_h, None, cfg)
        tilt, line = tilt_of(wheels, pair)
        return result(
            coarse_view="side" if pair is not None else None,
            tilt_deg=tilt,
            wheel_line=line,
            confidence=round(cfg.ambiguous_confidence * est.mean_score * est.concentration / cfg.min_concentration, 3),
            reason=REASON_VIEW_AMBIGUOUS,
        )

    pair = wheel_pair(wheels, car_w, car_h, est.azimuth, cfg)
    azimuth, wheel_agreement = fuse_wheels(est.azimuth, est.strength, wheels, pair, cfg)
    if pair is not None and not side_on(azimuth, cfg):
        pair = None  # the final azimuth is front/back-on: the pair is an axle, not one side
    tilt, line = tilt_of(wheels, pair)

    amount = 1.0 - math.exp(-est.evidence / cfg.evidence_scale)
    spread = min(
        1.0, max(0.0, (est.concentration - cfg.min_concentration) / (cfg.full_concentration - cfg.min_concentration))
    )
    confidence = (
        est.mean_score
        * (cfg.amount_floor + (1.0 - cfg.amount_floor) * amount)
        * (cfg.spread_floor + (1.0 - cfg.spread_floor) * spread)
        * est.agreement
        * wheel_agreement
    )
    azimuth = round(wrap_deg(azimuth), 1) % 360.0
    return result(
        view=view_of(azimuth),
        coarse_view=coarse_view_of(azimuth),
        azimuth_deg=azimuth,
        tilt_deg=tilt,
        confidence=round(min(1.0, max(0.0, confidence)), 3),
        wheel_line=line,
    )


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
