"""Every tunable number of the pose rule, in one frozen dataclass (a comment says what each one does)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PoseConfig:
    # ---- input and main car
    score_threshold: float = 0.5  # detections below are ignored
    min_car_area_fraction: float = 0.01  # car box area / image area below -> car_too_small
    min_car_side_px: float = 32.0  # shorter car box side below -> car_too_small
    centrality_weight: float = 0.5  # main-car merit x (1 - this x off-centre): breaks near-ties, size still wins
    # One box per car: the detector adds boxes of a car's halves (as tall as the car) or body (as wide).
    duplicate_car_inside: float = 0.55  # a car box lying this much inside a larger one (of its own area)...
    duplicate_car_extent: float = 0.7  # ...sharing this much of its height or width is the same car
    min_part_inside: float = 0.5  # part box fraction inside the main car box to belong to it
    other_car_margin: float = 0.25  # ...unless it lies this much more inside another car box
    # A car has one of each part (wheels aside): a second box of a label overlapping the best-scoring one less
    # than this (intersection over the smaller box) is the same part of another car, not a double detection.
    same_part_overlap: float = 0.5
    # ---- part-area cue
    min_part_evidence: float = 0.25  # sum of weighted normalised part areas below -> too few parts
    min_concentration: float = 0.2  # |V| / sum of weights below -> view_ambiguous
    full_concentration: float = 0.8  # |V| / sum of weights at which the concentration factor saturates
    max_area_ratio: float = 2.0  # cap of a_p / (K_p H^2): one oversized box must not dominate
    # ---- layout cue (signs)
    label_sign_weight: float = 0.5  # vote of the left/right labels on the sign of sin(phi)
    layout_sign_weight: float = 1.0  # vote of front-vs-rear positions on the sign of sin(phi)
    front_back_sign_weight: float = 1.0  # vote of the front/back labels on the sign of cos(phi)
    left_right_sign_weight: float = 0.5  # vote of left-vs-right positions on the sign of cos(phi)
    layout_scale: float = 0.05  # position offsets (in car widths) beyond this count as a full vote
    max_pair_vote: float = 1.5  # clamp of a summed pair vote: many pairs must not outvote everything else
    sign_flip_agreement: float = 0.7  # confidence factor when the layout overrules the labels' sign
    # ---- wheels
    wheel_weight: float = 0.75  # weight of the wheel-ellipse cue relative to |V|
    wheel_min_weight_factor: float = 0.2  # floor of the |cos| factor on the wheel cue's weight near side views
    wheel_tread_ratio: float = 0.3  # tyre width / wheel diameter: a wheel's aspect seen end-on
    wheel_disagreement_scale: float = 0.5  # | |sin| from wheels - |sin| from parts | that costs the full penalty
    wheel_disagreement_penalty: float = 0.5  # confidence factor lost at full wheel/part disagreement
    max_wheels: int = 6  # wheels considered for pairs (pairs grow quadratically; more than 6 is detector noise)
    wheel_full_separation: float = 0.3  # pair centres this far apart (car widths) get the full pair merit
    side_wheel_min_aspect: float = 0.55  # without azimuth: wheels at least this round count as side-on
    side_wheel_min_separation: float = 0.35  # without azimuth: pair centres at least this far (car widths)
    wheel_similar_ratio: float = 0.7  # without azimuth: smaller / larger wheel height of a same-side pair
    wheel_separation_tolerance: float = 0.5  # with azimuth: max |log(separation / expected)| of a same-side pair
    tilt_min_side_deg: float = 20.0  # |azimuth from front/back| below: same-side wheels are not usable
    # Without azimuth: a car box narrower than this (width / height) is seen front/back-on, so two wheels are
    # an axle (a car is ~1.2-1.4 times as wide as tall head-on, ~3 side-on; 1.6 is ~12 degrees off the axis).
    min_side_car_aspect: float = 1.6
    # Typical car dimensions (m), only their ratios matter: expected wheel separations in car-box widths.
    car_length_m: float = 4.6
    car_width_m: float = 1.8
    wheelbase_m: float = 2.7
    track_m: float = 1.55
    # ---- confidence
    evidence_scale: float = 1.5  # sum of weights giving 63% of the "amount of evidence" factor
    amount_floor: float = 0.4  # confidence factor of the amount of evidence at (almost) none
    spread_floor: float = 0.3  # confidence factor of the concentration at min_concentration
    wheels_only_confidence: float = 0.4  # car + a side wheel pair only: confidence = this x weaker wheel score
    ambiguous_confidence: float = 0.2  # view_ambiguous: confidence = this x mean score x concentration share
    min_confidence: float = 0.0  # confidence below -> view withheld, reason low_confidence (0 = off)
    # A view classifier's views further than this from the rule's azimuth lose probability (view_probs.py)...
    rule_veto_free_deg: float = 67.5
    # ...up to a factor exp(-this x rule confidence) on the opposite side (0 = the classifier alone decides).
    rule_veto_strength: float = 5.0
    # A view that contradicts clear front/back parts is withheld, none without parts is confident (evidence.py).
    evidence_check: bool = True
    # The rule's azimuth sets the angle inside the classifier's view when within reach (view_probs.py); False: the
    # yaw the classifier's probabilities encode (better on web photos, worse on the turntable: docs/views.md).
    rule_sets_angle: bool = True


DEFAULT_CONFIG = PoseConfig()
