"""Response models: the OpenAPI schema at /docs is generated from these."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from .backends.registry import BACKEND_NAMES
from .guidance import FIX_CODE_NAMES, FIX_CODES
from .postprocess.vocabulary import COARSE_VIEWS, REASONS, VIEWS

# Built from the vocabulary so the schema cannot drift from what the pose module returns (subscripting
# Literal with a tuple is the same as listing its items; static checkers cannot follow it, pydantic can).
View = Literal[VIEWS]  # type: ignore[valid-type]
CoarseView = Literal[COARSE_VIEWS]  # type: ignore[valid-type]
Reason = Literal[REASONS]  # type: ignore[valid-type]
BackendName = Literal[BACKEND_NAMES]  # type: ignore[valid-type]
FixCodeName = Literal[FIX_CODE_NAMES]  # type: ignore[valid-type]
BoxXYXY = tuple[float, float, float, float]


class CarOut(BaseModel):
    box: BoxXYXY = Field(description="x0, y0, x1, y1 in pixels of the EXIF-corrected image")
    score: float = Field(ge=0, le=1)


class WheelOut(BaseModel):
    box: BoxXYXY
    center: tuple[float, float]
    score: float = Field(ge=0, le=1)


class PartOut(BaseModel):
    label: str = Field(description="Car Parts class name, e.g. front_left_light (the car's own left)")
    box: BoxXYXY
    score: float = Field(ge=0, le=1)


class ImageOut(BaseModel):
    width: int
    height: int


class ModelOut(BaseModel):
    name: str
    version: str


class QualityOut(BaseModel):
    """Is the photo usable? Measured on the main car at the working size; thresholds are POSE_QUALITY_* settings."""

    ok: bool = Field(
        description="All verdicts true: in_frame, large_enough, sharp, exposure_ok, whole_car, and other_cars == 0"
    )
    in_frame: bool = Field(description="The car is not cut off by the image border")
    cut_sides: list[Literal["left", "right", "top", "bottom"]] = Field(
        description="Image borders that cut the car (its box within POSE_QUALITY_EDGE_TOLERANCE and mask pixels there)"
    )
    car_fraction: float = Field(ge=0, le=1, description="Car box area / image area")
    large_enough: bool = Field(description="car_fraction >= POSE_QUALITY_MIN_CAR_FRACTION")
    sharpness: float = Field(
        ge=0, description="Variance of the 3x3 Laplacian of the car region's luminance (0-255), long side <= 256 px"
    )
    sharp: bool = Field(description="sharpness >= POSE_QUALITY_MIN_SHARPNESS")
    brightness: float = Field(ge=0, le=1, description="Mean luminance of the car region, 0-1")
    clipped_fraction: float = Field(ge=0, le=1, description="Share of the car region's pixels that are black or white")
    exposure_ok: bool = Field(
        description="brightness within POSE_QUALITY_MIN/MAX_BRIGHTNESS and clipped_fraction <= "
        "POSE_QUALITY_MAX_CLIPPED_FRACTION"
    )
    exposure: Literal["ok", "too_dark", "too_bright"] = Field(
        "ok", description="Which way exposure_ok fails: the brightness bound crossed, or the larger clipped end"
    )
    whole_car: bool = Field(
        True,
        description="Not a close-up of a part or a section: enough distinct parts for the borders the car reaches, "
        "and a car box shaped like a whole car seen from the view's side (docs/quality.md)",
    )
    other_cars: int = Field(
        0,
        ge=0,
        description="Other cars whose visible box is at least POSE_QUALITY_OTHER_CAR_MIN_SIZE of the posed car's "
        "box area: a buyer could take them for it",
    )
    level: bool | None = Field(
        None,
        description="|roll_deg| <= POSE_QUALITY_MAX_ROLL_DEG; null without a roll measure. Not part of ok (a rolled "
        "photo can be straightened); guidance asks for hold_level when false",
    )


class PoseResponse(BaseModel):
    view: View | None = Field(description="Side of the car facing the camera; null when no pose could be given")
    coarse_view: CoarseView | None = Field(description="front/back/side")
    azimuth_deg: float | None = Field(
        description="Yaw: 0 = front faces the camera, 90 = left side, 180 = back, 270 = right side"
    )
    tilt_deg: float | None = Field(
        description="Slope of the front-to-rear wheel line vs the image horizontal, counter-clockwise positive; "
        "null with fewer than two wheels on one side. Perspective makes it tens of degrees on level photos of "
        "diagonal views: it is not camera roll (roll_deg is)"
    )
    roll_deg: float | None = Field(
        None,
        description="Camera roll, degrees: how far the scene appears turned in the image plane, counter-clockwise "
        "positive (the horizon rises to the right; the camera was turned clockwise): turning the photo clockwise by "
        "roll_deg levels it. Read from the main car's crop by the model's roll head (docs/api.md); null when no car "
        "was found or the model has no roll head",
    )
    confidence: float = Field(ge=0, le=1)
    reason: Reason | None = Field(description="Why view is null or partial; null when the full pose was given")
    cars_detected: int = Field(ge=0, description="Cars seen; the largest, most central one is posed")
    car: CarOut | None
    wheels: list[WheelOut]
    parts: list[PartOut]
    image: ImageOut
    backend: BackendName
    model: ModelOut
    timings_ms: dict[str, float] = Field(
        description="Milliseconds per stage: decode, inference, postprocess, render, total"
    )
    rendered_image: str | None = Field(None, description="data:image/jpeg;base64 annotated image with ?render=true")
    quality: QualityOut | None = Field(None, description="Photo quality verdicts; null when no car was found")
    guidance: GuidanceOut | None = Field(
        None, description="How to get a usable photo of the `target_view` query parameter; null without one"
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "view": "front_left",
                    "coarse_view": "front",
                    "azimuth_deg": 38.5,
                    "tilt_deg": -1.2,
                    "roll_deg": 0.4,
                    "confidence": 0.81,
                    "reason": None,
                    "cars_detected": 1,
                    "car": {"box": [52.0, 110.0, 478.0, 402.0], "score": 0.98},
                    "wheels": [{"box": [90.0, 300.0, 150.0, 380.0], "center": [120.0, 340.0], "score": 0.97}],
                    "parts": [{"label": "front_bumper", "box": [60.0, 280.0, 300.0, 360.0], "score": 0.95}],
                    "image": {"width": 512, "height": 512},
                    "backend": "detectron2",
                    "model": {"name": "carparts_mnv2_fpn", "version": "2026-11-25"},
                    "timings_ms": {
                        "decode": 3.1,
                        "inference": 240.5,
                        "postprocess": 0.3,
                        "render": 0.0,
                        "total": 245.0,
                    },
                    "rendered_image": None,
                    "quality": {
                        "ok": True,
                        "in_frame": True,
                        "cut_sides": [],
                        "car_fraction": 0.46,
                        "large_enough": True,
                        "sharpness": 812.4,
                        "sharp": True,
                        "brightness": 0.43,
                        "clipped_fraction": 0.02,
                        "exposure_ok": True,
                        "exposure": "ok",
                        "whole_car": True,
                        "other_cars": 0,
                        "level": True,
                    },
                }
            ]
        }
    }


class ErrorDetail(BaseModel):
    code: str = Field(description="Machine-readable, e.g. invalid_image, upload_too_large, overloaded")
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


class CoveragePhoto(BaseModel):
    index: int = Field(ge=0, description="Position in the upload, from 0")
    filename: str | None = Field(description="The file name the client sent")
    pose: PoseResponse | None = Field(description="The photo's answer, as POST /pose gives it; null on error")
    error: ErrorDetail | None = Field(description="Why this photo got no answer; the other photos are unaffected")
    usable: bool = Field(description="It covers its view: a view (confidence over min_confidence) and quality.ok")
    problems: list[
        Literal[
            "error", "no_car", "no_view", "cut_off", "close_up", "other_car", "too_small", "blurred", "badly_exposed"
        ]
    ] = Field(description="Why it does not count: error, no_car, no_view (see pose.reason), or a failed quality check")


class CoverageResponse(BaseModel):
    photos: list[CoveragePhoto] = Field(description="One entry per uploaded photo, in upload order")
    required: list[View] = Field(description="The views asked for (the `required` query parameter)")
    covered: dict[str, list[int]] = Field(description="View -> indices of usable photos that show it")
    missing: list[View] = Field(description="Required views without a usable photo")
    duplicates: dict[str, list[int]] = Field(description="Views shown by more than one usable photo")
    complete: bool = Field(description="Every required view is covered")
    next_view: View | None = Field(
        None,
        description="The missing required view closest to the last posed photo's yaw (so the seller keeps walking "
        "one way round); null when the set is complete",
    )


class ModelInfoResponse(BaseModel):
    backend: str
    name: str
    version: str
    device: str
    engine: str = Field(description="What runs the model's networks (POSE_ENGINE as resolved for the device)")
    classes: list[str]
    model_dir: str
    card: dict[str, object] = Field(description="model.json: training data, recipe, metrics, date, code version")


class HealthResponse(BaseModel):
    status: Literal["ok", "loading", "failed"]
    detail: str | None = None


# Guided capture (service.guidance). Appended: the models above refer to them by name (postponed annotations).
WALK_DESCRIPTION = (
    "Signed walk around the car to the target view's centre, in degrees (-180..180]: positive = walk clockwise "
    "seen from above (to the seller's left while facing the car), negative = counter-clockwise (to their right); "
    "walk_deg = azimuth_deg - 45 x (the target's index in front, front_left, left, ...), wrapped. Null without a yaw"
)


class FixOut(BaseModel):
    code: FixCodeName = Field(
        description="Stable code: " + "; ".join(f"`{code}`: {fix.when}" for code, fix in FIX_CODES.items())
    )
    message: str = Field(description="What to do, in English")


class GuidanceOut(BaseModel):
    target_view: View = Field(description="The view the seller is after")
    on_target: bool = Field(description="The photo shows the target view (`view` equals it)")
    walk_deg: float | None = Field(description=WALK_DESCRIPTION)
    fixes: list[FixOut] = Field(description="What to fix, most important first (empty: nothing)")
    ready: bool = Field(description="on_target and no fixes: a shot to keep")


PoseResponse.model_rebuild()
CoveragePhoto.model_rebuild()
CoverageResponse.model_rebuild()
