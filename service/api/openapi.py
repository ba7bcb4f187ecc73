"""The OpenAPI document's error parts, from the one table of codes (`service.api.errors.ERROR_CODES`): the
description's error table and each route's `responses`, one entry per status listing its codes."""

from __future__ import annotations

from fnmatch import fnmatch

from ..backends.registry import BACKENDS, BackendSpec, spec_named
from ..schemas import ErrorResponse
from .errors import ERROR_CODES

DESCRIPTION = """
Tells, from one photo, how a car is positioned: which side faces the camera (eight views), its yaw
(`azimuth_deg`) and its tilt against the image horizontal. Upload an image to `POST /pose`.

Errors are always `{"error": {"code": "...", "message": "..."}}`; every code the service answers:

| status | code | when |
|---|---|---|
""" + "\n".join(f"| {e.status} | `{code}` | {e.when} |" for code, e in ERROR_CODES.items())


def error_responses(codes: list[str]) -> dict[int | str, dict[str, object]]:
    """OpenAPI `responses` for these error codes, one entry per status listing its codes (from ERROR_CODES)."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(ERROR_CODES[code].status, []).append(code)
    return {
        status: {
            "model": ErrorResponse,
            "description": "; ".join(f"`{code}`: {ERROR_CODES[code].when}" for code in status_codes),
        }
        for status, status_codes in sorted(by_status.items())
    }


# Codes any route answers; every image route answers the rest, but those a backend claims as its own
# (`BackendSpec.own_error_codes`: Rekognition's upstream_*, the local model's model_loading, ...).
GENERAL_CODES = ["not_found", "method_not_allowed", "internal_error"]
# Answered by POST /coverage only (a set of photos), never by a single-photo route.
COVERAGE_CODES = ["too_many_images"]


def _owns(spec: BackendSpec, code: str) -> bool:
    return any(fnmatch(code, pattern) for pattern in spec.own_error_codes)


def route_codes(spec: BackendSpec) -> list[str]:
    """The error codes a backend's pose route can answer."""
    claimed = {code for other in BACKENDS for code in ERROR_CODES if _owns(other, code)}
    shared = [code for code in ERROR_CODES if code not in {*GENERAL_CODES, *COVERAGE_CODES, *claimed}]
    return shared + [code for code in ERROR_CODES if _owns(spec, code)] + ["internal_error"]


POSE_CODES = route_codes(spec_named("detectron2"))
REKOGNITION_CODES = route_codes(spec_named("rekognition"))
ERROR_RESPONSES = error_responses(POSE_CODES)
