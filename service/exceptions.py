"""The runtime's own failures: a stable code and a message for people, and no HTTP.

The core (decoding, the gates, the backends, `service.runtime`) raises these; the HTTP edge turns them into
responses through the one table of codes and statuses, `service.api.errors.ERROR_CODES`, and the CLI prints them.
"""

from __future__ import annotations

import re

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def public_message(message: str) -> str:
    """A library's message without memory addresses (`<... object at 0x7f...>`), which tell clients nothing."""
    return _ADDRESS.sub("", message)


class PoseError(Exception):
    """A failure the caller should see. `code` is a key of `service.api.errors.ERROR_CODES`; `retry_after_s`, when
    set, says when trying again may succeed (HTTP sends it as Retry-After)."""

    def __init__(self, code: str, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s


class ClientGone(Exception):
    """The client disconnected; `stage` says where the request was (upload, queued)."""

    def __init__(self, stage: str) -> None:
        super().__init__(stage)
        self.stage = stage
