"""Label names, kept importable from their old home; the table itself lives in `vocabulary.py`."""

from __future__ import annotations

from .vocabulary import CAR_LABEL, COARSE_VIEWS, MODEL_CLASSES, PART_LABELS, VIEWS, WHEEL_LABEL

__all__ = ["CAR_LABEL", "COARSE_VIEWS", "MODEL_CLASSES", "PART_LABELS", "VIEWS", "WHEEL_LABEL"]
