"""The view may not contradict the parts: a check applied to the assembled pose (classifier or rule).

The view classifier reads the car crop's appearance, so a degraded photo (overexposed, blurred, noisy) can get a
confident view 180 degrees off while the part detector still finds a front bumper, a windscreen and a hood. The
parts are direct evidence of which face is toward the camera; front and back labels are rarely confused (left
and right are, see pose.py), so only the front/back evidence is used:

- the parts clearly show the front (or the back) and the view is on the other half (back, back_left,
  back_right vs front, front_left, front_right): the view is withheld (`view_ambiguous`) and the confidence
  drops to at most `CONTRADICTED_CONFIDENCE`;
- no part found at all: nothing confirms the classifier's guess, so the confidence is at most
  `NO_PARTS_CONFIDENCE` (the view stays, below any sensible floor).

Regression tests on degraded copies of test photos: tests/service/test_verdicts.py (the rule's edges:
tests/service/test_framing.py); the measurement: `python -m benchmarks.whole_car`.
"""

from __future__ import annotations

from dataclasses import replace

from .types import PoseEstimate
from .vocabulary import PART_SPECS, PART_WEIGHT, REASON_VIEW_AMBIGUOUS

# Weighted evidence (part weight x score, a face sums to ~2 when fully seen) at least this, and the other
# end's at most CLEAR_RATIO of it: the face is clearly toward the camera.
CLEAR_EVIDENCE = 0.9
CLEAR_RATIO = 0.25
CONTRADICTED_CONFIDENCE = 0.2
NO_PARTS_CONFIDENCE = 0.3
FRONT_VIEWS = frozenset({"front", "front_left", "front_right"})
BACK_VIEWS = frozenset({"back", "back_left", "back_right"})


def face_evidence(pose: PoseEstimate) -> dict[str, float]:
    """Weighted part scores per face (front, back, left, right) of the posed car."""
    out = {"front": 0.0, "back": 0.0, "left": 0.0, "right": 0.0}
    for part in pose.parts:
        spec = PART_SPECS.get(part.label)
        if spec is not None and spec.face in out:
            out[spec.face] += PART_WEIGHT.get(part.label, 0.0) * part.score
    return out


def clear_face(evidence: dict[str, float]) -> str | None:
    """front or back when the parts clearly show that end of the car and hardly the other; else None."""
    front, back = evidence["front"], evidence["back"]
    if front >= CLEAR_EVIDENCE and back <= CLEAR_RATIO * front:
        return "front"
    if back >= CLEAR_EVIDENCE and front <= CLEAR_RATIO * back:
        return "back"
    return None


def contradicts(view: str, face: str | None) -> bool:
    return (face == "front" and view in BACK_VIEWS) or (face == "back" and view in FRONT_VIEWS)


def check_evidence(pose: PoseEstimate) -> PoseEstimate:
    """`pose` with a view that contradicts the parts withheld, and without parts no confident view."""
    if pose.view is None or pose.car is None:
        return pose
    if not pose.parts:
        return replace(pose, confidence=min(pose.confidence, NO_PARTS_CONFIDENCE))
    if contradicts(pose.view, clear_face(face_evidence(pose))):
        return replace(
            pose,
            view=None,
            coarse_view=None,
            confidence=min(pose.confidence, CONTRADICTED_CONFIDENCE),
            reason=REASON_VIEW_AMBIGUOUS,
        )
    return pose
