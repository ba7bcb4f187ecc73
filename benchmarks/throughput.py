"""Throughput benchmark: single-image latency and sustained throughput, with and without dynamic batching (issue 14).

    python -m benchmarks.throughput [--device cpu|cuda] [--model-dir DIR | --tiny] [--seconds 20]
                                    [--clients 1,4,16,64] [--batch-sizes 1,4]

For each batch size (1 = no batching) it starts `uvicorn service.api.main:app` on 127.0.0.1 (never any other
address) with POSE_BATCH_MAX_SIZE set, then runs closed-loop clients (each sends its next request when the last
one is answered) at each client count: `--warmup-s` seconds not counted, then `--seconds` counted. It prints one
table: images/s answered in the window, p50/p95 latency of the requests answered in the window (1 client: the
single-image latency), images per model call (from the service's carpose_batch_size histogram) and non-200s.

Every client is admitted (POSE_MAX_QUEUE = the largest client count), so the figures are the model's, not the
overload policy's (benchmarks/load.py measures that); decoded images are allowed for two full batches. When a
request takes longer than the window (many clients on a CPU) its latency is not in the percentiles: the table
marks those rows. Not a test: figures depend on the machine; docs/gpu.md records runs with their machines.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from benchmarks.load import Connection, car_photo, multipart_request, resolve_model_dir
from devtools.uvicorn_server import uvicorn_server
from models.paths import DEFAULT_DATASET_DIR


@dataclass
class Row:
    batch: int
    clients: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)  # status (or "transport") -> count, in the window
    images_per_call: float = float("nan")
    truncated: bool = False  # some requests were still running at the window's end after a whole window

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000.0 if self.latencies else float("nan")


async def closed_loop(port: int, raw: bytes, clients: int, warmup_s: float, seconds: float) -> Row:
    row = Row(batch=0, clients=clients, seconds=seconds)
    start = time.perf_counter() + warmup_s
    end = start + seconds

    async def client() -> None:
        connection = Connection(port)
        try:
            while time.perf_counter() < end:
                sent = time.perf_counter()
                response = await connection.request(raw)
                done = time.perf_counter()
                if start <= done <= end:
                    if response is not None and response.status == 200:
                        row.latencies.append(done - sent)
                    else:
                        row.errors["transport" if response is None else str(response.status)] += 1
                if response is None:
                    await asyncio.sleep(0.05)
            if time.perf_counter() - end > seconds:
                row.truncated = True
        finally:
            await connection.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return row


def batch_histogram(url: str) -> tuple[float, float]:
    """(images, model calls) so far, from /metrics."""
    text = httpx.get(f"{url}/metrics", timeout=10).text

    def value(name: str) -> float:
        match = re.search(rf'^{name}{{backend="detectron2"}} ([0-9.e+]+)$', text, re.MULTILINE)
        return float(match.group(1)) if match else 0.0

    return value("carpose_batch_size_sum"), value("carpose_batch_size_count")


def run_config(args: argparse.Namespace, model_dir: Path, photo: bytes, batch: int, scratch: Path) -> list[Row]:
    env = {
        "POSE_MODEL_DIR": str(model_dir),
        "POSE_DEVICE": args.device,
        "POSE_TORCH_THREADS": str(args.threads),
        "POSE_BATCH_MAX_SIZE": str(batch),
        "POSE_BATCH_TIMEOUT_MS": str(args.batch_timeout_ms),
        "POSE_MAX_QUEUE": str(max(args.clients)),
        "POSE_MAX_UPLOADS": str(max(64, max(args.clients))),
        "POSE_MAX_DECODED_IMAGES": str(max(4, 2 * batch)),
        "POSE_LOG_LEVEL": "warning",
    }
    rows = []
    with uvicorn_server(env, scratch / f"uvicorn-{batch}.log", uvicorn_args=["--no-access-log"]) as server:
        port = int(server.url.rsplit(":", 1)[1])
        raw = multipart_request(port, photo)
        print(f"batch {batch}: server ready in {server.ready_s:.1f} s", flush=True)
        for clients in args.clients:
            images, calls = batch_histogram(server.url)
            row = asyncio.run(closed_loop(port, raw, clients, args.warmup_s, args.seconds))
            images2, calls2 = batch_histogram(server.url)
            row.batch = batch
            row.images_per_call = (images2 - images) / (calls2 - calls) if calls2 > calls else float("nan")
            rows.append(row)
            print(f"  {clients} clients done: {row.throughput:.2f} img/s", flush=True)
    return rows


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"


def gpu_name(device: str) -> str:
    if device != "cuda":
        return "none"
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device visible"


def print_table(rows: list[Row]) -> None:
    print(
        f"{'batch max':>9} {'clients':>7} {'img/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'img/call':>8} "
        f"{'answers':>7} {'errors':>6}"
    )
    for r in rows:
        mark = " *" if r.truncated else ""
        print(
            f"{r.batch:>9} {r.clients:>7} {r.throughput:>7.2f} {r.pct(50):>8.0f} {r.pct(95):>8.0f} "
            f"{r.images_per_call:>8.2f} {len(r.latencies):>7} {errors(r.errors):>6}{mark}"
        )
    if any(r.truncated for r in rows):
        print("* requests outlasted the window: their latencies are not in p50/p95 (longer --seconds to see them)")


def errors(counts: Counter[str]) -> str:
    return " ".join(f"{status}:{n}" for status, n in sorted(counts.items())) or "0"


def ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--model-dir", type=Path, help="model directory (default: the embedded default model)")
    parser.add_argument("--tiny", action="store_true", help="the tiny random-weights test model (quick check)")
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET_DIR, help="Car Parts dataset (a photo)")
    parser.add_argument("--clients", type=ints, default=[1, 4, 16, 64], help="client counts (default 1,4,16,64)")
    parser.add_argument("--batch-sizes", type=ints, help="POSE_BATCH_MAX_SIZE values (default 1,4 cpu; 1,8 cuda)")
    parser.add_argument("--batch-timeout-ms", type=float, default=5.0, help="POSE_BATCH_TIMEOUT_MS (default 5)")
    parser.add_argument("--seconds", type=float, default=20.0, help="counted window per client count")
    parser.add_argument("--warmup-s", type=float, default=5.0, help="uncounted lead-in per client count")
    parser.add_argument("--threads", type=int, default=1, help="POSE_TORCH_THREADS (default 1; 0 = torch's)")
    args = parser.parse_args(argv)
    batches = args.batch_sizes or ([1, 4] if args.device == "cpu" else [1, 8])
    if not 1 <= args.seconds <= 300 or not 0 <= args.warmup_s <= 60 or max(args.clients) > 256:
        parser.error("--seconds 1-300, --warmup-s 0-60, at most 256 clients (the benchmark is bounded)")

    photo, source = car_photo(args.dataset)
    print(f"machine: {machine()}; GPU: {gpu_name(args.device)}; device {args.device}; torch threads {args.threads}")
    print(f"photo {source} ({len(photo)} bytes); window {args.seconds:.0f} s after {args.warmup_s:.0f} s warm-up")
    rows: list[Row] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = resolve_model_dir(args, Path(scratch))
        print(f"model {model_dir}", flush=True)
        for batch in batches:
            rows += run_config(args, model_dir, photo, batch, Path(scratch))
    print_table(rows)
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
