"""Bounded admission to the model: a few requests run, a few wait, the rest get 503 at once.

Without a bound, a burst of uploads piles up in memory and every request times out together. With it,
clients that cannot be served soon learn so immediately, with a Retry-After estimated from recent latency.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TypeVar

from .errors import ApiError
from .metrics import QUEUE_DEPTH

T = TypeVar("T")


class InferenceGate:
    def __init__(self, workers: int, max_queue: int, name: str = "model") -> None:
        self.name = name
        self.workers = workers
        self.max_queue = max_queue
        self._slots = asyncio.Semaphore(workers)
        self._waiting = 0
        self._running = 0
        # A pool of our own: model calls never starve the event loop's default thread pool.
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{name}-worker")
        self._recent_seconds = 1.0  # exponential moving average of one call
        QUEUE_DEPTH.labels(backend=name).set(0)  # export the series from the start, not from the first wait

    @property
    def waiting(self) -> int:
        return self._waiting

    def retry_after_s(self) -> int:
        backlog = self._waiting + self._running
        return max(1, math.ceil(self._recent_seconds * backlog / self.workers))

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._running >= self.workers and self._waiting >= self.max_queue:
            raise ApiError(
                503,
                "overloaded",
                f"{self._waiting} requests are already waiting for the model; retry later",
                headers={"Retry-After": str(self.retry_after_s())},
            )
        self._waiting += 1
        QUEUE_DEPTH.labels(backend=self.name).inc()
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
            QUEUE_DEPTH.labels(backend=self.name).dec()
        self._running += 1
        try:
            yield
        finally:
            self._running -= 1
            self._slots.release()

    async def run(self, func: Callable[[], T]) -> T:
        """Run a blocking call on the gate's own threads (call inside `slot()`)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            return await loop.run_in_executor(self._executor, func)
        finally:
            self._recent_seconds = 0.8 * self._recent_seconds + 0.2 * (loop.time() - started)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
