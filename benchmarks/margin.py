"""What the grey margin before detection (POSE_FRAME_MARGIN, service.margin) costs per photo.

    python -m benchmarks.margin [--images N] [--dir DIR] [--margin 0.2] [--rounds 2]

One process, one loaded model, three runtimes that differ only in `frame_margin` (off, mode tight, mode always):
`Runtime.predict` on each photo's bytes (decode, detection, pose, quality: what POST /pose runs), alternating photo
by photo so that a machine whose load drifts slows all alike. Photos: the first N Car Parts test photos, or those
of --dir (the share of tight photos decides what mode tight costs: it is printed).
Not a test: timings depend on the machine; read them next to its load (printed).
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from models.paths import DEFAULT_DATASET_DIR
from service.backends.detectron import DetectronBackend
from service.margin import FrameMargin, is_tight
from service.postprocess import PoseConfig, select_main_car
from service.runtime import Runtime
from service.settings import DEFAULT_FRAME_MARGIN, DEFAULT_MODEL_DIR


def is_tight_photo(runtime: Runtime, data: bytes) -> bool:
    """The photo would get mode tight's second pass."""
    image = runtime.decode(data)
    car = select_main_car(runtime.detect(image), (image.width, image.height), runtime.config)
    return car is not None and is_tight(car.box, (image.width, image.height))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=30)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DATASET_DIR / "testset" / "JPEGImages")
    parser.add_argument("--margin", type=float, default=DEFAULT_FRAME_MARGIN)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    args = parser.parse_args()

    paths = sorted(p for p in args.dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[: args.images]
    photos = [p.read_bytes() for p in paths]
    backend = DetectronBackend(args.model_dir, device="cpu")
    plain = Runtime(backend, PoseConfig(score_threshold=backend.score_threshold), frame_margin=FrameMargin(0.0))
    runtimes = {
        "no margin": plain,
        "tight": replace(plain, frame_margin=FrameMargin(args.margin, "tight")),
        "always": replace(plain, frame_margin=FrameMargin(args.margin, "always")),
    }
    tight = sum(is_tight_photo(plain, data) for data in photos)
    for runtime in runtimes.values():  # warm-up, not timed: the first calls of each input shape are slow
        runtime.predict(photos[0])
    seconds: dict[str, list[float]] = {name: [] for name in runtimes}
    load_before = os.getloadavg()
    for round_index in range(args.rounds):
        for i, data in enumerate(photos):
            # Alternate which goes first, so neither always runs on the caches the other warmed.
            order = list(runtimes.items()) if (i + round_index) % 2 == 0 else list(runtimes.items())[::-1]
            for name, runtime in order:
                started = time.perf_counter()
                runtime.predict(data)
                seconds[name].append(time.perf_counter() - started)
    load_after = os.getloadavg()
    print(
        f"{len(photos)} photos from {args.dir} ({tight} tight), {args.rounds} rounds, interleaved; "
        f"load average (1/5/15 min) "
        f"before {load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f}, "
        f"after {load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f}, {os.cpu_count()} CPUs"
    )
    base = float(np.median(seconds["no margin"]))
    for name, values in seconds.items():
        ms = np.array(values) * 1000.0
        print(
            f"{name:10s} Runtime.predict p50 {np.median(ms):7.1f} ms  p95 {np.percentile(ms, 95):7.1f} ms  "
            f"x{np.median(values) / base:.3f} of no margin at p50"
        )


if __name__ == "__main__":
    main()
