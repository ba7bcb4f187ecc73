"""A pose as the API answers it: `PoseResponse` from the runtime's `PoseEstimate`, in the uploaded image's pixels.

One conversion for POST /pose (`service.api.pipeline`) and for `carpose predict` / `carpose batch`
(`service.scoring`), so their rows are the API's JSON.
"""

from __future__ import annotations

from .backends.base import DetectionBackend
from .guidance import Guidance, guide
from .imaging import DecodedImage
from .postprocess import PoseEstimate
from .quality import Quality
from .schemas import CarOut, FixOut, GuidanceOut, ImageOut, ModelOut, PartOut, PoseResponse, QualityOut, WheelOut


def to_response(
    pose: PoseEstimate,
    image: DecodedImage,
    backend: DetectionBackend,
    timings_ms: dict[str, float],
    rendered: str | None,
    quality: Quality | None = None,
) -> PoseResponse:
    sx, sy = image.scale_x, image.scale_y  # reduced pixels -> the uploaded (EXIF-corrected) image

    def box(b: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        return (round(b[0] * sx, 1), round(b[1] * sy, 1), round(b[2] * sx, 1), round(b[3] * sy, 1))

    return PoseResponse(
        view=pose.view,
        coarse_view=pose.coarse_view,
        azimuth_deg=None if pose.azimuth_deg is None else round(pose.azimuth_deg, 1),
        tilt_deg=None if pose.tilt_deg is None else round(pose.tilt_deg, 2),
        roll_deg=None if pose.car is None or pose.car.roll_deg is None else round(pose.car.roll_deg, 1),
        confidence=round(pose.confidence, 3),
        reason=pose.reason,
        cars_detected=pose.cars_detected,
        car=None if pose.car is None else CarOut(box=box(pose.car.box), score=round(pose.car.score, 3)),
        wheels=[
            WheelOut(
                box=box(w.box), center=(round(w.center[0] * sx, 1), round(w.center[1] * sy, 1)), score=round(w.score, 3)
            )
            for w in pose.wheels
        ],
        parts=[PartOut(label=p.label, box=box(p.box), score=round(p.score, 3)) for p in pose.parts],
        image=ImageOut(width=image.reported_size[0], height=image.reported_size[1]),
        backend=backend.name,
        model=ModelOut(**backend.info()),
        timings_ms=timings_ms,
        rendered_image=rendered,
        quality=quality_out(quality),
    )


def quality_out(quality: Quality | None) -> QualityOut | None:
    if quality is None:
        return None
    return QualityOut(
        ok=quality.ok,
        in_frame=quality.in_frame,
        cut_sides=quality.cut_sides,
        car_fraction=round(quality.car_fraction, 3),
        large_enough=quality.large_enough,
        sharpness=round(quality.sharpness, 1),
        sharp=quality.sharp,
        brightness=round(quality.brightness, 3),
        clipped_fraction=round(quality.clipped_fraction, 3),
        exposure_ok=quality.exposure_ok,
        exposure=quality.exposure,
        whole_car=quality.whole_car,
        other_cars=quality.other_cars,
        level=quality.level,
    )


def guidance_out(guidance: Guidance) -> GuidanceOut:
    return GuidanceOut(
        target_view=guidance.target_view,
        on_target=guidance.on_target,
        walk_deg=guidance.walk_deg,
        fixes=[FixOut(code=fix.code, message=fix.message) for fix in guidance.fixes],
        ready=guidance.ready,
    )


def with_guidance(pose: PoseResponse, target_view: str | None) -> PoseResponse:
    """The answer with `guidance` toward `target_view` (unchanged, guidance null, without a target)."""
    if target_view is None:
        return pose
    return pose.model_copy(update={"guidance": guidance_out(guide(pose, target_view))})
