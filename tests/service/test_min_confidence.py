"""`min_confidence` through HTTP: the query parameter, its default from POSE_MIN_CONFIDENCE, and bad values.

Real inference with the embedded default model on a turntable photo (skips without either).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.service.helpers import CLEAR_PHOTO, assert_error, default_model_client

SETTING_FLOOR = 0.999  # above any confidence the rule gives (a product of scores below 1)


@pytest.fixture(scope="module")
def floored_client(default_model_dir: Path) -> Iterator[TestClient]:
    with default_model_client(default_model_dir, min_confidence=SETTING_FLOOR) as client:
        yield client


def post(client: TestClient, **params: str):
    return client.post(
        "/pose", files={"image": (CLEAR_PHOTO.name, CLEAR_PHOTO.read_bytes(), "image/jpeg")}, params=params
    )


def test_setting_is_the_default_floor_and_the_query_overrides_it(floored_client: TestClient) -> None:
    open_body = post(floored_client, min_confidence="0").json()
    assert open_body["view"] is not None and open_body["reason"] is None, open_body
    assert open_body["confidence"] < SETTING_FLOOR

    default_body = post(floored_client).json()  # no query: POSE_MIN_CONFIDENCE applies
    assert (default_body["view"], default_body["coarse_view"], default_body["reason"]) == (None, None, "low_confidence")
    assert default_body["azimuth_deg"] == open_body["azimuth_deg"]  # the best guess is kept
    assert default_body["confidence"] == open_body["confidence"]

    just_below = post(floored_client, min_confidence=str(open_body["confidence"])).json()
    assert just_below["view"] == open_body["view"]  # confidence equal to the floor passes


@pytest.mark.parametrize("value", ["-0.1", "1.5", "high", "nan"])
def test_out_of_range_floor_is_a_422_error(floored_client: TestClient, value: str) -> None:
    assert_error(post(floored_client, min_confidence=value), 422, "validation_error")
