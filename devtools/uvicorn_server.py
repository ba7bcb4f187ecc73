"""The service in a real uvicorn subprocess on 127.0.0.1 (for tests/service/test_uvicorn.py and benchmarks/)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from service.cli import APP, HTTP_PROTOCOL
from service.settings import REPO_ROOT

# glibc's dynamic mmap threshold makes the model's large temporary tensors thrash the allocator.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log_path: Path
    ready_s: float  # process start -> first 200 from /readyz

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def metric(self, name: str, **labels: str) -> float:
        """A Prometheus sample from /metrics, summed over the labels not given (0 when absent)."""
        from prometheus_client.parser import text_string_to_metric_families

        text = httpx.get(f"{self.url}/metrics", timeout=30).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)


def server_env(model_dir: Path, **settings: str) -> dict[str, str]:
    """A test server's environment: this model on the CPU, POSE_<NAME> for each extra setting, and one intra-op
    thread: on a small machine shared with other jobs, torch's default (one per core) can make each call tens of
    times slower (seen: 3.8 s vs 64 ms for the tiny model on 2 busy cores)."""
    return {
        "POSE_MODEL_DIR": str(model_dir),
        "POSE_DEVICE": "cpu",
        "POSE_TORCH_THREADS": "1",
        **{f"POSE_{name.upper()}": value for name, value in settings.items()},
    }


@contextmanager
def uvicorn_server(
    env: Mapping[str, str], log_path: Path, ready_timeout_s: float = 180.0, uvicorn_args: Sequence[str] = ()
) -> Iterator[Server]:
    """Start `python -m uvicorn service.api.main:app`, wait for /readyz 200, always kill it on exit.

    A model that failed to load ends the wait at once (its /readyz says so) instead of at the timeout.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    full_env = {**os.environ, **MALLOC_ENV, **env}
    # The HTTP protocol as shipped (header-read timeout, JSON protocol errors), as `carpose serve` and the images.
    command = [sys.executable, "-m", "uvicorn", APP, "--host", "127.0.0.1", "--port", str(port)]
    command += ["--http", HTTP_PROTOCOL]
    command += list(uvicorn_args)
    with open(log_path, "wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    try:
        server = Server(url=url, process=process, log_path=log_path, ready_s=float("nan"))
        deadline = started + ready_timeout_s
        with httpx.Client(timeout=5.0) as client:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"uvicorn exited with {process.returncode}:\n{server.log_tail()}")
                try:
                    response = client.get(f"{url}/readyz")
                    if response.status_code == 200:
                        break
                    if response.json().get("status") == "failed":
                        raise RuntimeError(f"model failed to load: {response.text}\n{server.log_tail()}")
                except httpx.TransportError:
                    pass
                if time.perf_counter() > deadline:
                    raise TimeoutError(f"not ready after {ready_timeout_s} s:\n{server.log_tail()}")
                time.sleep(0.05)
        server.ready_s = time.perf_counter() - started
        yield server
    finally:
        stop(process)
