"""One error shape for every failure: `{"error": {"code": ..., "message": ...}}`, and the list of every code.

`ERROR_CODES` is the one list of what the service can answer: the README's error table and the OpenAPI
descriptions are checked against it (tests/service/test_error_codes.py), and the tests scan the code for codes
that are not in it.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..exceptions import ClientGone, PoseError, public_message
from ..metrics import ERRORS

log = logging.getLogger("service.api.errors")


class ErrorCode(NamedTuple):
    status: int
    when: str


ERROR_CODES: dict[str, ErrorCode] = {
    "invalid_image": ErrorCode(400, "undecodable, truncated or empty image, a side under 32 px, or longer than 16:1"),
    "invalid_request": ErrorCode(
        400,
        "a body that does not parse: multipart without a boundary, JSON that is not JSON (nested deeper than ~1000 "
        "or a number over 64 digits included), or not HTTP at all",
    ),
    "unauthorized": ErrorCode(
        401, "API keys are set (POSE_API_KEYS/_FILE) and the request has no valid one (WWW-Authenticate)"
    ),
    "backend_disabled": ErrorCode(404, "POST /pose/rekognition while POSE_REKOGNITION_ENABLED is false"),
    "not_found": ErrorCode(404, "no such route"),
    "method_not_allowed": ErrorCode(405, "the route exists, not with this method"),
    "request_timeout": ErrorCode(
        408, "the request headers did not arrive within POSE_HEADER_TIMEOUT_S, or the body within POSE_BODY_TIMEOUT_S"
    ),
    "upload_too_large": ErrorCode(413, "upload over POSE_MAX_UPLOAD_BYTES"),
    "too_many_images": ErrorCode(413, "POST /coverage with more photos than POSE_COVERAGE_MAX_IMAGES"),
    "image_too_large": ErrorCode(413, "image over POSE_MAX_IMAGE_PIXELS (judged from the header, before decoding)"),
    "unsupported_media_type": ErrorCode(415, "not a JPEG, PNG, WebP, HEIC/HEIF or AVIF image (judged from the bytes)"),
    "validation_error": ErrorCode(
        422, "missing `image` field (a multipart part that never ends is missing) or invalid query parameter"
    ),
    "upstream_invalid_image": ErrorCode(422, "Rekognition could not read the image"),
    "upstream_image_too_large": ErrorCode(422, "Rekognition refused the image as too large"),
    "upstream_invalid_parameter": ErrorCode(422, "Rekognition refused the request's parameters"),
    "internal_error": ErrorCode(500, "a bug of ours (the log has the traceback)"),
    "upstream_access_denied": ErrorCode(502, "the AWS identity may not call Rekognition"),
    "upstream_invalid_credentials": ErrorCode(502, "Rekognition rejected the AWS credentials"),
    "upstream_model_not_found": ErrorCode(502, "the Custom Labels model ARN was not found"),
    "upstream_error": ErrorCode(502, "any other Rekognition error"),
    "model_loading": ErrorCode(503, "the model is still loading (Retry-After)"),
    "model_unavailable": ErrorCode(503, "the model failed to load"),
    "overloaded": ErrorCode(503, "every worker busy and the queue full (Retry-After from service time and backlog)"),
    "shutting_down": ErrorCode(503, "the service is draining before it stops"),
    "upstream_throttled": ErrorCode(503, "Rekognition is throttling (Retry-After)"),
    "upstream_unavailable": ErrorCode(503, "Rekognition had an internal error (Retry-After)"),
    "upstream_model_not_running": ErrorCode(503, "the Custom Labels model is not running"),
    "upstream_credentials_missing": ErrorCode(503, "the service has no AWS credentials"),
    "upstream_unreachable": ErrorCode(504, "Rekognition could not be reached"),
    "upstream_timeout": ErrorCode(504, "Rekognition did not answer in time"),
}

# Not a response (nobody is left to read it): a client that went away, counted by
# carpose_client_disconnects_total, never by carpose_errors_total.
CLIENT_DISCONNECTED = "client_disconnected"


__all__ = ["ERROR_CODES", "ClientGone", "PoseError", "http_headers", "http_status", "public_message"]


def http_status(error: PoseError) -> int:
    """The status of a core error: the table above is the only place that knows it."""
    return ERROR_CODES[error.code].status


def http_headers(error: PoseError) -> dict[str, str]:
    return {} if error.retry_after_s is None else {"Retry-After": str(error.retry_after_s)}


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def error_response(
    request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    # The admission middleware marks requests whose body failed (timeout, disconnect): it answers and counts those.
    if not request.scope.get("state", {}).get("body_error"):
        route = request.scope.get("route")
        ERRORS.labels(code=code, route=getattr(route, "path", "unmatched")).inc()
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


_HTTP_CODES = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed", 413: "upload_too_large"}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(PoseError)
    async def _pose_error(request: Request, exc: PoseError) -> JSONResponse:
        return error_response(request, http_status(exc), exc.code, exc.message, http_headers(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', 'invalid')}" for err in exc.errors()
        )
        return error_response(request, 422, "validation_error", problems or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code in _HTTP_CODES:
            code, message = _HTTP_CODES[exc.status_code], str(exc.detail)
        else:  # not raised by our routes; keep the documented shape and codes anyway
            code = "invalid_request" if exc.status_code < 500 else "internal_error"
            message = f"HTTP {exc.status_code}: {exc.detail}"
        if exc.status_code == 400:
            message = "the request body could not be parsed as multipart/form-data with an `image` file field"
        return error_response(request, exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(ClientGone)
    async def _client_gone(request: Request, exc: ClientGone) -> JSONResponse:
        # Nobody reads this; the admission middleware has counted the disconnect.
        state = request.scope.setdefault("state", {})
        state["body_error"] = CLIENT_DISCONNECTED
        state.setdefault("gone_stage", exc.stage)
        return JSONResponse(error_body(CLIENT_DISCONNECTED, f"client went away while {exc.stage}"), status_code=499)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Reached only by bugs: log the traceback, answer without leaking internals.
        log.exception("unhandled error on %s", request.url.path)
        return error_response(request, 500, "internal_error", "internal error; see the service log")
