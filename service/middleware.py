"""Pure ASGI middleware: request latency metrics and the upload body limit.

Pure ASGI (not BaseHTTPMiddleware) because these wrap every request, and the body limit has to act on the
byte stream before Starlette's multipart parser spools a huge upload to disk.
"""

from __future__ import annotations

import json
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_body
from .metrics import ERRORS, IN_FLIGHT, REQUEST_DURATION

# Multipart framing around the file itself: boundaries, part headers, other small fields.
MULTIPART_ENVELOPE_BYTES = 64 * 1024
POSE_ROUTE_PREFIX = "/pose"


class RequestMetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        counts_in_flight = scope["path"].startswith(POSE_ROUTE_PREFIX)

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        if counts_in_flight:
            IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_with_status)
        finally:
            if counts_in_flight:
                IN_FLIGHT.dec()
            route = scope.get("route")
            backend = scope.get("state", {}).get("backend", "none")
            REQUEST_DURATION.labels(
                route=getattr(route, "path", "unmatched"), backend=backend, status=str(status)
            ).observe(time.perf_counter() - started)


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_upload_bytes + MULTIPART_ENVELOPE_BYTES
        self.max_upload_bytes = max_upload_bytes

    async def _reject(self, send: Send) -> None:
        ERRORS.labels(code="upload_too_large", route="body_limit").inc()
        body = json.dumps(
            error_body("upload_too_large", f"the upload is over the limit of {self.max_upload_bytes} bytes")
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_body_bytes:
                    await self._reject(send)
                    return
        received = 0
        exceeded = False
        rejected = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal rejected
            if exceeded:
                # Whatever the app answers to a cut-off body, the client's problem is the size.
                if not rejected:
                    rejected = True
                    await self._reject(send)
                return
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not rejected:
            await self._reject(send)
