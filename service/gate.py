"""Bounded admission to a backend, and bounded decoding: the service's whole memory and CPU budget per request.

The ASGI admission middleware checks a request against its gate *before* its body is read, so a refusal costs
no multipart parse and no decode, and takes a place once the body is complete. The place is held until the
request has answered: at most `workers + max_queue` requests with a whole body are ever decoding, waiting or
running on one backend, and the rest learn so at once, with a Retry-After computed from the observed service
time and the backlog.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .decode_budget import DecodeBudget
from .exceptions import ClientGone, PoseError
from .imaging import DECODE_BYTES_PER_PIXEL
from .metrics import BATCH_SIZE, QUEUE_DEPTH
from .settings import Settings

T = TypeVar("T")
X = TypeVar("X")


@dataclass(frozen=True)
class BatchPolicy:
    """How many waiting requests one model call may take, and how long a free worker waits for more to arrive."""

    max_size: int = 1
    timeout_s: float = 0.0


# Images per model call when POSE_BATCH_MAX_SIZE is 0. CPU: 1, measured (docs/gpu.md: on two cores a batch
# costs what its images cost one by one, and the wait for company only adds latency). CUDA: unmeasured; a GPU
# has the idle width that batching fills.
DEVICE_BATCH_SIZE = {"cpu": 1, "cuda": 8}


def batch_policy(settings: Settings, device: str) -> BatchPolicy:
    """The batching a backend on `device` gets. Each request holds a decoded image while it waits, so a batch
    is never larger than POSE_MAX_DECODED_IMAGES: the device default is capped there."""
    size = settings.batch_max_size or min(DEVICE_BATCH_SIZE.get(device.split(":")[0], 1), settings.max_decoded_images)
    return BatchPolicy(max_size=size, timeout_s=settings.batch_timeout_ms / 1000.0)


@dataclass(eq=False)
class _Waiter(Generic[X, T]):
    item: X
    future: asyncio.Future[T]
    client_gone: asyncio.Event | None
    arrived: float = field(default_factory=time.monotonic)

    @property
    def gone(self) -> bool:
        return self.client_gone is not None and self.client_gone.is_set()


class InferenceGate:
    def __init__(self, workers: int, max_queue: int, name: str = "model") -> None:
        self.name = name
        self.workers = workers
        self.max_queue = max_queue
        self._slots = asyncio.Semaphore(workers)
        self._admitted = 0  # holding a place: body received; decoding, waiting for a slot or running
        self._running: dict[int, float] = {}  # id of a call in progress -> its start (monotonic seconds)
        self._next_id = 0
        self.draining = False  # set on shutdown: new requests are refused, admitted ones finish
        # A pool of our own: model calls never starve the event loop's default thread pool.
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{name}-worker")
        self._recent_seconds = 1.0  # exponential moving average of one call (per image when batched)
        self._pending: list[_Waiter[Any, Any]] = []  # run_batched() callers not yet taken into a batch
        self._arrival = asyncio.Event()  # set when a waiter joins `_pending`: wakes the dispatcher
        self._dispatcher: asyncio.Task[None] | None = None
        self._batches: set[asyncio.Task[None]] = set()  # model calls in progress
        QUEUE_DEPTH.labels(backend=name).set(0)  # export the series from the start, not from the first wait

    @property
    def capacity(self) -> int:
        return self.workers + self.max_queue

    @property
    def admitted(self) -> int:
        return self._admitted

    @property
    def waiting(self) -> int:
        return self._admitted - len(self._running)

    def service_seconds(self) -> float:
        """One call's expected duration: the recent average, or longer while a call in progress already is."""
        now = time.monotonic()
        oldest = max((now - started for started in self._running.values()), default=0.0)
        return max(self._recent_seconds, oldest)

    def retry_after_s(self) -> int:
        # Everyone admitted is served before a retry gets in: backlog x service time / parallel workers.
        return max(1, math.ceil(self.service_seconds() * max(1, self._admitted) / self.workers))

    def admit(self) -> None:
        """Take a place or raise 503 at once; every successful `admit()` is paired with one `release()`."""
        self.check()
        self._admitted += 1
        QUEUE_DEPTH.labels(backend=self.name).set(self.waiting)

    def check(self) -> None:
        """Raise the 503 that `admit()` would raise now, without taking a place."""
        if self.draining:
            raise PoseError("shutting_down", "the service is shutting down; retry on another instance")
        if self._admitted >= self.capacity:
            raise PoseError(
                "overloaded",
                f"{self._admitted} requests are already admitted for {self.workers} worker(s); retry later",
                self.retry_after_s(),
            )

    def release(self) -> None:
        self._admitted -= 1
        QUEUE_DEPTH.labels(backend=self.name).set(self.waiting)

    async def _acquire(self, client_gone: asyncio.Event | None) -> None:
        if client_gone is None:
            await self._slots.acquire()
            return
        if client_gone.is_set():
            raise ClientGone("queued")
        acquire = asyncio.ensure_future(self._slots.acquire())
        gone = asyncio.ensure_future(client_gone.wait())
        try:
            await asyncio.wait({acquire, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
            if not acquire.done():
                acquire.cancel()
            await asyncio.gather(acquire, gone, return_exceptions=True)
        got_slot = not acquire.cancelled() and acquire.exception() is None
        if client_gone.is_set():
            if got_slot:
                self._slots.release()
            raise ClientGone("queued")  # nobody is listening: the model never sees this request

    @asynccontextmanager
    async def slot(self, client_gone: asyncio.Event | None = None, admitted: bool = False) -> AsyncIterator[None]:
        """A model slot. `admitted`: the caller already holds a place (the middleware's); else one is taken here."""
        if not admitted:
            self.admit()
        try:
            await self._acquire(client_gone)
            call_id = self._next_id
            self._next_id += 1
            self._running[call_id] = time.monotonic()
            QUEUE_DEPTH.labels(backend=self.name).set(self.waiting)
            try:
                yield
            finally:
                del self._running[call_id]
                self._slots.release()
                QUEUE_DEPTH.labels(backend=self.name).set(self.waiting)
        finally:
            if not admitted:
                self.release()

    async def run(self, func: Callable[[], T]) -> T:
        """Run a blocking call on the gate's own threads (call inside `slot()`)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            return await loop.run_in_executor(self._executor, func)
        finally:
            self._recent_seconds = 0.8 * self._recent_seconds + 0.2 * (loop.time() - started)

    async def run_batched(
        self,
        item: X,
        call: Callable[[Sequence[X]], list[T]],
        policy: BatchPolicy,
        client_gone: asyncio.Event | None = None,
        admitted: bool = False,
    ) -> T:
        """`call([item, ...])[i]` for this item, in one model call with others that wait at the same time.

        When a worker is free, the oldest waiting request gets `policy.timeout_s` for others to join, up to
        `policy.max_size`; requests that queued while every worker was busy go together at once. `call` must
        answer each item exactly as it would alone. A request whose client leaves before its batch forms is
        never in one. A gate serves one backend: every caller passes the same `call`.
        """
        if not admitted:
            self.admit()
        try:
            if client_gone is not None and client_gone.is_set():
                raise ClientGone("queued")
            waiter: _Waiter[X, T] = _Waiter(item, asyncio.get_running_loop().create_future(), client_gone)
            self._pending.append(waiter)
            self._arrival.set()
            if self._dispatcher is None or self._dispatcher.done():
                self._dispatcher = asyncio.create_task(self._dispatch(call, policy))
            if client_gone is None:
                return await waiter.future
            gone = asyncio.ensure_future(client_gone.wait())
            try:
                either: set[asyncio.Future[Any]] = {waiter.future, gone}
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            finally:
                gone.cancel()
            if waiter in self._pending or waiter.future.cancelled():  # left before its batch formed
                if waiter in self._pending:
                    self._pending.remove(waiter)
                waiter.future.cancel()
                QUEUE_DEPTH.labels(backend=self.name).set(self.waiting)
                raise ClientGone("queued")  # it never reaches the model
            return await waiter.future  # already in a model call: that call finishes either way
        finally:
            if not admitted:
                self.release()

    def _take(self, max_size: int) -> list[_Waiter[Any, Any]]:
        for waiter in [w for w in self._pending if w.gone]:
            self._pending.remove(waiter)
            waiter.future.cancel()
        batch, self._pending = self._pending[:max_size], self._pending[max_size:]
        return batch

    async def _dispatch(self, call: Callable[[Sequence[Any]], list[Any]], policy: BatchPolicy) -> None:
        """Form batches while requests wait: one per free worker, each run on the gate's threads."""
        while self._pending:
            await self._slots.acquire()
            try:
                # Wait for company until the oldest waiter's timeout is up (at once when it already waited that
                # long for a worker) or the batch is full.
                while self._pending and 0 < len(self._pending) < policy.max_size:
                    left = self._pending[0].arrived + policy.timeout_s - time.monotonic()
                    if left <= 0:
                        break
                    self._arrival.clear()
                    try:
                        await asyncio.wait_for(self._arrival.wait(), left)
                    except TimeoutError:
                        break
                batch = self._take(policy.max_size)
            except BaseException:
                self._slots.release()
                raise
            if not batch:
                self._slots.release()
                continue
            task = asyncio.create_task(self._run_batch(call, batch))
            self._batches.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(self._batches.discard)

    async def _run_batch(self, call: Callable[[Sequence[Any]], list[Any]], batch: list[_Waiter[Any, Any]]) -> None:
        loop = asyncio.get_running_loop()
        ids = []
        started = time.monotonic()
        for _ in batch:
            ids.append(self._next_id)
            self._running[self._next_id] = started
            self._next_id += 1
        QUEUE_DEPTH.labels(backend=self.name).set(self.waiting)
        BATCH_SIZE.labels(backend=self.name).observe(len(batch))
        items = [w.item for w in batch]
        try:
            results: list[Any] | BaseException = await loop.run_in_executor(
                self._executor, _call_each_on_error, call, items
            )
        except BaseException as exc:  # the executor itself failed (shut down): every waiter learns it
            results = exc
        finally:
            for call_id in ids:
                del self._running[call_id]
            self._slots.release()
            QUEUE_DEPTH.labels(backend=self.name).set(self.waiting)
            seconds = (time.monotonic() - started) / len(batch)
            self._recent_seconds = 0.8 * self._recent_seconds + 0.2 * seconds
        for i, waiter in enumerate(batch):
            if waiter.future.done():
                continue
            outcome = results if isinstance(results, BaseException) else results[i]
            if isinstance(outcome, BaseException):
                waiter.future.set_exception(outcome)
            else:
                waiter.future.set_result(outcome)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _call_each_on_error(call: Callable[[Sequence[X]], list[T]], items: list[X]) -> list[T | BaseException]:
    """One call for the whole batch; when it fails, each item alone, so one bad image fails only its request."""
    try:
        results: list[T | BaseException] = list(call(items))
    except Exception as exc:
        if len(items) == 1:
            return [exc]
        results = []
        for item in items:
            try:
                results.append(call([item])[0])
            except Exception as one:
                results.append(one)
    return results


class DecodeLimiter:
    """Decoded images alive at once (`max_images`), decodes running at once (`workers`, on threads of its own) and
    the memory their full-size pixels take together (`budget_bytes`).

    A full-size decode is the one allocation an upload controls: its pixel count (up to POSE_MAX_IMAGE_PIXELS)
    times its format's bytes per pixel (`imaging.DECODE_BYTES_PER_PIXEL`: 5-17 B). Each decode reserves that from
    the budget once its header is read and waits until it fits, so the decodes running at once never take more
    than the budget, whatever the formats; the reduced image is then held until the request answers, at most
    `max_images` of them. `budget_bytes=None`: no byte budget (only the count of decodes bounds them).
    """

    def __init__(self, workers: int, max_images: int, budget_bytes: int | None = None) -> None:
        self.workers = workers
        self.max_images = max_images
        self.budget = DecodeBudget(budget_bytes) if budget_bytes is not None else None
        self._images = asyncio.Semaphore(max_images)
        self._decodes = asyncio.Semaphore(workers)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode-worker")

    @classmethod
    def from_settings(cls, settings: Settings) -> DecodeLimiter:
        return cls(settings.decode_workers, settings.max_decoded_images, decode_budget_bytes(settings))

    @asynccontextmanager
    async def image(self) -> AsyncIterator[None]:
        """Hold a decoded-image place for the rest of the request."""
        async with self._images:
            yield

    async def decode(self, func: Callable[[], T]) -> T:
        """`func()` on a decode thread; the decode inside it draws its full-size pixels from this budget."""
        async with self._decodes:
            run = self.budget.bind(func) if self.budget is not None else func
            return await asyncio.get_running_loop().run_in_executor(self._executor, run)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def decode_budget_bytes(settings: Settings) -> int:
    """POSE_DECODE_MEMORY_MB, or by default one decode of the costliest format at the pixel limit."""
    if settings.decode_memory_mb:
        return settings.decode_memory_mb * 1_000_000
    return math.ceil(settings.max_image_pixels * max(DECODE_BYTES_PER_PIXEL.values()))
