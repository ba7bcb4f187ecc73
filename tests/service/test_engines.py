"""Inference engines (POSE_ENGINE): the same answers from each, the choice per device, and where it shows.

Real inference throughout: the tiny random-weights model (every detection compared at score threshold 0) and the
default model on Car Parts test photos (the served answers compared).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from service.backends.detectron import DetectronBackend
from service.engines import ENGINES, resolve_engine
from service.modeling.compiled_rcnn import CompiledRCNN
from service.modeling.networks import network_builder
from service.runtime import Runtime
from service.settings import Settings

BOX_TOLERANCE_PX = 2.0  # issue 23's bound between engines (docs/engines.md)
CLEAR_SCORE = 0.6  # the default score threshold 0.5 plus the margin of benchmarks/engines.py
TEST_PHOTOS = ("car10.jpg", "te5.jpg", "car72.jpg", "te18.jpg")  # front, front_right, back, back_left with 3 cars


def test_auto_is_openvino_on_cpu_and_torch_on_cuda() -> None:
    assert resolve_engine("auto", "cpu").name == "openvino"
    assert resolve_engine("auto", "cuda").name == "torch"
    assert resolve_engine("auto", "cuda:1").name == "torch"
    assert resolve_engine("openvino", "cpu").compiled
    assert not resolve_engine("torch", "cpu").compiled


def test_cpu_only_engines_refuse_cuda_and_unknown_names_are_refused() -> None:
    with pytest.raises(ValueError, match="CPU only"):
        resolve_engine("openvino", "cuda")
    with pytest.raises(ValueError, match="unknown engine"):
        resolve_engine("tensorrt", "cpu")
    with pytest.raises(ValidationError):
        Settings(engine="tensorrt")
    description = Settings.model_fields["engine"].description or ""
    assert all(name in description for name in ENGINES)  # the settings table names every engine


def _box_gap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return float(np.abs(np.subtract(a, b)).max())


def _model_inputs(backend: DetectronBackend, images: list[np.ndarray]) -> list[dict[str, object]]:
    return [backend.model_input(image) for image in images]


def _random_photos(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, size=(240 + 32 * i, 320, 3), dtype=np.uint8) for i in range(count)]


def test_compiled_rcnn_with_torch_networks_is_the_model_itself(tiny_model_dir: Path) -> None:
    """The split inference (dense stage, heads as networks) is Detectron2's own: exact with the torch networks."""
    backend = DetectronBackend(tiny_model_dir, device="cpu", score_threshold=0.0, engine="torch")
    inputs = _model_inputs(backend, _random_photos(2))
    with torch.inference_mode():
        expected = [out["instances"] for out in backend.model(inputs)]
        split = CompiledRCNN(backend.model, network_builder(ENGINES["torch"]))
        actual = [out["instances"] for out in split(inputs)]
    for want, got in zip(expected, actual, strict=True):
        assert len(want) > 0
        assert torch.equal(want.pred_classes, got.pred_classes)
        assert torch.allclose(want.pred_boxes.tensor, got.pred_boxes.tensor)
        assert torch.allclose(want.scores, got.scores)
        assert torch.equal(want.pred_masks, got.pred_masks)


def test_openvino_gives_the_tiny_models_detections(tiny_model_dir: Path, tmp_path: Path) -> None:
    reference = DetectronBackend(tiny_model_dir, device="cpu", score_threshold=0.0, engine="torch")
    converted = DetectronBackend(tiny_model_dir, "cpu", 0.0, engine="openvino", engine_cache_dir=tmp_path)
    cached_networks = sorted(tmp_path.glob("*.xml"))
    # The dense stage, the box head, the mask head (and a view classifier: the tiny model has none).
    assert len(cached_networks) == 3 + (converted.view_classifier is not None)
    from_cache = DetectronBackend(tiny_model_dir, "cpu", 0.0, engine="openvino", engine_cache_dir=tmp_path)
    assert sorted(tmp_path.glob("*.xml")) == cached_networks  # read back, not converted again under new names
    # Their networks hold their own weights: PyTorch's copies of what they replaced are freed.
    for backend in (converted, from_cache):
        assert {parameter.device.type for parameter in backend.model.backbone.parameters()} == {"meta"}
    for image in _random_photos(2, seed=1):
        want = reference.detect_array(image)
        assert len(want) > 0
        for got in (converted.detect_array(image), from_cache.detect_array(image)):
            assert len(got) == len(want)
            for a, b in zip(want, got, strict=True):
                assert a.label == b.label
                assert _box_gap(a.box, b.box) <= BOX_TOLERANCE_PX
                assert abs(a.score - b.score) < 1e-3


def test_a_changed_model_is_a_new_cache_entry(tiny_model_dir: Path) -> None:
    from service.modeling.networks import network_digest

    backend = DetectronBackend(tiny_model_dir, device="cpu", engine="torch")
    head = backend.model.roi_heads.box_head
    example = torch.zeros(2, 128, 7, 7)
    before = network_digest(head, example, (None, 128, 7, 7), "1")
    assert network_digest(head, example, (None, 128, 7, 7), "2") != before  # another converter
    assert network_digest(head, example, (2, 128, 7, 7), "1") != before  # other free dimensions
    with torch.no_grad():
        next(head.parameters()).add_(1.0)
    assert network_digest(head, example, (None, 128, 7, 7), "1") != before  # other weights


