"""Test images and Rekognition response bodies (boxes given as (left, top, right, bottom) ratios)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

RatioBox = tuple[float, float, float, float]
ARN = "arn:aws:rekognition:us-east-1:123456789012:project/car-parts/version/car-parts.2026-11-20/1732100000000"


def image_bytes(width: int = 320, height: int = 240, fmt: str = "JPEG", noise: bool = False, **save: Any) -> bytes:
    if noise:
        # Random pixels do not compress: the way to an over-5-MB file with few pixels (fast to handle).
        pixels = np.random.default_rng(0).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    else:
        pixels = np.zeros((height, width, 3), dtype=np.uint8)
        pixels[:, :] = (110, 140, 170)
        pixels[height // 3 : 2 * height // 3, width // 6 : 5 * width // 6] = (40, 60, 150)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **save)
    return buffer.getvalue()


def bounding_box(box: RatioBox) -> dict[str, float]:
    left, top, right, bottom = box
    return {"Width": right - left, "Height": bottom - top, "Left": left, "Top": top}


def _label(name: str, parents: list[str], instances: list[tuple[RatioBox, float]]) -> dict[str, Any]:
    return {
        "Name": name,
        "Confidence": max((c for _, c in instances), default=97.0),
        "Instances": [{"BoundingBox": bounding_box(b), "Confidence": c} for b, c in instances],
        "Parents": [{"Name": p} for p in parents],
        "Aliases": [{"Name": "Automobile"}] if name == "Car" else [],
        "Categories": [{"Name": "Vehicles and Automotive"}],
    }


def detect_labels_body(
    cars: list[tuple[RatioBox, float]] | None = None, wheels: list[tuple[RatioBox, float]] | None = None
) -> dict[str, Any]:
    """What DetectLabels answers for a street photo: image-level labels (no boxes) plus Car/Wheel instances."""
    labels = [
        _label("Road", [], []),
        _label("Vehicle", ["Transportation"], []),
        _label("Tire", ["Machine"], []),  # a label Rekognition gives without instances: must be ignored
    ]
    if cars:
        labels.append(_label("Car", ["Vehicle", "Transportation"], cars))
    if wheels:
        labels.append(_label("Wheel", ["Machine"], wheels))
    return {"Labels": labels, "LabelModelVersion": "3.0"}


def custom_labels_body(parts: list[tuple[str, RatioBox, float]]) -> dict[str, Any]:
    out = []
    for name, box, confidence in parts:
        left, top, right, bottom = box
        polygon = [{"X": left, "Y": top}, {"X": right, "Y": top}, {"X": right, "Y": bottom}, {"X": left, "Y": bottom}]
        geometry = {"BoundingBox": bounding_box(box), "Polygon": polygon}
        out.append({"Name": name, "Confidence": confidence, "Geometry": geometry})
    # An image-level (classification) label: no Geometry, must be ignored.
    out.append({"Name": "sedan", "Confidence": 88.0})
    return {"CustomLabels": out}


def pixels(box: RatioBox, width: int, height: int) -> tuple[float, float, float, float]:
    return (box[0] * width, box[1] * height, box[2] * width, box[3] * height)
