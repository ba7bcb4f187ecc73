"""Fuzzing POST /pose: random bytes and mutated images never produce a 500."""

from __future__ import annotations

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.service.images import jpeg_bytes, png_bytes, webp_bytes

ALLOWED = {200, 400, 413, 415}
SEEDS = {"jpeg": jpeg_bytes(96, 64), "png": png_bytes(96, 64), "webp": webp_bytes(96, 64)}
MAGIC = [b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x00\x00\x00WEBP"]
FUZZ = settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def check(client: TestClient, data: bytes) -> None:
    response = client.post("/pose", files={"image": ("fuzz.jpg", data, "image/jpeg")})
    assert response.status_code in ALLOWED, (response.status_code, response.text, data[:64])
    body = response.json()
    if response.status_code != 200:
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body


@FUZZ
@given(magic=st.sampled_from(MAGIC), tail=st.binary(max_size=2048))
def test_random_bytes(client: TestClient, magic: bytes, tail: bytes) -> None:
    check(client, magic + tail)


@FUZZ
@given(
    seed=st.sampled_from(sorted(SEEDS)),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=12),
    cut=st.one_of(st.none(), st.floats(0, 1)),
)
def test_mutated_images(client: TestClient, seed: str, edits: list[tuple[float, int]], cut: float | None) -> None:
    data = bytearray(SEEDS[seed])
    for where, value in edits:
        data[int(where * len(data))] = value
    if cut is not None:
        data = data[: int(cut * len(data))]
    check(client, bytes(data))
