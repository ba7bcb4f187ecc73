"""The photo of a pose request: the multipart `image` file, or a JSON body `{"image": "<base64 or data URL>"}`.

The JSON shape is the request of the original car-angle sample's clients. Both arrive as the same bytes and go
through the same decode (type sniffing, byte, pixel and bomb limits); a base64 string that is not base64 is an
`invalid_image`, like an undecodable file.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from fastapi import Request
from starlette.datastructures import UploadFile

from ..exceptions import PoseError

JSON_MEDIA_TYPE = "application/json"
# `data:image/jpeg;base64,` (any media type, optional parameters) before the payload.
DATA_URL = re.compile(r"^data:[\w.+/-]*(?:;[\w.+-]+=[\w.+-]+)*;base64,", re.IGNORECASE)
# Room for the JSON around the base64 payload (key, quotes, a data URL prefix, whitespace).
JSON_ENVELOPE_BYTES = 4 * 1024

# No field of the request is a number worth more digits; Python's own limit (4300) would raise a bare ValueError.
MAX_JSON_INT_DIGITS = 64

IMAGE_FIELD_DESCRIPTION = "Car photo: JPEG, PNG, WebP, HEIC/HEIF or AVIF (EXIF orientation is applied)"
# Multipart form limits: one file, a few small fields (the route reads `image` only).
MAX_FORM_FILES, MAX_FORM_FIELDS = 4, 16

# The JSON shape of an image upload (POST /pose, SageMaker /invocations) in OpenAPI.
JSON_IMAGE_CONTENT: dict[str, object] = {
    "schema": {
        "type": "object",
        "required": ["image"],
        "properties": {
            "image": {
                "type": "string",
                "description": "The photo as base64, or a data URL (data:image/jpeg;base64,...); "
                "same formats and limits as the multipart upload",
            }
        },
    },
    # Valid base64 (the first bytes of a JPEG, cut short to stay readable): a real photo's is much longer.
    "example": {"image": "data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8U"},
}
# The route reads its body itself (either media type), so the OpenAPI request body is declared here.
IMAGE_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "image": {"type": "string", "format": "binary", "description": IMAGE_FIELD_DESCRIPTION}
                    },
                }
            },
            JSON_MEDIA_TYPE: JSON_IMAGE_CONTENT,
        },
    }
}


def max_json_body_bytes(max_upload_bytes: int) -> int:
    """The largest JSON body that can carry an upload of `max_upload_bytes` (base64: 4 bytes per 3)."""
    return -(-max_upload_bytes // 3) * 4 + JSON_ENVELOPE_BYTES


def is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == JSON_MEDIA_TYPE


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_JSON_INT_DIGITS:
        raise ValueError(f"a number of {digits} digits (at most {MAX_JSON_INT_DIGITS})")
    return int(text)


def parse_json(body: bytes) -> object:
    """The one JSON parse of a request body: any malformed, too deeply nested (more than the interpreter's
    recursion limit, ~1000 levels) or huge-number document is a 400 `invalid_request`, never a 500."""
    try:
        return json.loads(body, parse_int=_bounded_int)
    except RecursionError as exc:
        raise PoseError("invalid_request", "the request body is not valid JSON: nested too deeply") from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError and our number limit are ValueErrors
        raise PoseError("invalid_request", f"the request body is not valid JSON: {exc}") from exc


def image_from_json(body: bytes, max_upload_bytes: int) -> bytes:
    document = parse_json(body)
    if not isinstance(document, dict) or not isinstance(document.get("image"), str):
        raise PoseError("validation_error", 'body.image: the JSON body must be {"image": "<base64 or data URL>"}')
    text = DATA_URL.sub("", document["image"].strip(), count=1)
    if len(text) > max_json_body_bytes(max_upload_bytes):
        raise PoseError("upload_too_large", f"the image is over the limit of {max_upload_bytes} bytes")
    try:
        # Whitespace (line-wrapped base64) is allowed; any other non-alphabet character is an error.
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PoseError("invalid_image", f"image is not valid base64: {exc}") from exc


async def read_image(request: Request, max_upload_bytes: int) -> bytes:
    """The uploaded photo's bytes, at most one byte over the limit (enough to know it is too large). Broken
    multipart framing is Starlette's HTTPException 400 (`invalid_request` at the edge)."""
    if is_json(request):
        return image_from_json(await request.body(), max_upload_bytes)
    async with request.form(max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FIELDS) as form:
        upload = form.get("image")
        if not isinstance(upload, UploadFile):
            raise PoseError("validation_error", "body.image: field required (a multipart file field named `image`)")
        return await upload.read(max_upload_bytes + 1)
