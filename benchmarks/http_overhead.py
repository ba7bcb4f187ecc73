"""HTTP overhead of the service: raw Detectron2 inference vs end-to-end `POST /pose` to a real uvicorn.

    python -m benchmarks.http_overhead [--model-dir DIR | --tiny] [--images N] [--dataset DIR] [--device cpu]

(a) raw: `DetectronBackend.detect_array` on the decoded test images, in this process, after warm-up;
(b) http: `POST /pose` of the same image files to `uvicorn service.api.main:app` on 127.0.0.1, one at a time.
Both see the same images, the same number of times. By default the two are interleaved image by image, so a
machine whose load drifts (another job, thermal limits) slows both alike; `--phased` runs all of (a) first.
Also reported: the service's time from process start to the first 200 from /readyz.

Goals (issue 2, CPU): HTTP overhead at most 5 % over raw inference at p50; ready within 15 s of start.
Not a test: timings depend on the machine; read them next to its load (printed).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from devtools.uvicorn_server import MALLOC_ENV, uvicorn_server
from models.paths import DEFAULT_DATASET_DIR
from service.settings import DEFAULT_MODEL_DIR

OVERHEAD_GOAL = 0.05
READY_GOAL_S = 15.0


def apply_malloc_tuning() -> bool:
    """The same glibc malloc settings the server gets through MALLOC_*_ env vars (mallopt: M_TRIM=-1, M_MMAP=-3)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(-1, int(MALLOC_ENV["MALLOC_TRIM_THRESHOLD_"]))) and bool(
            libc.mallopt(-3, int(MALLOC_ENV["MALLOC_MMAP_THRESHOLD_"]))
        )
    except (OSError, AttributeError):
        return False


def resolve_model_dir(args: argparse.Namespace, scratch: Path) -> Path:
    if args.tiny:
        from devtools.tiny_model import build_tiny_model_dir

        return build_tiny_model_dir(scratch / "tiny_model")
    if args.model_dir is not None:
        return args.model_dir.resolve()
    if (DEFAULT_MODEL_DIR / "model.json").is_file():
        return DEFAULT_MODEL_DIR
    sys.exit(f"no model at {DEFAULT_MODEL_DIR}: pass --model-dir DIR (or --tiny for a random-weights test model)")


def load_images(dataset: Path, count: int) -> tuple[list[tuple[str, bytes]], str]:
    folder = dataset / "testset" / "JPEGImages"
    files = sorted(folder.glob("*.jpg")) if folder.is_dir() else []
    if files:
        chosen = [files[i % len(files)] for i in range(count)]
        return [(p.name, p.read_bytes()) for p in chosen], f"{folder} (first {min(count, len(files))} by name)"
    # No dataset: synthetic car-ish JPEGs of a typical upload size, so the script still runs.
    from devtools.images import encode
    from service.model_state import warmup_image

    images = []
    for i in range(count):
        array = np.ascontiguousarray(np.roll(warmup_image(768), i * 17, axis=1))
        images.append((f"synthetic{i}.jpg", encode(array, "JPEG", quality=90)))
    return images, f"synthetic 768x768 JPEGs ({folder} not found)"


def stats(values: list[float]) -> dict[str, float]:
    array = np.asarray(values) * 1000.0
    return {
        "p50": float(np.percentile(array, 50)),
        "p95": float(np.percentile(array, 95)),
        "mean": float(array.mean()),
        "min": float(array.min()),
        "max": float(array.max()),
    }


