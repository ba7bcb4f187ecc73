"""A local stand-in for Amazon Rekognition: real HTTP on 127.0.0.1, checked against botocore's service model.

boto3 reaches it through `endpoint_url`, so requests go through botocore's whole stack (serialisation,
signing, retries, timeouts, response parsing). Both directions are checked against botocore's own model of
the service, so a crafted response that Rekognition could never send fails the test instead of passing it:

- requests: the JSON-1.1 envelope (target header, content type, SigV4 authorization with the test key), the
  input shape (botocore's ParamValidator after base64-decoding blobs), and `Image.Bytes` itself: a JPEG or
  PNG that decodes, no larger than the model's ImageBlob maximum (5 MiB);
- responses: success bodies are walked against the operation's output shape (unknown members, types,
  enums, ranges) and parsed by botocore's JSON parser; error codes must be declared by the operation or be
  one of AWS's common errors.

Each test scripts the answers it wants (`script(...)`): status and body, an AWS error code, a delay before
answering (read timeouts), or a dropped connection. Problems are collected in `problems`; the tests' fixture
fails any test that leaves one.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import botocore.session
from botocore.model import OperationModel, Shape
from botocore.parsers import create_parser
from botocore.validate import ParamValidator
from PIL import Image

SERVICE_MODEL = botocore.session.get_session().get_service_model("rekognition")
TARGET_PREFIX = SERVICE_MODEL.metadata["targetPrefix"]  # RekognitionService
JSON_CONTENT_TYPE = f"application/x-amz-json-{SERVICE_MODEL.metadata['jsonVersion']}"
IMAGE_MAX_BYTES = int(
    SERVICE_MODEL.operation_model("DetectLabels").input_shape.members["Image"].members["Bytes"].metadata["max"]
)
# Errors any AWS JSON service may answer without declaring them in the operation's model.
COMMON_ERRORS: dict[str, int] = {
    "ServiceUnavailable": 503,
    "UnrecognizedClientException": 400,
    "InvalidSignatureException": 400,
    "IncompleteSignature": 400,
    "MissingAuthenticationToken": 403,
    "ExpiredTokenException": 400,
    "RequestTimeout": 408,
}
# Status codes Rekognition gives its declared errors.
DECLARED_ERROR_STATUS: dict[str, int] = {"InternalServerError": 500, "AccessDeniedException": 400}


@dataclass(frozen=True)
class Scripted:
    """One answer of the stand-in."""

    body: dict[str, Any] | None = None  # success body (status 200)
    error: str | None = None  # AWS error code: answered as AWS does, with its usual status
    status: int | None = None  # overrides the status of `body` or `error`
    message: str = "scripted by the test"
    delay_s: float = 0.0  # wait before answering (read timeouts)
    drop: bool = False  # close the connection without answering


@dataclass(frozen=True)
class Received:
    operation: str
    params: dict[str, Any]  # the request's JSON, Image.Bytes replaced by its size
    image_format: str
    image_size: tuple[int, int]
    image_bytes: int
    exif_orientation: int  # 1 when absent
    authorization: str


@dataclass
class StandIn:
    host: str = "127.0.0.1"
    access_key: str = "AKIACARPOSETEST00000"
    queue: deque[Scripted] = field(default_factory=deque)
    received: list[Received] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://{self.host}:{self.server.server_address[1]}"

    def script(self, *answers: Scripted) -> None:
        with self.lock:
            self.queue.extend(answers)

    def reset(self) -> None:
        with self.lock:
            self.queue.clear()
            self.received.clear()
            self.problems.clear()

    def start(self) -> StandIn:
        stand_in = self

        class Handler(_Handler):
            owner = stand_in

        server = ThreadingHTTPServer((self.host, 0), Handler)
        server.daemon_threads = True
        server.block_on_close = False  # keep-alive connections of finished tests must not hold shutdown
        self.server = server
        self.thread = threading.Thread(target=server.serve_forever, name="rekognition-stand-in", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    # ------------------------------------------------------------------ called by the handler (any thread)

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)

    def next_answer(self) -> Scripted | None:
        with self.lock:
            return self.queue.popleft() if self.queue else None


class _Handler(BaseHTTPRequestHandler):
    owner: StandIn
    protocol_version = "HTTP/1.1"  # keep-alive, as AWS endpoints do: urllib3 reuses pooled connections
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms a call.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: pytest shows problems through the assertions

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        operation, problems, received = check_request(self.path, dict(self.headers.items()), raw, self.owner)
        for text in problems:
            self.owner.problem(text)
        if received is not None:
            with self.owner.lock:
                self.owner.received.append(received)
        if problems:
            self._send(400, {"__type": "InvalidParameterException", "message": "; ".join(problems)})
            return
        answer = self.owner.next_answer()
        if answer is None:
            self.owner.problem(f"{operation}: no scripted answer left")
            self._send(500, {"__type": "InternalServerError", "message": "stand-in: nothing scripted"})
            return
        if answer.delay_s:
            time.sleep(answer.delay_s)
        if answer.drop:
            self.close_connection = True
            self.connection.close()
            return
        status, body = build_answer(operation, answer, self.owner)
        self._send(status, body, error=answer.error)

    def _send(self, status: int, body: dict[str, Any], error: str | None = None) -> None:
        payload = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", JSON_CONTENT_TYPE)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")
            if error is not None:
                self.send_header("x-amzn-ErrorType", f"{error}:")
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (read timeout tests)


# ------------------------------------------------------------------------------------------ requests


def check_request(
    path: str, headers: dict[str, str], raw: bytes, owner: StandIn
) -> tuple[str, list[str], Received | None]:
    """(operation, problems, what was received) of one request."""
    lower = {k.lower(): v for k, v in headers.items()}
    problems: list[str] = []
    target = lower.get("x-amz-target", "")
    prefix, _, operation = target.partition(".")
    if path != "/":
        problems.append(f"path {path!r}, expected '/'")
    if prefix != TARGET_PREFIX or operation not in SERVICE_MODEL.operation_names:
        return operation or "?", [*problems, f"unknown X-Amz-Target {target!r}"], None
    if lower.get("content-type") != JSON_CONTENT_TYPE:
        problems.append(f"Content-Type {lower.get('content-type')!r}, expected {JSON_CONTENT_TYPE}")
    authorization = lower.get("authorization", "")
    if not authorization.startswith(f"AWS4-HMAC-SHA256 Credential={owner.access_key}/") or (
        "/rekognition/aws4_request" not in authorization
    ):
        problems.append(f"not SigV4-signed for rekognition with the test key: {authorization[:80]!r}")
    try:
        body = json.loads(raw)
    except ValueError as exc:
        return operation, [*problems, f"body is not JSON: {exc}"], None
    op_model = SERVICE_MODEL.operation_model(operation)
    try:
        params = _decode_blobs(body, op_model.input_shape)
    except (ValueError, binascii.Error) as exc:
        return operation, [*problems, f"undecodable blob: {exc}"], None
    report = ParamValidator().validate(params, op_model.input_shape)
    if report.has_errors():
        problems.append(f"{operation} input invalid: {report.generate_report()}")
    image = params.get("Image", {}).get("Bytes")
    if not isinstance(image, bytes):
        return operation, [*problems, "no Image.Bytes (the service must send bytes, not S3 objects)"], None
    fmt, size, orientation = "?", (0, 0), 1
    if len(image) > IMAGE_MAX_BYTES:
        problems.append(f"Image.Bytes is {len(image)} bytes, over the {IMAGE_MAX_BYTES} limit")
    if image[:3] == b"\xff\xd8\xff":
        fmt = "JPEG"
    elif image[:8] == b"\x89PNG\r\n\x1a\n":
        fmt = "PNG"
    else:
        problems.append(f"Image.Bytes is neither JPEG nor PNG (starts {image[:12]!r})")
    if fmt != "?":
        try:
            with Image.open(io.BytesIO(image), formats=[fmt]) as decoded:
                decoded.load()
                size = decoded.size
                orientation = int(decoded.getexif().get(0x0112, 1) or 1)
        except Exception as exc:  # any decoder failure means Rekognition would refuse it too
            problems.append(f"Image.Bytes does not decode as {fmt}: {exc}")
    shown = {k: v for k, v in body.items() if k != "Image"}
    received = Received(operation, shown, fmt, size, len(image), orientation, authorization)
    return operation, problems, received


def _decode_blobs(value: Any, shape: Shape) -> Any:
    """The JSON protocol's wire form (blobs base64) -> the Python form ParamValidator checks."""
    if shape.type_name == "blob" and isinstance(value, str):
        return base64.b64decode(value, validate=True)
    if shape.type_name == "structure" and isinstance(value, dict):
        return {k: _decode_blobs(v, shape.members[k]) if k in shape.members else v for k, v in value.items()}
    if shape.type_name == "list" and isinstance(value, list):
        return [_decode_blobs(v, shape.member) for v in value]
    if shape.type_name == "map" and isinstance(value, dict):
        return {k: _decode_blobs(v, shape.value) for k, v in value.items()}
    return value


