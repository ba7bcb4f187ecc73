"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.paths import DEFAULT_DATASET_DIR


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA device; skipped where torch sees none (see docs/gpu.md)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_tests = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_tests:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device: run on a GPU host (docs/gpu.md)")
    for item in gpu_tests:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def car_parts_dir() -> Path:
    """The Car Parts dataset ($CARPOSE_DATA_ROOT/car-parts, default ../shared/datasets); skips if absent."""
    path = DEFAULT_DATASET_DIR
    if not (path / "testset" / "annotations.json").is_file():
        pytest.skip(f"Car Parts dataset not found at {path} (`carpose data`, or set CARPOSE_DATA_ROOT)")
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real Detectron2 model directory with random weights (see devtools/tiny_model.py)."""
    from devtools.tiny_model import build_tiny_model_dir

    return build_tiny_model_dir(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    """The embedded default model; skips where it has not been trained/committed yet."""
    from service.settings import DEFAULT_MODEL_DIR

    if not (DEFAULT_MODEL_DIR / "model.json").is_file():
        pytest.skip(f"default model not found at {DEFAULT_MODEL_DIR}")
    return DEFAULT_MODEL_DIR


@pytest.fixture(scope="session")
def turntable_dir() -> Path:
    """The Carvana turntable photos ($CARPOSE_DATA_ROOT/carvana-turntable); skips if absent."""
    from models.paths import DEFAULT_TURNTABLE_DIR

    if not any(DEFAULT_TURNTABLE_DIR.glob("*.jpg")):
        pytest.skip(f"turntable photos not found at {DEFAULT_TURNTABLE_DIR} (`carpose data`)")
    return DEFAULT_TURNTABLE_DIR


@pytest.fixture(scope="session")
def default_backend(default_model_dir: Path) -> object:
    """The embedded default model through the service's Detectron2 backend, loaded once per session (CPU)."""
    from service.backends.detectron import DetectronBackend

    return DetectronBackend(default_model_dir, device="cpu")
