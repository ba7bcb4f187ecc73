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

from ..backends.registry import BACKENDS
from ..exceptions import PoseError
from ..gate import InferenceGate
from ..metrics import CLIENT_DISCONNECTS, ERRORS, IN_FLIGHT, REQUEST_DURATION
from .dependencies import require_model, serving_of
from .errors import CLIENT_DISCONNECTED, error_body, http_headers, http_status
from .upload import JSON_MEDIA_TYPE, max_json_body_bytes

# Multipart framing around the file itself: boundaries, part headers, other small fields.
MULTIPART_ENVELOPE_BYTES = 64 * 1024
POSE_ROUTE_PREFIX = "/pose"


def route_label(scope: Scope) -> str:
    """The route's path template: bounded label values, whatever the clients send."""
    route = scope.get("route")
    if route is not None:
        return str(getattr(route, "path", "unmatched"))
    # FastAPI serves its OpenAPI document without a route object in the scope.
    app = scope.get("app")
    if app is not None and scope.get("path") == getattr(app, "openapi_url", None):
        return str(scope["path"])
    return "unmatched"


class RequestMetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0  # no answer sent
        failed = False
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
        except BaseException:
            failed = True
            raise
        finally:
            if counts_in_flight:
                IN_FLIGHT.dec()
            backend = scope.get("state", {}).get("backend", "none")
            # Nothing sent: a crash is a 500; otherwise the client left first (nginx's 499), not a server error.
            label = str(status) if status else "500" if failed else "499"
            REQUEST_DURATION.labels(route=route_label(scope), backend=backend, status=label).observe(
                time.perf_counter() - started
            )


# On a refusal answered before (or instead of) reading the whole body: the server closes the connection after the
# answer instead of reading and discarding the rest of a declared body, and the client cannot keep streaming.
CLOSE = {"Connection": "close"}