# ----------------------------------------------------------------------------------------- responses


def build_answer(operation: str, answer: Scripted, owner: StandIn) -> tuple[int, dict[str, Any]]:
    op_model = SERVICE_MODEL.operation_model(operation)
    if answer.error is not None:
        declared = {shape.name for shape in op_model.error_shapes}
        if answer.error in declared:
            status = DECLARED_ERROR_STATUS.get(answer.error, 400)
        elif answer.error in COMMON_ERRORS:
            status = COMMON_ERRORS[answer.error]
        else:
            owner.problem(f"{operation} cannot answer {answer.error}: not declared, not a common AWS error")
            status = 400
        return answer.status or status, {"__type": answer.error, "message": answer.message}
    body = answer.body if answer.body is not None else {}
    problems = check_output(body, op_model)
    for text in problems:
        owner.problem(f"scripted {operation} response invalid: {text}")
    return answer.status or 200, body


def check_output(body: dict[str, Any], op_model: OperationModel) -> list[str]:
    """Problems of a success body against the operation's output shape (empty list: valid)."""
    problems = validate_value(body, op_model.output_shape, op_model.output_shape.name)
    if not problems:
        # botocore's own parser must accept it and give back every member we wrote.
        parser = create_parser(SERVICE_MODEL.metadata["protocol"])
        response = {"status_code": 200, "headers": {}, "body": json.dumps(body).encode()}
        try:
            parsed = parser.parse(response, op_model.output_shape)
        except Exception as exc:  # a parser failure is exactly what this check is for
            return [f"botocore's parser refused it: {exc}"]
        missing = set(body) - set(parsed)
        if missing:
            problems.append(f"botocore's parser dropped {sorted(missing)}")
    return problems


