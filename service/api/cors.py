"""CORS for the API routes: listed origins (POSE_CORS_ORIGINS) get preflight answers and headers, others none.

Pure ASGI and outermost, so every answer of an API route carries the headers (errors, 503 refusals and 401s
included: a page on another origin must be able to read why it was refused), and preflights are answered
before admission or the API key check (a browser sends neither a body nor a key with them). A preflight from
an origin that is not listed is passed on to the app, whose 405 has no CORS headers: the browser then blocks
the call, which is the point. Starlette's CORSMiddleware would answer it with a plain-text 400 instead, and
would add headers to the page and /docs as well.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The page, its assets and the API docs are same-origin things, not API routes.
NON_API_PREFIXES = ("/static/", "/docs", "/redoc")
NON_API_PATHS = ("/", "/openapi.json")
ALLOWED_METHODS = ("GET", "POST")
# Request headers a cross-origin client may send (Content-Type: multipart and JSON are not "simple" for JSON).
ALLOWED_HEADERS = ("content-type", "authorization", "x-api-key")
# Response headers a cross-origin page may read beyond the safelisted ones.
EXPOSED_HEADERS = "Retry-After, WWW-Authenticate"
PREFLIGHT_MAX_AGE_S = 600


def is_api_path(path: str) -> bool:
    return path not in NON_API_PATHS and not path.startswith(NON_API_PREFIXES)


class CORSMiddleware:
    def __init__(self, app: ASGIApp, origins: Sequence[str]) -> None:
        self.app = app
        self.any_origin = "*" in origins
        self.origins = frozenset(o.rstrip("/") for o in origins if o != "*")

    def _allowed(self, origin: str) -> bool:
        return self.any_origin or origin in self.origins

    def _allow_origin(self, origin: str) -> list[tuple[bytes, bytes]]:
        value = "*" if self.any_origin else origin
        headers = [(b"access-control-allow-origin", value.encode("latin-1"))]
        if not self.any_origin:
            headers.append((b"vary", b"Origin"))  # caches must not give one origin's answer to another
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_api_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = {name: value for name, value in scope.get("headers", [])}
        origin = headers.get(b"origin", b"").decode("latin-1")
        if not origin or not self._allowed(origin):
            await self.app(scope, receive, send)
            return
        requested = headers.get(b"access-control-request-method", b"").decode("latin-1").upper()
        if scope["method"] == "OPTIONS" and requested:
            await self._preflight(origin, requested, headers, send)
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [*self._allow_origin(origin), (b"access-control-expose-headers", EXPOSED_HEADERS.encode())]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_cors)

    async def _preflight(self, origin: str, method: str, headers: dict[bytes, bytes], send: Send) -> None:
        asked = [h.strip().lower() for h in headers.get(b"access-control-request-headers", b"").decode().split(",")]
        asked = [h for h in asked if h]
        if method not in ALLOWED_METHODS or any(h not in ALLOWED_HEADERS for h in asked):
            # Answered without the allow headers: the browser refuses the call and says why in its console.
            await send({"type": "http.response.start", "status": 204, "headers": [(b"vary", b"Origin")]})
            await send({"type": "http.response.body", "body": b""})
            return
        response = [
            *self._allow_origin(origin),
            (b"access-control-allow-methods", ", ".join(ALLOWED_METHODS).encode()),
            (b"access-control-allow-headers", ", ".join(ALLOWED_HEADERS).encode()),
            (b"access-control-max-age", str(PREFLIGHT_MAX_AGE_S).encode()),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": response})
        await send({"type": "http.response.body", "body": b""})
