"""uvicorn's h11 protocol with a header-read timeout, and JSON bodies for the server's own protocol errors.

uvicorn has no header-read timeout: a client that sends one header byte a second (slowloris) holds its connection
for as long as it likes, since every byte cancels the keep-alive timer and the body timeout
(POSE_BODY_TIMEOUT_S, the admission middleware's) starts only once the headers are complete. Here a timer is armed
when a connection opens and again when each response completes (the next request's turn): when the request's
headers are not complete within POSE_HEADER_TIMEOUT_S the connection is closed, with a JSON 408 when part of a
request had arrived (none on an idle keep-alive connection, where a client may be sending its next request just
then). uvicorn's plain-text `400 Invalid HTTP request received.` becomes the documented JSON `invalid_request`.

The stack as shipped runs it: `carpose serve`, the images' CMD and the test servers pass
`--http service.api.http_protocol:HeaderTimeoutH11Protocol` (`service.cli.HTTP_PROTOCOL`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from ..settings import get_settings
from .errors import error_body

REASONS = {400: b"Bad Request", 408: b"Request Timeout"}


def raw_error(status: int, code: str, message: str) -> bytes:
    """A whole HTTP/1.1 error response that closes the connection, written without h11 (whose state may be an
    error already, or have no request to answer)."""
    body = json.dumps(error_body(code, message)).encode()
    head = (
        f"HTTP/1.1 {status} ".encode()
        + REASONS[status]
        + b"\r\ncontent-type: application/json\r\nx-content-type-options: nosniff\r\nconnection: close\r\n"
        + f"content-length: {len(body)}\r\n\r\n".encode()
    )
    return head + body


class HeaderTimeoutH11Protocol(H11Protocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout_s = get_settings().header_timeout_s
        self._header_timer: asyncio.TimerHandle | None = None

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_complete(self) -> bool:
        # The client's side leaves IDLE when h11 has parsed a whole request head.
        return self.conn.their_state is not h11.IDLE

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._header_timer is not None and self._headers_complete():
            self._cancel_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may start the next cycle and parse a pipelined request at once
        if not self.transport.is_closing() and not self._headers_complete():
            self._arm_header_timer()

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or self._headers_complete():
            return
        partial = bool(self.conn.trailing_data[0])
        if partial and self.conn.our_state is h11.IDLE:
            message = f"the request headers did not arrive within {self.header_timeout_s:g} s"
            self.transport.write(raw_error(408, "request_timeout", message))
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        self._cancel_header_timer()
        message = f"the request is not valid HTTP/1.1 ({msg.rstrip('.')})"
        self.transport.write(raw_error(400, "invalid_request", message))
        self.transport.close()