def validate_value(value: Any, shape: Shape, path: str) -> list[str]:
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {type(value).__name__}"]
        problems = [f"{path}.{k}: not a member of {shape.name}" for k in value if k not in shape.members]
        problems += [f"{path}.{k}: required" for k in getattr(shape, "required_members", []) if k not in value]
        for k, v in value.items():
            if k in shape.members:
                problems += validate_value(v, shape.members[k], f"{path}.{k}")
        return problems
    if kind == "list":
        if not isinstance(value, list):
            return [f"{path}: expected a list"]
        problems = _range(len(value), meta, path, "length")
        for i, v in enumerate(value):
            problems += validate_value(v, shape.member, f"{path}[{i}]")
        return problems
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: expected an object (map)"]
        problems = []
        for k, v in value.items():
            problems += validate_value(k, shape.key, f"{path}<key>")
            problems += validate_value(v, shape.value, f"{path}[{k!r}]")
        return problems
    if kind == "string":
        if not isinstance(value, str):
            return [f"{path}: expected a string"]
        enum = getattr(shape, "enum", None) or meta.get("enum")
        if enum and value not in enum:
            return [f"{path}: {value!r} not one of {list(enum)}"]
        return _range(len(value), meta, path, "length")
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{path}: expected an integer"]
        return _range(value, meta, path, "value")
    if kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return [f"{path}: expected a number"]
        return _range(value, meta, path, "value")
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{path}: expected a boolean"]
    if kind == "timestamp":
        return [] if isinstance(value, int | float | str) and not isinstance(value, bool) else [f"{path}: timestamp"]
    if kind == "blob":
        try:
            base64.b64decode(value, validate=True)
        except (TypeError, ValueError, binascii.Error):
            return [f"{path}: expected base64"]
        return []
    return [f"{path}: unhandled shape type {kind}"]


def _range(number: float, meta: dict[str, Any], path: str, what: str) -> list[str]:
    problems = []
    if "min" in meta and number < meta["min"]:
        problems.append(f"{path}: {what} {number} below the model's min {meta['min']}")
    if "max" in meta and number > meta["max"]:
        problems.append(f"{path}: {what} {number} above the model's max {meta['max']}")
    return problems
