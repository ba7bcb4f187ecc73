"""Fuzzing: random bytes, mutated photos of every format and mutated JSON bodies never produce a 500.

The HTTP cases go through POST /pose; the photo mutations go straight through `decode_upload` (the decode
boundary), where thousands of cases fit in a minute. Longer run: docs/load.md."""

from __future__ import annotations

import base64
import collections
import json
import os
import random
import struct
import time

import numpy as np
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from service.api.errors import ERROR_CODES
from service.exceptions import PoseError
from service.imaging import WorkingSize, decode_upload
from tests.service.helpers import CLEAR_PHOTO
from tests.service.images import (
    avif_bytes,
    car_like_array,
    encode,
    jpeg_bytes,
    png_bytes,
    raw_exif,
    webp_bytes,
    with_ispe,
)

ALLOWED = {200, 400, 413, 415}
SEEDS = {
    "jpeg": jpeg_bytes(96, 64),
    "png": png_bytes(96, 64),
    "webp": webp_bytes(96, 64),
    "heic": encode(car_like_array(96, 64), "HEIF", quality=60),
    "avif": avif_bytes(96, 64),
}
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


# --- Byte-level mutations of real photos through the decode boundary, and of JSON bodies through HTTP ----------
# Bounded for `make test`; the longer run (docs/load.md) sets CARPOSE_FUZZ_CASES=50000 and CARPOSE_FUZZ_SECONDS.
DECODE_CASES = int(os.environ.get("CARPOSE_FUZZ_CASES", "2000"))
DECODE_SECONDS = float(os.environ.get("CARPOSE_FUZZ_SECONDS", "60"))
JSON_CASES = int(os.environ.get("CARPOSE_FUZZ_JSON_CASES", "60"))
REFUSALS = {code for code, error in ERROR_CODES.items() if 400 <= error.status < 500}


def photo_seeds() -> dict[str, bytes]:
    """One photo in every accepted format (the turntable photo when the data is there, else a generated car),
    at a size that keeps a case fast; the JPEG carries an EXIF block with a rotation, so the EXIF path is fuzzed."""
    if CLEAR_PHOTO.is_file():
        with Image.open(CLEAR_PHOTO) as photo:
            array = np.asarray(photo.convert("RGB").resize((320, 213)))
    else:
        array = car_like_array(320, 213)
    exif = raw_exif([(0x0112, "SHORT", 1, struct.pack("<H", 6)), (0x010F, "ASCII", 6, b"Canon\x00")])
    return {
        "jpeg": encode(array, "JPEG", quality=85, exif=exif),
        "png": encode(array, "PNG"),
        "png16": encode(array[..., 0].astype(np.uint16) * 257, "PNG"),
        "webp": encode(array, "WEBP", quality=80),
        "webp_lossless": encode(array, "WEBP", lossless=True),
        "heic": encode(array, "HEIF", quality=60),
        "avif": encode(array, "AVIF", quality=60),
        "avif_ispe": encode(array, "AVIF", quality=60),  # mutated in its claimed size (`ispe_mutant`)
    }


def mutate(rng: random.Random, data: bytes) -> bytes:
    """1-8 edits, most in the first KB (headers, EXIF, boxes), then maybe a cut or a duplicated run."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        where = rng.randrange(min(len(out), 1024)) if rng.random() < 0.7 else rng.randrange(len(out))
        choice = rng.random()
        if choice < 0.6:
            out[where] = rng.randrange(256)
        elif choice < 0.8:
            out[where : where + 4] = rng.choice([b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff"])
        else:
            out[where:where] = out[where : where + rng.randint(1, 64)]
    if rng.random() < 0.1:
        out = out[: rng.randrange(1, len(out))]
    return bytes(out)


def ispe_mutant(rng: random.Random, data: bytes) -> bytes:
    """The AVIF's `ispe` (claimed size) rewritten: bigger or smaller than its stream, zero, huge, or off by one."""
    width, height = struct.unpack(">II", data[data.find(b"ispe") + 8 : data.find(b"ispe") + 16])
    sizes = [0, 1, width - 1, width + 1, 2 * width, 6000, 65535, 2**31, 2**32 - 1, rng.randrange(2**32)]
    out = with_ispe(data, rng.choice(sizes), rng.choice([0, 1, height - 1, height + 1, 2 * height, *sizes]))
    return mutate(rng, out) if rng.random() < 0.3 else out


def test_mutated_photos_through_the_decode_boundary() -> None:
    """Every outcome is an image or a documented 4xx; anything else (a 500 at the edge) fails with the seed."""
    seeds = photo_seeds()
    names = sorted(seeds)
    rng = random.Random(18)
    started, outcomes = time.perf_counter(), collections.Counter[str]()
    case = 0
    for case in range(DECODE_CASES):
        if time.perf_counter() - started > DECODE_SECONDS:
            break
        name = names[case % len(names)]
        data = ispe_mutant(rng, seeds[name]) if name == "avif_ispe" else mutate(rng, seeds[name])
        try:
            decode_upload(data, 10_000_000, 40_000_000, WorkingSize(800, 1333))
            outcomes["decoded"] += 1
        except PoseError as exc:
            assert exc.code in REFUSALS, (name, case, exc.code, exc.message)
            outcomes[exc.code] += 1
        except Exception as exc:  # the point of the test: name the case that escaped
            raise AssertionError(f"case {case} ({name}): {type(exc).__name__}: {exc}") from exc
    print(f"fuzz: {sum(outcomes.values())} mutated photos in {time.perf_counter() - started:.1f} s: {dict(outcomes)}")


def json_bodies(rng: random.Random, image: bytes) -> bytes:
    """A valid `{"image": ...}` body, mutated byte by byte or structurally (nesting, long numbers, wrong types)."""
    valid = json.dumps({"image": base64.b64encode(image).decode()}).encode()
    kind = rng.randrange(5)
    if kind == 0:
        return mutate(rng, valid)
    if kind == 1:
        depth = rng.choice([10, 1000, 100_000])
        return rng.choice([b"[", b'{"a":', b'{"image":[']) * depth
    if kind == 2:
        return b'{"image": ' + b"9" * rng.choice([65, 4301, 100_000]) + b"}"
    if kind == 3:
        value = rng.choice([None, 1, 1.5e308, [], {}, True, "", "data:image/png;base64,", "%%%"])
        return json.dumps({"image": value, "extra": "x" * rng.randrange(100)}).encode()
    return valid[: rng.randrange(len(valid))] + bytes([rng.randrange(256)])


def test_mutated_json_bodies_through_http(client: TestClient) -> None:
    rng = random.Random(24)
    image = jpeg_bytes(96, 64)
    for case in range(JSON_CASES):
        body = json_bodies(rng, image)
        response = client.post("/pose", content=body, headers={"content-type": "application/json"})
        assert response.status_code in ALLOWED | {422}, (case, response.status_code, response.text, body[:80])
        if response.status_code != 200:
            assert response.json()["error"]["code"] in REFUSALS, (case, response.text)
