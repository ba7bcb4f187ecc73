"""The decode budget: full-size decodes reserve pixels x their format's bytes per pixel, and wait for room.

The bytes per pixel themselves are measured by `python -m benchmarks.decode_memory` (docs/operations.md), not here."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest
from PIL import Image

from service.decode_budget import DecodeBudget
from service.gate import DecodeLimiter, decode_budget_bytes
from service.imaging import DECODE_BYTES_PER_PIXEL, WorkingSize, decode_upload, reduce_to_rgb
from service.settings import Settings
from tests.service.images import car_like_array, encode


def test_a_reservation_waits_until_the_bytes_are_free() -> None:
    budget = DecodeBudget(100)
    entered = threading.Event()

    def second() -> None:
        with budget.reserve(60):
            entered.set()

    with budget.reserve(60):
        thread = threading.Thread(target=second)
        thread.start()
        assert not entered.wait(0.2), "two reservations of 60 bytes ran at once in a budget of 100"
        assert budget.used_bytes == 60
    assert entered.wait(5)
    thread.join(5)
    assert budget.used_bytes == 0


def test_reservations_that_fit_together_run_together_and_one_over_the_budget_runs_alone() -> None:
    budget = DecodeBudget(100)
    with budget.reserve(40), budget.reserve(60):
        assert budget.used_bytes == 100
    with budget.reserve(1000):  # clamped to the whole budget: it runs, alone
        assert budget.used_bytes == 100
    assert budget.used_bytes == 0


def test_a_decode_under_a_limiter_reserves_its_pixels_at_its_formats_cost() -> None:
    """The decode blocks while the budget is held elsewhere, and reserved pixels x bytes per pixel while running."""
    data = encode(car_like_array(640, 480), "WEBP", lossless=True)
    limiter = DecodeLimiter(workers=2, max_images=2, budget_bytes=10**9)
    assert limiter.budget is not None
    seen: list[int] = []
    real_load = Image.Image.load

    def decode() -> np.ndarray:
        return decode_upload(data, 10**7, 10**8, WorkingSize(200, 300)).rgb

    async def main() -> np.ndarray:
        assert limiter.budget is not None
        with limiter.budget.reserve(10**9):  # the whole budget: the decode must wait
            task = asyncio.ensure_future(limiter.decode(decode))
            await asyncio.sleep(0.3)
            assert not task.done()
        return await task

    def spying_load(image: Image.Image) -> object:
        assert limiter.budget is not None
        seen.append(limiter.budget.used_bytes)
        return real_load(image)

    Image.Image.load = spying_load  # type: ignore[method-assign]
    try:
        started = time.perf_counter()
        rgb = asyncio.run(main())
    finally:
        Image.Image.load = real_load  # type: ignore[method-assign]
        limiter.shutdown()
    assert rgb.shape == (200, 267, 3) and time.perf_counter() - started >= 0.3
    assert max(seen) == round(640 * 480 * DECODE_BYTES_PER_PIXEL["WEBP"])
    assert limiter.budget.used_bytes == 0


def test_without_a_limiter_a_decode_is_unbudgeted() -> None:
    assert decode_upload(encode(car_like_array(64, 48), "PNG"), 10**7, 10**8).rgb.shape == (48, 64, 3)


def test_the_default_budget_is_one_decode_of_the_costliest_format_at_the_pixel_limit() -> None:
    settings = Settings(max_image_pixels=40_000_000)
    assert decode_budget_bytes(settings) == 40_000_000 * max(DECODE_BYTES_PER_PIXEL.values())
    assert decode_budget_bytes(Settings(decode_memory_mb=300)) == 300_000_000
    limiter = DecodeLimiter.from_settings(Settings(decode_workers=3, max_decoded_images=5, decode_memory_mb=1))
    try:
        assert (limiter.workers, limiter.max_images) == (3, 5)
        assert limiter.budget is not None and limiter.budget.total_bytes == 1_000_000
    finally:
        limiter.shutdown()


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "LA", "L", "P", "I;16"])
def test_reduce_to_rgb_is_convert_then_resize(mode: str) -> None:
    image = Image.fromarray(car_like_array(300, 200)).convert("RGBA" if mode == "I;16" else mode)
    if mode == "I;16":
        image = image.convert("L").convert("I;16")
    expected = image.convert("RGB").resize((150, 100), Image.Resampling.BILINEAR)
    reduced = reduce_to_rgb(image, (150, 100))
    assert reduced.mode == "RGB"
    assert np.array_equal(np.asarray(reduced), np.asarray(expected))
