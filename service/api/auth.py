"""Optional API keys (POSE_API_KEYS, POSE_API_KEYS_FILE): the API routes need `X-API-Key: <key>` or
`Authorization: Bearer <key>`, else 401 `unauthorized`.

Checked in a pure ASGI middleware outside admission, so a caller without a key takes no upload place and no
byte of its body is read. Open: `/healthz`, `/readyz` (probes), the page, its assets and the API docs (the page
asks for the key; /docs authorises with it), the SageMaker contract (`/ping`, `/invocations`: SageMaker itself
authenticates callers with IAM, and InvokeEndpoint cannot send our headers), and `/metrics` unless
POSE_METRICS_REQUIRE_KEY. Keys are compared as SHA-256 digests with `hmac.compare_digest` against every key,
so neither the time taken nor a key's length tells which key, or how much of one, matched. Keys are never
logged or used as metric labels.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from ..exceptions import PoseError
from ..metrics import ERRORS
from .cors import is_api_path
from .errors import http_status
from .middleware import CLOSE, send_error

log = logging.getLogger("service.api.auth")

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/ping", "/invocations"})
METRICS_PATH = "/metrics"
# The key file is looked at (one stat) at most this often; a change is picked up within it.
RELOAD_CHECK_S = 1.0
WWW_AUTHENTICATE = 'Bearer realm="carpose"'
SECURITY_SCHEMES = {
    "APIKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "BearerKey": {"type": "http", "scheme": "bearer", "description": "The API key as a bearer token"},
}


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def read_key_file(path: Path) -> list[str]:
    """One key a line; blank lines and lines starting with # are ignored."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


class ApiKeys:
    """The accepted keys: the settings' list plus the key file's, reloaded when the file changes or on SIGHUP."""

    def __init__(self, keys: Sequence[str] = (), path: Path | None = None) -> None:
        self._listed = [_digest(k) for k in keys if k]
        self.path = path
        self._from_file: list[bytes] = []
        self._stamp: tuple[int, int, int] | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()
        if path is not None:
            self.reload()

    @property
    def enabled(self) -> bool:
        # A configured key file that is missing or empty keeps the API closed: failing open would be worse.
        return bool(self._listed) or self.path is not None

    @property
    def count(self) -> int:
        return len(self._listed) + len(self._from_file)

    def reload(self) -> None:
        if self.path is None:
            return
        with self._lock:
            try:
                stat = self.path.stat()
                keys = read_key_file(self.path)
            except OSError as exc:
                log.warning("API key file %s unreadable (%s): keeping %d key(s)", self.path, exc.strerror, self.count)
                return
            self._from_file = [_digest(k) for k in keys]
            self._stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            self._checked_at = time.monotonic()
        log.info("API keys loaded: %d from %s, %d from POSE_API_KEYS", len(keys), self.path, len(self._listed))

    def _reload_if_changed(self) -> None:
        now = time.monotonic()
        if self.path is None or now - self._checked_at < RELOAD_CHECK_S:
            return
        self._checked_at = now
        try:
            stat = self.path.stat()
        except OSError:
            return
        if (stat.st_mtime_ns, stat.st_size, stat.st_ino) != self._stamp:
            self.reload()

    def accepts(self, presented: str) -> bool:
        self._reload_if_changed()
        digest = _digest(presented)
        matched = False
        for known in (*self._listed, *self._from_file):  # no early exit: the same work whichever key matches
            matched |= hmac.compare_digest(digest, known)
        return matched


def presented_key(headers: dict[bytes, bytes]) -> str | None:
    key = headers.get(b"x-api-key")
    if key:
        return key.decode("latin-1").strip()
    scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def is_preflight(scope: Scope) -> bool:
    """A CORS preflight carries no key (browsers never send one). One from a listed origin is answered by the CORS
    middleware before this; the rest go to the app, whose 405 (no route takes OPTIONS) the README documents."""
    if scope["method"] != "OPTIONS":
        return False
    return any(name == b"access-control-request-method" for name, _ in scope.get("headers", []))


def needs_key(path: str, metrics_require_key: bool) -> bool:
    if path == METRICS_PATH:
        return metrics_require_key
    return is_api_path(path) and path not in OPEN_PATHS


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, keys: ApiKeys, metrics_require_key: bool = False) -> None:
        self.app = app
        self.keys = keys
        self.metrics_require_key = metrics_require_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not self.keys.enabled
            or not needs_key(scope["path"], self.metrics_require_key)
            or is_preflight(scope)
        ):
            await self.app(scope, receive, send)
            return
        key = presented_key(dict(scope.get("headers", [])))
        if key is not None and self.keys.accepts(key):
            await self.app(scope, receive, send)
            return
        ERRORS.labels(code="unauthorized", route="auth").inc()
        if key is None:
            message, challenge = "an API key is required: X-API-Key: <key> or Authorization: Bearer <key>", ""
        else:
            message, challenge = "the API key is not valid", ', error="invalid_token"'  # RFC 6750
        error = PoseError("unauthorized", message)
        await send_error(
            send, http_status(error), error.code, message, {"WWW-Authenticate": WWW_AUTHENTICATE + challenge, **CLOSE}
        )


def install_reload_on_sighup(keys: ApiKeys) -> bool:
    """`kill -HUP` re-reads the key file now; False where signals cannot be handled (not the main thread)."""
    if keys.path is None or threading.current_thread() is not threading.main_thread():
        return False
    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, keys.reload)
    except (NotImplementedError, RuntimeError, AttributeError):  # no SIGHUP (Windows) or no running loop
        return False
    return True


def declare_security(app: FastAPI, metrics_require_key: bool) -> None:
    """The OpenAPI schema names both ways to send the key on every route that needs one, so /docs can authorise."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        schema.setdefault("components", {}).setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
        for path, operations in schema.get("paths", {}).items():
            if needs_key(path, metrics_require_key):
                for operation in operations.values():
                    operation["security"] = [{name: []} for name in SECURITY_SCHEMES]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


__all__ = ["ApiKeyMiddleware", "ApiKeys", "declare_security", "install_reload_on_sighup", "needs_key"]
