"""Pure ASGI middleware: admission, body timeout and disconnects, the upload body limit, metrics, headers.

Pure ASGI (not BaseHTTPMiddleware) because these wrap every request, and admission and the body limit have to
act on the byte stream before Starlette's multipart parser reads (or spools to disk) a single byte of it.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .dependencies import require_model
from .errors import CLIENT_DISCONNECTED, ApiError, error_body
from .gate import InferenceGate
from .metrics import CLIENT_DISCONNECTS, ERRORS, IN_FLIGHT, REQUEST_DURATION

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


async def send_error(send: Send, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps(error_body(code, message)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


# POST routes that carry an image, and the app.state attribute of the gate that admits them.
POSE_GATES = {"/pose": "gate", "/pose/rekognition": "rekognition_gate"}


class BodyTimeout(Exception):
    """The request body did not arrive in time (raised inside the app's receive)."""


class AdmissionMiddleware:
    """Admit a pose request before its body is read; bound the body's time; notice clients that leave.

    - Refusals (model loading or failed, shutting down, overloaded) are answered from the request line alone:
      no body read, no multipart parse, no decode; `overloaded` ones after `refusal_delay_s`. The place taken
      by an admitted request is released when it has answered, so at most workers + queue requests hold a body
      or an image.
    - The whole body must arrive within `body_timeout_s`: after it, 408 `request_timeout` and the connection is
      closed (a stalled or lying-Content-Length upload gets an answer, not a hang).
    - A client that disconnects is seen at once: during the upload (counted as `client_disconnected`, not as an
      error of ours) and, after the body, by a watcher whose event the pipeline checks before decoding and
      while queued, so a request nobody waits for never reaches the model.
    """

    def __init__(self, app: ASGIApp, body_timeout_s: float, refusal_delay_s: float = 0.0) -> None:
        self.app = app
        self.body_timeout_s = body_timeout_s
        self.refusal_delay_s = refusal_delay_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gate_attr = POSE_GATES.get(scope["path"]) if scope["type"] == "http" else None
        if gate_attr is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        app_state = scope["app"].state
        gate: InferenceGate = getattr(app_state, gate_attr)
        try:
            if scope["path"] == "/pose":
                require_model(app_state.model)
            gate.admit()
        except ApiError as exc:
            ERRORS.labels(code=exc.code, route=scope["path"]).inc()
            if exc.code == "overloaded":
                # Held, not computed: a sleeping refusal costs no CPU, and clients that resend at once can no
                # longer turn refusals into the main load of the server (measured: goodput fell to a third).
                await asyncio.sleep(self.refusal_delay_s)
            await send_error(send, exc.status, exc.code, exc.message, exc.headers)
            return
        try:
            await self._admitted(scope, receive, send)
        finally:
            gate.release()

    async def _admitted(self, scope: Scope, receive: Receive, send: Send) -> None:
        state: dict[str, Any] = scope.setdefault("state", {})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout_s
        gone = asyncio.Event()
        state["client_gone"] = gone
        body_done = False
        response_started = False
        watcher: asyncio.Future[None] | None = None

        async def watch() -> None:
            # After the body, the server's receive() returns only when the client disconnects (or we answered).
            while (await receive())["type"] != "http.disconnect":
                pass
            if not response_started:
                gone.set()

        async def admitted_receive() -> Message:
            nonlocal body_done, watcher
            if body_done:
                await gone.wait()
                return {"type": "http.disconnect"}
            try:
                message = await asyncio.wait_for(receive(), timeout=max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                state["body_error"] = "request_timeout"
                raise BodyTimeout from None
            if message["type"] == "http.disconnect":
                state["body_error"] = CLIENT_DISCONNECTED
                state.setdefault("gone_stage", "upload")
                gone.set()
            elif not message.get("more_body", False):
                body_done = True
                watcher = asyncio.ensure_future(watch())
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if not response_started and (state.get("body_error") or gone.is_set()):
                return  # replaced by our own answer below, or nobody left to read it
            response_started = True
            await send(message)

        try:
            await self.app(scope, admitted_receive, guarded_send)
        except Exception:
            if not state.get("body_error") and not gone.is_set():
                raise
        finally:
            if watcher is not None:
                watcher.cancel()
        if response_started:
            return
        if state.get("body_error") == "request_timeout":
            ERRORS.labels(code="request_timeout", route=scope["path"]).inc()
            message = f"the request body did not arrive within {self.body_timeout_s:g} s"
            await send_error(send, 408, "request_timeout", message, {"Connection": "close"})
        elif gone.is_set():
            CLIENT_DISCONNECTS.labels(route=scope["path"], stage=state.get("gone_stage", "processing")).inc()


class SecurityHeadersMiddleware:
    """`X-Content-Type-Options: nosniff` on every response: API JSON, /docs and static files included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"x-content-type-options" for name, _ in headers):
                    headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
