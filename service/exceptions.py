"""The runtime's own failures: a stable code and a message for people, and no HTTP.

The core (decoding, the gates, the backends, `service.runtime`) raises these; the HTTP edge turns them into
responses through the one table of codes and statuses, `service.api.errors.ERROR_CODES`, and the CLI prints them.
"""

from __future__ import annotations

import re
from typing import Any

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
# An absolute POSIX path of two or more parts (not a URL's: no ':', '/' or word character just before it).
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/(?:[\w.+-]+/)+([\w.+-]+)")


def strip_paths(text: str) -> str:
    """`/work/shared/datasets/car-parts` -> `car-parts`: the server's (or the training machine's) directories are
    not the client's business; the last name still says which file or folder."""
    return _ABSOLUTE_PATH.sub(r"\1", text)


def public_message(message: str) -> str:
    """A library's message without memory addresses (`<... object at 0x7f...>`) and without the machine's paths,
    which tell clients nothing."""
    return strip_paths(_ADDRESS.sub("", message))


def public_value(value: Any) -> Any:
    """`strip_paths` on every string of a JSON-like value (a model card, say)."""
    if isinstance(value, str):
        return strip_paths(value)
    if isinstance(value, dict):
        return {key: public_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [public_value(item) for item in value]
    return value


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
