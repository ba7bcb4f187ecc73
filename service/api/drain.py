"""Graceful shutdown: on SIGTERM stop admitting (503 `shutting_down`), let admitted requests finish, then exit.

uvicorn's own SIGTERM handling closes the listening socket at once and drops idle keep-alive connections, so
a client (or a load balancer that has not yet noticed) gets connection errors instead of an answer. Here the
signal first turns every gate to draining: new pose requests are answered 503 `shutting_down` (retry on
another instance) while the admitted ones run to the end; only then, or after `timeout_s`, is uvicorn's
handler called and the server stops as usual.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Sequence
from types import FrameType

from ..gate import InferenceGate

log = logging.getLogger("service.api.drain")


def install_drain_on_sigterm(gates: Sequence[InferenceGate], timeout_s: float) -> bool:
    """Chain our SIGTERM handler in front of the server's; False where signals cannot be handled (not main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return False  # e.g. the test client runs the lifespan on a worker thread: nothing to chain
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):
        return False  # no server handler to hand over to: keep the default (exit at once)
    loop = asyncio.get_running_loop()
    chained = previous

    async def drain_then_stop(signum: int, frame: FrameType | None) -> None:
        deadline = loop.time() + timeout_s
        while any(gate.admitted for gate in gates) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        left = sum(gate.admitted for gate in gates)
        log.info("drained (%d request(s) still admitted); stopping", left)
        chained(signum, frame)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if any(gate.draining for gate in gates):
            chained(signum, frame)  # a second SIGTERM: stop now
            return
        for gate in gates:
            gate.draining = True
        log.info("SIGTERM: refusing new requests, draining %d admitted", sum(g.admitted for g in gates))
        loop.call_soon_threadsafe(lambda: loop.create_task(drain_then_stop(signum, frame)))

    signal.signal(signal.SIGTERM, on_sigterm)
    return True