def _resident_kb(path: Path) -> int:
    """This process's resident kB of its mappings of `path` (/proc/self/smaps)."""
    resident, inside = 0, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if ":" not in fields[0]:  # a mapping's header: range perms offset device inode [path]
                inside = len(fields) == 6 and fields[5] == str(path)
            elif inside and fields[0] == "Rss:":
                resident += int(fields[1])
    return resident


@pytest.mark.skipif(not Path("/proc/self/smaps").is_file(), reason="reads /proc/self/smaps (Linux)")
@pytest.mark.parametrize("keep_memory", [True, False])
def test_a_cached_network_hands_its_weight_pages_back_after_the_first_call(tmp_path: Path, keep_memory: bool) -> None:
    """OpenVINO keeps the weights it read beside the repacked ones: the file's pages leave the resident memory
    after the first call, and the network answers the same (a page read again comes from the file). Freeing the
    working memory after each call (keep_memory=False) keeps the outputs and the answers."""
    from service.modeling.networks import OpenVinoNetwork

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(64, 64, 3))
    example = torch.rand(1, 3, 32, 40)
    OpenVinoNetwork.from_module(module, example, (None, 3, None, None), threads=1, cache_dir=tmp_path)  # converts
    (weights,) = (path.resolve() for path in tmp_path.glob("*.bin"))
    network = OpenVinoNetwork.from_module(module, example, (None, 3, None, None), 1, tmp_path, keep_memory)
    with torch.inference_mode():
        want = module(example)
    assert _resident_kb(weights) > 0  # read when compiled
    first = network(example)[0].clone()
    assert _resident_kb(weights) == 0
    torch.testing.assert_close(first, want, rtol=1e-4, atol=1e-4)
    bigger = torch.rand(1, 3, 48, 40)  # a new input shape: its kernels may read weights again, from the file
    with torch.inference_mode():
        torch.testing.assert_close(network(bigger)[0], module(bigger), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(network(example)[0], first, rtol=0, atol=0)


@pytest.fixture(scope="module")
def torch_runtime(default_model_dir: Path) -> Runtime:
    return Runtime(DetectronBackend(default_model_dir, device="cpu", engine="torch"))


@pytest.mark.parametrize("engine", [name for name, engine in ENGINES.items() if engine.compiled])
def test_default_model_answers_the_same_on_each_engine(
    engine: str, default_model_dir: Path, car_parts_dir: Path, torch_runtime: Runtime
) -> None:
    """The served answer of real photos: the same view, car box within 2 px, the same parts (docs/engines.md has
    the whole test split)."""
    other = Runtime(DetectronBackend(default_model_dir, device="cpu", engine=engine))
    for name in TEST_PHOTOS:
        data = (car_parts_dir / "testset" / "JPEGImages" / name).read_bytes()
        want, got = torch_runtime.predict(data), other.predict(data)
        assert want.pose.car is not None and got.pose.car is not None
        assert got.pose.view == want.pose.view, name
        assert _box_gap(want.pose.car.box, got.pose.car.box) <= BOX_TOLERANCE_PX, name
        assert want.pose.azimuth_deg is not None and got.pose.azimuth_deg is not None
        assert abs(want.pose.azimuth_deg - got.pose.azimuth_deg) < 1.0, name
        want_roll, got_roll = want.pose.car.roll_deg, got.pose.car.roll_deg
        assert (want_roll is None) == (got_roll is None), name
        assert want_roll is None or got_roll is None or abs(want_roll - got_roll) <= 0.2, name
        # Every clear part (a score away from the threshold, where float rounding cannot move it across) is found
        # by the other engine too, in the same place.
        for mine, theirs in ((want.detections, got.detections), (got.detections, want.detections)):
            for detection in (d for d in mine if d.score >= CLEAR_SCORE):
                partner = [
                    d
                    for d in theirs
                    if d.label == detection.label and _box_gap(d.box, detection.box) <= BOX_TOLERANCE_PX
                ]
                assert partner, f"{name}: {detection.label} {detection.score:.2f} has no partner"


def test_serving_process_never_loads_triton() -> None:
    # torchvision's roi_align imports torch._dynamo, which loads Triton (~75 MB resident) where it is installed;
    # importing `service` first marks it absent (service/__init__.py). A fresh process: this one may have it.
    code = (
        "import sys, torch, torchvision.ops\n"
        "import service.api.main\n"
        "assert sys.modules.get('triton') is None, sys.modules.get('triton')\n"
        "boxes = [torch.tensor([[0.0, 0.0, 8.0, 8.0]])]\n"
        "print(tuple(torchvision.ops.roi_align(torch.rand(1, 4, 16, 16), boxes, 2).shape))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", "import service\n" + code], capture_output=True, text=True, timeout=300, check=False
    )
    assert found.returncode == 0, found.stderr[-2000:]
    assert found.stdout.strip().endswith("(1, 4, 2, 2)")
