"""Measure what one carpose process needs, to size a Kubernetes pod: RSS and CPU seconds per request.

Starts the service with the default model through real uvicorn, POSTs photos one at a time, and reads the
process's RSS (VmRSS, VmHWM) and CPU time (utime + stime) from /proc. Prints the figures; docs/deploy.md
records the ones the manifests under deploy/kubernetes/ were sized from.

    .venv/bin/python -m deploy.measure_pod [--photos 12] [--torch-threads 1] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from devtools.uvicorn_server import uvicorn_server
from models.paths import DEFAULT_DATASET_DIR

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def proc_memory_mib(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak) in MiB: the figures a memory limit must cover."""
    out: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            out[key] = int(value.split()[0]) / 1024.0
    return out


def proc_cpu_seconds(pid: int) -> float:
    # Fields 14 and 15 of /proc/PID/stat (after the parenthesised command name): utime and stime, in ticks.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=12)
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET_DIR)
    args = parser.parse_args()

    photos = sorted((args.dataset / "testset" / "JPEGImages").glob("*.jpg"))[: args.photos]
    env = {"POSE_TORCH_THREADS": str(args.torch_threads), "POSE_DEVICE": args.device}
    with tempfile.TemporaryDirectory() as tmp, uvicorn_server(env, Path(tmp) / "uvicorn.log") as server:
        pid = server.process.pid
        ready = proc_memory_mib(pid)
        cpu_ready = proc_cpu_seconds(pid)
        print(
            f"ready after {server.ready_s:.1f} s (load + warm-up): CPU {cpu_ready:.1f} s, RSS {ready['VmRSS']:.0f} MiB"
        )
        latencies: list[float] = []
        cpu_per_request: list[float] = []
        with httpx.Client(timeout=120.0) as client:
            for photo in photos:
                cpu0 = proc_cpu_seconds(pid)
                started = time.perf_counter()
                response = client.post(f"{server.url}/pose", files={"image": (photo.name, photo.read_bytes())})
                latencies.append(time.perf_counter() - started)
                cpu_per_request.append(proc_cpu_seconds(pid) - cpu0)
                response.raise_for_status()
        after = proc_memory_mib(pid)
    print(
        f"photos: {len(photos)} from {photos[0].parent} "
        f"(device {args.device}, torch threads {args.torch_threads}, {os.cpu_count()} cores)"
    )
    print(
        f"latency s: median {statistics.median(latencies):.3f}  max {max(latencies):.3f}  "
        f"-> {1.0 / statistics.median(latencies):.2f} requests/s per inference worker"
    )
    print(f"CPU s per request: median {statistics.median(cpu_per_request):.3f}  max {max(cpu_per_request):.3f}")
    print(f"RSS MiB: ready {ready['VmRSS']:.0f}  after {after['VmRSS']:.0f}  peak (VmHWM) {after['VmHWM']:.0f}")


if __name__ == "__main__":
    main()