def row(name: str, s: dict[str, float]) -> str:
    return f"{name:<34} {s['p50']:>9.1f} {s['p95']:>9.1f} {s['mean']:>9.1f} {s['min']:>9.1f} {s['max']:>9.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, help=f"model directory (default {DEFAULT_MODEL_DIR})")
    parser.add_argument("--tiny", action="store_true", help="build and use the tiny random-weights test model")
    parser.add_argument("--images", type=int, default=20, help="timed requests per side (default 20)")
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET_DIR, help="Car Parts dataset directory")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"], help="default cpu")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per side first (default 3)")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads on both sides (0 = default)")
    parser.add_argument("--phased", action="store_true", help="all raw calls first, then all HTTP calls")
    args = parser.parse_args(argv)
    if args.images < 1:
        parser.error("--images must be at least 1")
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)

    malloc_ok = apply_malloc_tuning()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="carpose_bench_") as scratch_name:
        scratch = Path(scratch_name)
        model_dir = resolve_model_dir(args, scratch)
        images, source = load_images(args.dataset, args.images)
        print(f"model: {model_dir}\nimages: {len(images)} from {source}")
        print(f"device: {args.device}, torch threads: {args.threads or 'default'}")
        print(
            f"machine: {os.cpu_count()} CPUs, load average {load_before[0]:.2f} {load_before[1]:.2f} "
            f"{load_before[2]:.2f} at start; malloc tuning in this process: {'yes' if malloc_ok else 'NO'}"
        )

        env = {
            "POSE_MODEL_DIR": str(model_dir),
            "POSE_DEVICE": args.device,
            "POSE_TORCH_THREADS": str(args.threads),
            "POSE_LOG_LEVEL": "warning",
        }
        with uvicorn_server(env, scratch / "uvicorn.log") as server:
            print(f"service ready {server.ready_s:.2f} s after process start")
            # The raw side loads its own copy only now, so it cannot slow the service's start.
            from service.backends.detectron import DetectronBackend
            from service.imaging import decode_upload

            backend = DetectronBackend(model_dir, args.device)
            decoded = [decode_upload(data, 10**9, 10**9).rgb for _, data in images]

            with httpx.Client(base_url=server.url, timeout=300.0) as http:

                def raw_call(i: int) -> float:
                    started = time.perf_counter()
                    backend.detect_array(decoded[i])
                    return time.perf_counter() - started

                server_ms: list[dict[str, float]] = []

                def http_call(i: int) -> float:
                    name, data = images[i]
                    started = time.perf_counter()
                    response = http.post("/pose", files={"image": (name, data, "image/jpeg")})
                    body = response.json()
                    elapsed = time.perf_counter() - started
                    if response.status_code != 200:
                        raise RuntimeError(f"{name}: HTTP {response.status_code}: {response.text[:300]}")
                    server_ms.append(body["timings_ms"])
                    return elapsed

                for i in range(args.warmup):
                    raw_call(i % len(images))
                    http_call(i % len(images))
                server_ms.clear()

                raw: list[float] = []
                end_to_end: list[float] = []
                if args.phased:
                    raw = [raw_call(i) for i in range(len(images))]
                    end_to_end = [http_call(i) for i in range(len(images))]
                else:
                    for i in range(len(images)):
                        raw.append(raw_call(i))
                        end_to_end.append(http_call(i))
            log_tail = server.log_tail(2000)

    load_after = os.getloadavg()
    raw_s, http_s = stats(raw), stats(end_to_end)
    inference_s = stats([t["inference"] / 1000.0 for t in server_ms])
    total_s = stats([t["total"] / 1000.0 for t in server_ms])
    overhead_p50 = (http_s["p50"] - raw_s["p50"]) / raw_s["p50"]
    overhead_p95 = (http_s["p95"] - raw_s["p95"]) / raw_s["p95"]

    print(f"\n{len(images)} calls per side ({'phased' if args.phased else 'interleaved'}), milliseconds")
    print(f"{'':<34} {'p50':>9} {'p95':>9} {'mean':>9} {'min':>9} {'max':>9}")
    print(row("(a) raw detect_array", raw_s))
    print(row("(b) HTTP POST /pose end to end", http_s))
    print(row("    server: inference stage", inference_s))
    print(row("    server: total (decode..json)", total_s))
    print(
        f"\nHTTP overhead over raw inference: p50 {overhead_p50:+.1%}, p95 {overhead_p95:+.1%} "
        f"(goal at p50: <= {OVERHEAD_GOAL:.0%}: {'met' if overhead_p50 <= OVERHEAD_GOAL else 'NOT met'})"
    )
    print(
        f"time to ready: {server.ready_s:.2f} s (goal <= {READY_GOAL_S:.0f} s on CPU: "
        f"{'met' if server.ready_s <= READY_GOAL_S else 'NOT met'})"
    )
    print(
        f"load average at end: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f} "
        f"on {os.cpu_count()} CPUs" + (" -- the machine was busy: timings are noisy" if load_after[0] > 1.0 else "")
    )
    if "Traceback" in log_tail:
        print("\nservice log tail:\n" + log_tail)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
