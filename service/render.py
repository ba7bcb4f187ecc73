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


def render_pose(rgb: np.ndarray, pose: PoseEstimate) -> np.ndarray:
    height, width = rgb.shape[:2]
    scale = min(1.0, MAX_RENDER_SIDE / max(height, width))
    canvas = cv2.resize(rgb, (round(width * scale), round(height * scale))) if scale < 1 else rgb.copy()
    thickness = max(1, round(max(canvas.shape[:2]) / 400))
    font_scale = max(0.4, max(canvas.shape[:2]) / 1400)
    for part in pose.parts:
        x0, y0, x1, y1 = part.box
        cv2.rectangle(canvas, _pt(x0, y0, scale), _pt(x1, y1, scale), PART_COLOR, thickness)
        cv2.putText(
            canvas,
            part.label,
            _pt(x0, y0 - 3, scale),
            cv2.FONT_HERSHEY_SIMPLEX,
            font_scale * 0.8,
            PART_COLOR,
            1,
            cv2.LINE_AA,
        )
    for wheel in pose.wheels:
        x0, y0, x1, y1 = wheel.box
        cv2.rectangle(canvas, _pt(x0, y0, scale), _pt(x1, y1, scale), WHEEL_COLOR, thickness)
    if pose.car is not None:
        x0, y0, x1, y1 = pose.car.box
        cv2.rectangle(canvas, _pt(x0, y0, scale), _pt(x1, y1, scale), CAR_COLOR, thickness + 1)
    if pose.wheel_line is not None:
        (ax, ay), (bx, by) = pose.wheel_line
        cv2.line(canvas, _pt(ax, ay, scale), _pt(bx, by, scale), LINE_COLOR, thickness + 1, cv2.LINE_AA)
    text = caption(pose)
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
    return canvas


def caption(pose: PoseEstimate) -> str:
    if pose.view is None and pose.coarse_view is None:
        return f"no pose: {pose.reason}"
    parts = [f"view {pose.view or pose.coarse_view}"]
    if pose.azimuth_deg is not None:
        parts.append(f"yaw {round(pose.azimuth_deg) % 360} deg")  # 359.8 is yaw 0, never 360
    if pose.tilt_deg is not None:
        parts.append(f"tilt {pose.tilt_deg:+.1f} deg")
    return ", ".join(parts)


def jpeg_data_url(rgb: np.ndarray) -> str:
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")
