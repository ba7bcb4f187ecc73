"""A budget in bytes for full-size decodes running at once: each decode reserves what its format costs.

A decode's memory is its pixel count (read from the header) times its format's measured bytes per pixel
(`imaging.DECODE_BYTES_PER_PIXEL`, from `python -m benchmarks.decode_memory`), not a count of decodes: two 40 MP
PNGs fit where one 40 MP lossless WebP does. The budget a decode draws from is the one its caller set for it
(`DecodeLimiter` runs each decode as `budget.bind(decode)`); a decode with none set (the CLI, `Runtime.predict`)
runs unbudgeted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")


class DecodeBudget:
    """A semaphore over bytes, for decoder threads: `reserve(n)` blocks until n bytes are free."""

    def __init__(self, total_bytes: int) -> None:
        self.total_bytes = total_bytes
        self._used = 0
        self._free = threading.Condition()

    @property
    def used_bytes(self) -> int:
        return self._used

    @contextmanager
    def reserve(self, nbytes: int) -> Iterator[None]:
        # A decode larger than the whole budget (only when the budget is set below one image at the pixel limit)
        # takes the whole budget: it runs alone rather than never.
        nbytes = min(max(0, nbytes), self.total_bytes)
        with self._free:
            self._free.wait_for(lambda: self._used + nbytes <= self.total_bytes)
            self._used += nbytes
        try:
            yield
        finally:
            with self._free:
                self._used -= nbytes
                self._free.notify_all()

    def bind(self, func: Callable[[], T]) -> Callable[[], T]:
        """`func` made to draw its decodes from this budget, on whichever thread it runs."""

        def run() -> T:
            token = _CURRENT.set(self)
            try:
                return func()
            finally:
                _CURRENT.reset(token)

        return run


_CURRENT: ContextVar[DecodeBudget | None] = ContextVar("decode_budget", default=None)


@contextmanager
def reserve_decode(nbytes: int) -> Iterator[None]:
    """Hold `nbytes` of the current decode budget (see `DecodeBudget.bind`) for the block; none set: free."""
    budget = _CURRENT.get()
    if budget is None:
        yield
        return
    with budget.reserve(nbytes):
        yield
