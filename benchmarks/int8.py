"""Post-training INT8 of the OpenVINO engine's dense stage, measured against its float32 (issue 23, item 2).

    pip install nncf   # not a carpose dependency: this measurement is its only user
    python -m benchmarks.int8 [--calibration 300] [--images 100] [--scope all|trunk] [--dataset DIR]

Builds the `openvino` engine's dense stage (trunk + FPN + RPN head, `service/modeling/compiled_rcnn.py`), quantises
it with NNCF's post-training quantisation calibrated on Car Parts *training* photos (preprocessed as the service
does: decode, working size, normalisation, padding), `--scope trunk` leaving the FPN and RPN head in float32; then
answers every test photo with two `openvino` backends, one of them with the INT8 dense stage, photo by photo. Prints
the issue's bounds (the same eight-way view, the main car's box within 2 px) and each dense stage's time.

Not a test: the timings depend on the machine and its load; the figures are in docs/engines.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.engines import BOX_TOLERANCE_PX, box_difference
from benchmarks.throughput import machine
from models.paths import DEFAULT_DATASET_DIR
from service.backends.detectron import DetectronBackend
from service.modeling.compiled_rcnn import DenseStage
from service.modeling.networks import OpenVinoNetwork
from service.postprocess.geometry import angle_diff_deg
from service.runtime import Runtime
from service.settings import DEFAULT_MODEL_DIR

# Node-name patterns of the converted dense stage that `--scope trunk` keeps in float32.
NOT_TRUNK = [r".*rpn_head.*", r".*backbone\.fpn.*", r"^__module\.backbone/.*"]


class TimedNetwork:
    """A compiled network that records each call's seconds."""

    def __init__(self, network: Any) -> None:
        self.network = network
        self.seconds: list[float] = []

    def __call__(self, inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        started = time.perf_counter()
        outputs = self.network(inputs)
        self.seconds.append(time.perf_counter() - started)
        return outputs


def dense_input(backend: DetectronBackend, runtime: Runtime, path: Path) -> np.ndarray:
    """The dense stage's input for a photo, as the service makes it."""
    image = runtime.decode(path.read_bytes())
    with torch.inference_mode():
        images = backend.model.preprocess_image([backend.model_input(image.rgb)])
    return images.tensor.numpy().copy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calibration", type=int, default=300, help="training photos to calibrate on")
    parser.add_argument("--images", type=int, default=100, help="test photos to compare on")
    parser.add_argument("--scope", choices=["all", "trunk"], default="all", help="what is quantised")
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET_DIR)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    args = parser.parse_args(argv)
    try:
        import nncf
        import openvino as ov
    except ImportError as exc:
        parser.error(f"{exc.name} is not installed (pip install nncf)")

    reference = DetectronBackend(args.model_dir, "cpu", engine="openvino")
    quantised = DetectronBackend(args.model_dir, "cpu", engine="openvino")
    runtimes = [Runtime(reference), Runtime(quantised)]
    training = sorted((args.dataset / "trainingset" / "JPEGImages").glob("*.jpg"))
    chosen = np.random.default_rng(0).permutation(len(training))[: args.calibration]
    calibration = [dense_input(reference, runtimes[0], training[i]) for i in chosen]

    # The openvino backends' own networks have freed their PyTorch weights (network_builder): convert from the
    # same prepared model loaded for torch.
    module = DenseStage(DetectronBackend(args.model_dir, "cpu", engine="torch").model)
    with torch.inference_mode():
        converted = ov.convert_model(
            module, example_input=torch.from_numpy(calibration[0]), input=[ov.PartialShape([-1, 3, -1, -1])]
        )
    scope = nncf.IgnoredScope(patterns=NOT_TRUNK, validate=False) if args.scope == "trunk" else None
    started = time.perf_counter()
    int8 = nncf.quantize(
        converted,
        nncf.Dataset(calibration),
        subset_size=len(calibration),
        fast_bias_correction=True,
        ignored_scope=scope,
    )
    quantise_s = time.perf_counter() - started
    if reference.compiled is None or quantised.compiled is None:
        parser.error("the openvino engine did not compile the model")
    timed = [TimedNetwork(reference.compiled.dense), TimedNetwork(OpenVinoNetwork(int8))]
    reference.compiled.dense, quantised.compiled.dense = timed

    photos = sorted((args.dataset / "testset" / "JPEGImages").glob("*.jpg"))[: args.images]
    same_view, box_gaps, azimuth_gaps = 0, [], []
    for photo in photos:
        data = photo.read_bytes()
        fp32, q8 = (runtime.predict(data).pose for runtime in runtimes)
        same_view += fp32.view == q8.view
        if fp32.car is not None and q8.car is not None:
            box_gaps.append(box_difference(fp32.car.box, q8.car.box))
        if fp32.azimuth_deg is not None and q8.azimuth_deg is not None:
            azimuth_gaps.append(angle_diff_deg(fp32.azimuth_deg, q8.azimuth_deg))

    gaps = np.array(box_gaps)
    print(f"{len(photos)} test photos, {len(calibration)} training photos to calibrate; {machine()}")
    print(f"INT8 scope: {args.scope}; quantised in {quantise_s:.0f} s")
    print(f"same eight-way view: {same_view} of {len(photos)}")
    print(
        f"main car box, largest corner difference: median {np.median(gaps):.2f} px, max {gaps.max():.1f} px, "
        f"beyond {BOX_TOLERANCE_PX:g} px on {(gaps > BOX_TOLERANCE_PX).sum()} of {len(gaps)}"
    )
    print(f"azimuth_deg difference: median {np.median(azimuth_gaps):.2f}, max {max(azimuth_gaps):.1f} deg")
    fp32_ms, int8_ms = (1000.0 * float(np.median(t.seconds)) for t in timed)
    print(f"dense stage p50: float32 {fp32_ms:.1f} ms, INT8 {int8_ms:.1f} ms ({int8_ms / fp32_ms:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
