"""Postprocessing shared by every backend: detected car parts -> pose (pure numpy; no torch/boto3/cv2/PIL)."""

from __future__ import annotations

from . import vocabulary
from .cars import select_main_car
from .config import DEFAULT_CONFIG, PoseConfig
from .geometry import coarse_view_of, view_of
from .pose import estimate_pose
from .types import Box, Detection, Point, PoseEstimate
from .vocabulary import (
    CAR_LABEL,
    COARSE_VIEWS,
    MODEL_CLASSES,
    PART_LABELS,
    PART_NORMAL_DEG,
    REASON_CAR_TOO_SMALL,
    REASON_LOW_CONFIDENCE,
    REASON_NO_CAR,
    REASON_TOO_FEW_PARTS,
    REASON_VIEW_AMBIGUOUS,
    REASONS,
    VIEWS,
    WHEEL_LABEL,
)

__all__ = [
    "CAR_LABEL",
    "COARSE_VIEWS",
    "DEFAULT_CONFIG",
    "MODEL_CLASSES",
    "PART_LABELS",
    "PART_NORMAL_DEG",
    "REASONS",
    "REASON_CAR_TOO_SMALL",
    "REASON_LOW_CONFIDENCE",
    "REASON_NO_CAR",
    "REASON_TOO_FEW_PARTS",
    "REASON_VIEW_AMBIGUOUS",
    "VIEWS",
    "WHEEL_LABEL",
    "Box",
    "Detection",
    "Point",
    "PoseConfig",
    "PoseEstimate",
    "coarse_view_of",
    "estimate_pose",
    "select_main_car",
    "view_of",
    "vocabulary",
]
