"""Draw a pose estimate on the image: car box, parts, wheel line and the pose in words."""

from __future__ import annotations

import base64

import cv2
import numpy as np

from .postprocess import PoseEstimate

CAR_COLOR = (255, 200, 0)  # RGB
WHEEL_COLOR = (0, 220, 90)
PART_COLOR = (255, 80, 160)
LINE_COLOR = (255, 40, 40)
JPEG_QUALITY = 85
MAX_RENDER_SIDE = 1280  # keep data URLs small: the page shows the result, not a forensic copy


def _pt(x: float, y: float, scale: float) -> tuple[int, int]:
    return round(x * scale), round(y * scale)


Rect = tuple[int, int, int, int]  # x0, y0, x1, y1


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_labels(anchors: list[tuple[int, int]], sizes: list[tuple[int, int]], canvas: tuple[int, int]) -> list[Rect]:
    """Label rectangles that do not overlap: each starts just above its anchor (a box's top-left corner), kept
    inside the canvas, and moves down a label height at a time past the labels already placed."""
    width, height = canvas
    placed: list[Rect] = []
    for (ax, ay), (w, h) in zip(anchors, sizes, strict=True):
        x0 = min(max(0, ax), max(0, width - w))
        y0 = min(max(0, ay - h), max(0, height - h))
        rect = (x0, y0, x0 + w, y0 + h)
        for _ in range(4 * len(placed) + 1):
            if not any(_overlaps(rect, other) for other in placed):
                break
            y0 = y0 + h + 1 if y0 + 2 * h + 1 <= height else 0
            rect = (x0, y0, x0 + w, y0 + h)
        placed.append(rect)
    return placed


def render_pose(rgb: np.ndarray, pose: PoseEstimate, parts: bool = True) -> np.ndarray:
    """`parts=False` leaves the part boxes, their name tags and the caption out: the upload page draws the parts
    itself from the answer's `parts`, on a layer its user can switch off without a second request, and shows the
    caption itself, where its tags cannot cover it (they would, at the image's top left)."""
    height, width = rgb.shape[:2]
    scale = min(1.0, MAX_RENDER_SIDE / max(height, width))
    canvas = cv2.resize(rgb, (round(width * scale), round(height * scale))) if scale < 1 else rgb.copy()
    thickness = max(1, round(max(canvas.shape[:2]) / 400))
    font_scale = max(0.4, max(canvas.shape[:2]) / 1400)
    for part in pose.parts if parts else []:
        x0, y0, x1, y1 = part.box
        cv2.rectangle(canvas, _pt(x0, y0, scale), _pt(x1, y1, scale), PART_COLOR, thickness)
    for wheel in pose.wheels:
        x0, y0, x1, y1 = wheel.box
        cv2.rectangle(canvas, _pt(x0, y0, scale), _pt(x1, y1, scale), WHEEL_COLOR, thickness)
    if pose.car is not None:
        x0, y0, x1, y1 = pose.car.box
        cv2.rectangle(canvas, _pt(x0, y0, scale), _pt(x1, y1, scale), CAR_COLOR, thickness + 1)
    if pose.wheel_line is not None:
        (ax, ay), (bx, by) = pose.wheel_line
        cv2.line(canvas, _pt(ax, ay, scale), _pt(bx, by, scale), LINE_COLOR, thickness + 1, cv2.LINE_AA)
    if parts:
        _draw_part_labels(canvas, pose, scale, font_scale)
        _draw_caption(canvas, caption(pose), font_scale, thickness)
    return canvas


def _draw_caption(canvas: np.ndarray, text: str, font_scale: float, thickness: int) -> None:
    """White words on a black strip at the top left, drawn last: over every box line and tag."""
    (text_w, text_h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
    cv2.rectangle(canvas, (0, 0), (text_w + 12, text_h + baseline + 12), (0, 0, 0), -1)
    cv2.putText(
        canvas,
        text,
        (6, text_h + 6),
        cv2.FONT_HERSHEY_SIMPLEX,
        font_scale,
        (255, 255, 255),
        thickness,
        cv2.LINE_AA,
    )


def _draw_part_labels(canvas: np.ndarray, pose: PoseEstimate, scale: float, font_scale: float) -> None:
    """Part names on filled tags, drawn after every line (no box line crosses them), legible (at least 0.5 of
    OpenCV's font, the caption's size beyond) and never on top of each other (`place_labels`)."""
    size = max(0.5, font_scale * 0.9)
    names = [part.label.replace("_", " ") for part in pose.parts]
    extents = [cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, size, 1) for name in names]
    sizes = [(w + 6, h + base + 6) for (w, h), base in extents]
    anchors = [_pt(part.box[0], part.box[1], scale) for part in pose.parts]
    rects = place_labels(anchors, sizes, (canvas.shape[1], canvas.shape[0]))
    for name, (x0, y0, x1, y1), ((_, h), _) in zip(names, rects, extents, strict=True):
        cv2.rectangle(canvas, (x0, y0), (x1, y1), PART_COLOR, -1)
        cv2.putText(canvas, name, (x0 + 3, y0 + 3 + h), cv2.FONT_HERSHEY_SIMPLEX, size, (0, 0, 0), 1, cv2.LINE_AA)


def caption(pose: PoseEstimate) -> str:
    """The pose in words, the rendered image's caption; the upload page writes the same words from the answer
    (app.js `captionText`) when it asks for an image without them."""
    if pose.view is None and pose.coarse_view is None:
        return f"no pose: {pose.reason}"
    parts = [f"view {pose.view or pose.coarse_view}"]
    if pose.azimuth_deg is not None:
        parts.append(f"yaw {round(pose.azimuth_deg) % 360} deg")  # 359.8 is yaw 0, never 360
    if pose.tilt_deg is not None:
        parts.append(f"wheel line {pose.tilt_deg:+.1f} deg")  # a slope in the image, not camera roll
    return ", ".join(parts)


def jpeg_data_url(rgb: np.ndarray) -> str:
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")
