"""GPU inference settings (POSE_FP16, POSE_CUDNN_BENCHMARK, POSE_PIN_MEMORY) and the GPU warm-up.

On a CPU the settings must be no-ops; the tests marked `gpu` run where torch sees a CUDA device and are skipped
elsewhere (tests/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from service.backends.detectron import CudaOptions, DetectronBackend
from service.model_state import ModelState
from service.postprocess import PoseConfig, estimate_pose
from service.settings import Settings
from tests.service.images import car_like_array
from tests.service.test_batching import _assert_same_detections, _assert_same_pose

ALL_ON = CudaOptions(fp16=True, cudnn_benchmark=True, pin_memory=True)


def test_gpu_options_are_no_ops_on_a_cpu(tiny_model_dir: Path) -> None:
    plain = DetectronBackend(tiny_model_dir, device="cpu", score_threshold=0.0)
    gpu_options = DetectronBackend(tiny_model_dir, device="cpu", score_threshold=0.0, cuda=ALL_ON)
    assert (gpu_options.fp16, gpu_options.pin_memory) == (False, False)
    image = car_like_array(320, 240, 3)
    assert not gpu_options.model_input(image)["image"].is_pinned()
    one, other = plain.detect_array(image), gpu_options.detect_array(image)
    assert [(d.label, d.box, d.score) for d in one] == [(d.label, d.box, d.score) for d in other]


def test_the_service_loads_on_a_cpu_with_the_gpu_settings_on(tiny_model_dir: Path) -> None:
    state = ModelState(Settings(model_dir=tiny_model_dir, device="cpu", fp16=True, pin_memory=True))
    state.start()
    assert state.wait(120), state.error
    assert state.backend is not None and state.backend.device == "cpu"


def _turntable(count: int) -> list[np.ndarray]:
    from models.paths import DEFAULT_TURNTABLE_DIR

    files = sorted(DEFAULT_TURNTABLE_DIR.glob("*.jpg"))[::21][:count]
    if len(files) < count:
        pytest.skip("turntable photos not found")
    return [np.asarray(Image.open(f).convert("RGB").reduce(2)) for f in files]


@pytest.mark.gpu
def test_the_model_loads_and_warms_up_on_the_gpu_before_it_is_ready(default_model_dir: Path) -> None:
    state = ModelState(Settings(model_dir=default_model_dir, device="cuda"))
    state.start()
    assert state.wait(300), state.error
    backend = state.backend
    assert backend is not None and backend.device == "cuda"
    assert torch.backends.cudnn.benchmark and backend.pin_memory
    assert backend.model_input(car_like_array())["image"].is_cuda


@pytest.mark.gpu
def test_gpu_answers_match_the_cpu_and_batching_changes_none(default_model_dir: Path) -> None:
    images = _turntable(3)
    cpu = DetectronBackend(default_model_dir, device="cpu")
    gpu = DetectronBackend(default_model_dir, device="cuda")
    alone = [gpu.detect_array(image) for image in images]
    batched = gpu.detect_arrays(images)
    for image, one, many, reference in zip(images, alone, batched, cpu.detect_arrays(images), strict=True):
        _assert_same_detections(one, many)
        _assert_same_pose(one, many, (image.shape[1], image.shape[0]))
        size = (image.shape[1], image.shape[0])
        assert estimate_pose(one, size, PoseConfig()).view == estimate_pose(reference, size, PoseConfig()).view


@pytest.mark.gpu
def test_fp16_autocast_keeps_the_pose(default_model_dir: Path) -> None:
    images = _turntable(3)
    fp32 = DetectronBackend(default_model_dir, device="cuda")
    fp16 = DetectronBackend(default_model_dir, device="cuda", cuda=CudaOptions(fp16=True))
    assert fp16.fp16
    for image, full, half in zip(images, fp32.detect_arrays(images), fp16.detect_arrays(images), strict=True):
        size = (image.shape[1], image.shape[0])
        a, b = estimate_pose(full, size, PoseConfig()), estimate_pose(half, size, PoseConfig())
        assert a.view == b.view
        if a.azimuth_deg is not None and b.azimuth_deg is not None:
            assert abs((a.azimuth_deg - b.azimuth_deg + 180) % 360 - 180) < 5.0
