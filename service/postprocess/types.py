"""Plain data types of the postprocessing: detections in, pose estimate out."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Box = tuple[float, float, float, float]  # (x0, y0, x1, y1) in pixels
Point = tuple[float, float]


@dataclass(frozen=True)
class Detection:
    label: str
    box: Box
    score: float
    mask: np.ndarray | None = field(default=None, compare=False, repr=False)  # bool HxW, image-sized
    # For a car: 8 calibrated probabilities in `VIEWS` order, attached by a backend with a view classifier.
    view_probs: tuple[float, ...] | None = field(default=None, compare=False, repr=False)
    # For a car: the camera roll in degrees read from its crop (service/backends/roll.py; + = scene turned
    # counter-clockwise), attached with view_probs by a backend with a roll head.
    roll_deg: float | None = field(default=None, compare=False, repr=False)
    # For the main car of a second pass on a grey canvas (service/margin.py): the photo's own first-pass
    # detections, which the framing verdicts read (they judge the photo as it was taken).
    photo_pass: tuple[Detection, ...] | None = field(default=None, compare=False, repr=False)

    @property
    def width(self) -> float:
        return max(0.0, self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return max(0.0, self.box[3] - self.box[1])

    @property
    def center(self) -> Point:
        return ((self.box[0] + self.box[2]) / 2.0, (self.box[1] + self.box[3]) / 2.0)


@dataclass(frozen=True)
class PoseEstimate:
    view: str | None
    coarse_view: str | None
    azimuth_deg: float | None
    tilt_deg: float | None
    confidence: float
    reason: str | None
    cars_detected: int
    car: Detection | None
    wheels: list[Detection]
    parts: list[Detection]
    wheel_line: tuple[Point, Point] | None
    other_cars: list[Detection] = field(default_factory=list)  # the scene's other cars (duplicates merged)
