"""Fixtures for the service tests: apps built with `create_app(Settings(...))` around the tiny real model.

App fixtures are module-scoped, so the tiny Detectron2 model loads (and warms up) once per test module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import ImageFile

from tests.service.helpers import default_model_client, running_client, tiny_settings


@pytest.fixture(scope="module")
def client(tiny_model_dir: Path) -> Iterator[TestClient]:
    """A ready app with the tiny model and default limits."""
    with running_client(tiny_settings(tiny_model_dir)) as c:
        yield c


@pytest.fixture(scope="module")
def make_client(tiny_model_dir: Path) -> Callable[..., Any]:
    """`with make_client(max_queue=0) as c:` -> a ready app with those Settings overrides."""

    def factory(wait_ready: bool = True, **overrides: Any) -> Any:
        return running_client(tiny_settings(tiny_model_dir, **overrides), wait_ready=wait_ready)

    return factory


@pytest.fixture(scope="module")
def photo_client(default_model_dir: Path) -> Iterator[TestClient]:
    """A ready app with the embedded default model, for posting CLEAR_PHOTO (skips without it or the model)."""
    with default_model_client(default_model_dir) as c:
        yield c


@pytest.fixture
def pixel_loads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Records every decode of pixel data (ImageFile.load) in this process while the test runs."""
    calls: list[tuple[int, int]] = []
    real_load = ImageFile.ImageFile.load

    def recording_load(self: ImageFile.ImageFile):
        calls.append(self.size)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", recording_load)
    return calls
