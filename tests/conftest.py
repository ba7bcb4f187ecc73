"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.paths import DEFAULT_DATASET_DIR

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def car_parts_dir() -> Path:
    """The Car Parts dataset directory ($CARPOSE_DATASET_DIR, default ../shared/datasets/car-parts); skips if absent."""
    path = DEFAULT_DATASET_DIR
    if not (path / "testset" / "annotations.json").is_file():
        pytest.skip(f"Car Parts dataset not found at {path} (set CARPOSE_DATASET_DIR)")
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real Detectron2 model directory with random weights (see tests/support/tiny_model.py)."""
    from tests.support.tiny_model import build_tiny_model_dir

    return build_tiny_model_dir(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    """The embedded default model; skips where it has not been trained/committed yet."""
    from service.settings import DEFAULT_MODEL_DIR

    if not (DEFAULT_MODEL_DIR / "model.json").is_file():
        pytest.skip(f"default model not found at {DEFAULT_MODEL_DIR}")
    return DEFAULT_MODEL_DIR