class BodySizeLimitMiddleware:
    def __init__(
        self, app: ASGIApp, max_upload_bytes: int, path_limits: dict[str, tuple[int, str]] | None = None
    ) -> None:
        """`path_limits`: path -> (whole-body limit, the limit as the 413 names it) of routes that take several
        photos, whose limit is not the one photo's."""
        self.app = app
        self.max_body_bytes = max_upload_bytes + MULTIPART_ENVELOPE_BYTES
        self.path_limits = path_limits or {}
        # A JSON body carries the same upload as base64, 4 bytes per 3.
        self.max_json_body_bytes = max_json_body_bytes(max_upload_bytes)
        self.upload_limit = f"the upload is over the limit of {max_upload_bytes} bytes"

    async def _reject(self, send: Send, message: str) -> None:
        ERRORS.labels(code="upload_too_large", route="body_limit").inc()
        await send_error(send, 413, "upload_too_large", message, CLOSE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        media_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        limit = self.max_json_body_bytes if media_type == JSON_MEDIA_TYPE.encode() else self.max_body_bytes
        too_large = self.upload_limit
        if scope["path"] in self.path_limits:
            limit, too_large = self.path_limits[scope["path"]]
        try:
            declared = int(headers.get(b"content-length", b"0"))
        except ValueError:
            declared = 0
        if declared > limit:
            await self._reject(send, too_large)
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
                if received > limit:
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal rejected
            if exceeded:
                # Whatever the app answers to a cut-off body, the client's problem is the size.
                if not rejected:
                    rejected = True
                    await self._reject(send, too_large)
                return
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not rejected:
            await self._reject(send, too_large)


async def send_error(send: Send, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps(error_body(code, message)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


# An upload that has received nothing for this long gives its place to a new request when all are taken: a few
# hundred stalled connections (slowloris) must not lock everyone out until their body timeout.
STALLED_UPLOAD_S = 2.0

# POST routes that carry an image, and the backend whose gate admits them, from the backend registry. main.py
# adds /coverage and /invocations (the local model's gate).
POSE_GATES = {spec.route: spec.name for spec in BACKENDS}
# Backends that need the local model: their routes are refused while it is not loaded.
LOCAL_MODEL_BACKENDS = frozenset(spec.name for spec in BACKENDS if spec.local_model)


class BodyTimeout(Exception):
    """The request body did not arrive in time (raised inside the app's receive)."""


class AdmissionMiddleware:
    """Admit a pose request before its body is read; bound the body's time; notice clients that leave.

    - Refusals (model loading or failed, shutting down, overloaded) are answered from the request line alone:
      no body read, no multipart parse, no decode; `overloaded` ones after `refusal_delay_s`.
    - Two stages, so that slow uploads cannot starve the model's queue: at most `max_uploads` bodies arrive at
      once (each spooled to disk past 1 MB by the multipart parser), and a request takes its place in the
      backend's gate only once its body is complete. The place is released when it has answered, so at most
      workers + queue requests hold a whole body or an image. A body that completes while the gate has filled
      meanwhile gets the same 503 (read, but never decoded).
    - The whole body must arrive within `body_timeout_s`: after it, 408 `request_timeout` and the connection is
      closed (a stalled or lying-Content-Length upload gets an answer, not a hang).
    - A client that disconnects is seen at once: during the upload (counted as `client_disconnected`, not as an
      error of ours) and, after the body, by a watcher whose event the pipeline checks before decoding and
      while queued, so a request nobody waits for never reaches the model.
    """

    def __init__(
        self,
        app: ASGIApp,
        body_timeout_s: float,
        refusal_delay_s: float = 0.0,
        max_uploads: int = 64,
        gates: dict[str, str] | None = None,
    ) -> None:
        self.app = app
        self.gates = POSE_GATES if gates is None else gates  # path -> the backend whose gate admits it
        self.body_timeout_s = body_timeout_s
        self.refusal_delay_s = refusal_delay_s
        self.max_uploads = max_uploads
        self.uploads: list[_AdmittedRequest] = []  # bodies being received, oldest first

    @property
    def uploading(self) -> int:
        return len(self.uploads)

    def _evict_a_stalled_upload(self) -> bool:
        """Make room: end the upload that has received nothing for longest, if that is over STALLED_UPLOAD_S."""
        now = asyncio.get_running_loop().time()
        idle = [u for u in self.uploads if not u.evicted.is_set() and now - u.last_activity >= STALLED_UPLOAD_S]
        if not idle:
            return False
        victim = min(idle, key=lambda u: u.last_activity)
        victim.evicted.set()  # it answers 408 and gives its place back
        self.uploads.remove(victim)
        victim.uploading = False
        return True

    def _check(self, scope: Scope, app_state: Any, gate: InferenceGate) -> None:
        if self.gates[scope["path"]] in LOCAL_MODEL_BACKENDS:
            require_model(app_state.model)
        gate.check()
        if self.uploading >= self.max_uploads and not self._evict_a_stalled_upload():
            raise PoseError(
                "overloaded",
                f"{self.uploading} uploads are already in progress; retry later",
                retry_after_s=gate.retry_after_s(),
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        backend = self.gates.get(scope["path"]) if scope["type"] == "http" else None
        if backend is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        app_state = scope["app"].state
        gate = serving_of(app_state).gates[backend]
        try:
            self._check(scope, app_state, gate)
        except PoseError as exc:
            ERRORS.labels(code=exc.code, route=scope["path"]).inc()
            if exc.code == "overloaded":
                # Held, not computed: a sleeping refusal costs no CPU, and clients that resend at once can no
                # longer turn refusals into the main load of the server (measured: goodput fell to a third).
                await asyncio.sleep(self.refusal_delay_s)
            await send_error(send, http_status(exc), exc.code, exc.message, {**http_headers(exc), **CLOSE})
            return
        await _AdmittedRequest(self, gate, scope, receive, send).run()


class _AdmittedRequest:
    """One pose request past the first admission check: its upload, its gate place, its client's presence."""

    def __init__(self, owner: AdmissionMiddleware, gate: InferenceGate, scope: Scope, receive: Receive, send: Send):
        self.owner = owner
        self.gate = gate
        self.scope = scope
        self.receive = receive
        self.send = send
        self.state: dict[str, Any] = scope.setdefault("state", {})
        self.gone = asyncio.Event()
        self.state["client_gone"] = self.gone
        self.uploading = False
        self.admitted = False
        self.body_done = False
        self.refusal: PoseError | None = None
        self.response_started = False
        self.watcher: asyncio.Future[None] | None = None
        loop = asyncio.get_running_loop()
        self.deadline = loop.time() + owner.body_timeout_s
        self.last_activity = loop.time()
        self.evicted = asyncio.Event()  # set to end a stalled upload early when others need its place

    def _end_upload(self) -> None:
        if self.uploading:
            self.uploading = False
            self.owner.uploads.remove(self)

    async def _watch(self) -> None:
        # After the body, the server's receive() returns only when the client disconnects (or we answered).
        while (await self.receive())["type"] != "http.disconnect":
            pass
        if not self.response_started:
            self.gone.set()

    async def receive_body(self) -> Message:
        if self.body_done:
            await self.gone.wait()
            return {"type": "http.disconnect"}
        loop = asyncio.get_running_loop()
        receiving = asyncio.ensure_future(self.receive())
        evicted = asyncio.ensure_future(self.evicted.wait())
        try:
            await asyncio.wait(
                {receiving, evicted}, timeout=max(0.0, self.deadline - loop.time()), return_when="FIRST_COMPLETED"
            )
        finally:
            evicted.cancel()
            if not receiving.done():
                receiving.cancel()
        if receiving.cancelled() or not receiving.done():
            self.state["body_error"] = "request_timeout"
            raise BodyTimeout
        message = receiving.result()
        self.last_activity = loop.time()
        if message["type"] == "http.disconnect":
            self.state["body_error"] = CLIENT_DISCONNECTED
            self.state.setdefault("gone_stage", "upload")
            self.gone.set()
        elif not message.get("more_body", False):
            self.body_done = True
            self._end_upload()
            try:
                self.gate.admit()  # the second stage: a place for a whole body, and later its image
            except PoseError as exc:
                self.refusal = exc
                self.state["body_error"] = exc.code
                raise
            self.admitted = True
            self.watcher = asyncio.ensure_future(self._watch())
        return message

    async def send_response(self, message: Message) -> None:
        if not self.response_started and (self.state.get("body_error") or self.gone.is_set()):
            return  # replaced by our own answer below, or nobody left to read it
        self.response_started = True
        await self.send(message)

    async def run(self) -> None:
        self.uploading = True
        self.owner.uploads.append(self)
        try:
            await self.owner.app(self.scope, self.receive_body, self.send_response)
        except Exception:
            if not self.state.get("body_error") and not self.gone.is_set():
                raise
        finally:
            self._end_upload()
            if self.watcher is not None:
                self.watcher.cancel()
            if self.admitted:
                self.gate.release()
        await self._answer_body_error()

    async def _answer_body_error(self) -> None:
        if self.response_started:
            return
        path = self.scope["path"]
        if self.refusal is not None:
            ERRORS.labels(code=self.refusal.code, route=path).inc()
            refusal = self.refusal
            await send_error(self.send, http_status(refusal), refusal.code, refusal.message, http_headers(refusal))
        elif self.state.get("body_error") == "request_timeout":
            ERRORS.labels(code="request_timeout", route=path).inc()
            message = (
                f"the upload stalled for over {STALLED_UPLOAD_S:g} s while other requests waited"
                if self.evicted.is_set()
                else f"the request body did not arrive within {self.owner.body_timeout_s:g} s"
            )
            await send_error(self.send, 408, "request_timeout", message, CLOSE)
        elif self.gone.is_set():
            CLIENT_DISCONNECTS.labels(route=path, stage=self.state.get("gone_stage", "processing")).inc()


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
