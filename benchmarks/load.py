"""Load and fault suite: overload, retry storms, huge photos, slow bodies and departing clients (issue 10).

    python -m benchmarks.load [--model-dir DIR | --tiny] [--seconds 20] [--only storm16,large16]

Starts `uvicorn service.api.main:app` on 127.0.0.1 (never any other address), then runs, one after the other:

- closed1, closed4: 1 and 4 closed-loop clients (each sends its next request when the last one is answered);
- storm16, storm64: 16 and 64 closed-loop clients that resend at once after a 503 (a retry storm);
- polite16: 16 clients that wait the advertised Retry-After after a 503;
- large16: 16 concurrent uploads of a 7680x5120 JPEG, once each;
- slow_bodies: connections that send half a body and stall (and as many that declare more than they send);
- gone_queued: 3 requests that stay and 6 that disconnect while queued behind them.

Each prints goodput (200s per second), latency percentiles of the 200s, status counts and the server's peak
RSS (sampled from /proc every 50 ms) during the scenario, then the issue's targets, met or not. The client is a
small raw-socket HTTP/1.1 client on asyncio (keep-alive, prebuilt request bytes) so that it costs the shared
CPU little next to the server. Bounded in count and time: every scenario has a fixed duration or count.

Not a test: figures depend on the machine; docs/load.md records a run with the machine it came from.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from devtools.uvicorn_server import Server, uvicorn_server
from models.paths import DEFAULT_DATASET_DIR
from service.settings import DEFAULT_MODEL_DIR, Settings

BOUNDARY = "carposeloadboundary"
HOST = "127.0.0.1"
BODY_TIMEOUT_S = 10.0  # the server's POSE_BODY_TIMEOUT_S in this suite (30 s by default): keeps the run short
RSS_TARGET_BYTES = 1.6e9
GOODPUT_TARGET = 0.9


# --- the server's resident memory ---------------------------------------------------------------------------


class RssSampler:
    """Peak VmRSS of one process, sampled every `interval_s`; `reset()` starts a new scenario's peak."""

    def __init__(self, pid: int, interval_s: float = 0.05) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        try:
            with open(f"/proc/{self.pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak = max(self.peak, self.rss())

    def reset(self) -> None:
        self.peak = self.rss()

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --- a small HTTP/1.1 client --------------------------------------------------------------------------------


def multipart_request(port: int, image: bytes, path: str = "/pose") -> bytes:
    body = (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="car.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + image
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


async def read_response(reader: asyncio.StreamReader) -> Response:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Response(status, headers, body)


class Connection:
    """One keep-alive connection that reopens itself when the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> Response | None:
        """The response, or None when the connection failed (counted as a transport error)."""
        for _ in range(2):  # a keep-alive connection the server closed meanwhile: reopen once
            try:
                if self.writer is None:
                    self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
                assert self.reader is not None
                self.writer.write(raw)
                await self.writer.drain()
                response = await read_response(self.reader)
                if response.headers.get("connection", "").lower() == "close":
                    await self.close()
                return response
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                await self.close()
        return None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


# --- scenarios ------------------------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    seconds: float
    statuses: Counter = field(default_factory=Counter)
    ok_latencies: list[float] = field(default_factory=list)
    retry_after: list[int] = field(default_factory=list)
    peak_rss: int = 0
    notes: dict[str, object] = field(default_factory=dict)

    @property
    def goodput(self) -> float:
        return self.statuses[200] / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.ok_latencies, q)) if self.ok_latencies else float("nan")

    def line(self) -> str:
        statuses = " ".join(f"{k}:{v}" for k, v in sorted(self.statuses.items(), key=lambda kv: str(kv[0])))
        retry = f" retry-after {min(self.retry_after)}-{max(self.retry_after)} s" if self.retry_after else ""
        return (
            f"{self.name:<12} {self.seconds:6.1f} s  goodput {self.goodput:5.2f}/s  "
            f"p50 {self.percentile(50):6.2f}  p90 {self.percentile(90):6.2f}  p99 {self.percentile(99):6.2f} s  "
            f"peak RSS {self.peak_rss / 1e9:4.2f} GB  [{statuses}]{retry}"
        )


async def closed_loop(port: int, raw: bytes, clients: int, seconds: float, honour_retry_after: bool) -> Result:
    result = Result(f"{'polite' if honour_retry_after else 'closed' if clients <= 4 else 'storm'}{clients}", seconds)
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        connection = Connection(port)
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await connection.request(raw)
                if response is None:
                    result.statuses["transport_error"] += 1
                    await asyncio.sleep(0.05)
                    continue
                if time.perf_counter() > deadline:
                    break  # answered after the window: not counted, so goodput is per second of the window
                result.statuses[response.status] += 1
                if response.status == 200:
                    result.ok_latencies.append(time.perf_counter() - started)
                elif response.status == 503 and "retry-after" in response.headers:
                    wait = int(response.headers["retry-after"])
                    result.retry_after.append(wait)
                    if honour_retry_after:
                        await asyncio.sleep(min(wait, max(0.0, deadline - time.perf_counter())))
        finally:
            await connection.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return result


async def one_shot(port: int, raw: bytes, clients: int, name: str) -> Result:
    started = time.perf_counter()
    result = Result(name, 0.0)

    async def client() -> None:
        connection = Connection(port)
        t0 = time.perf_counter()
        response = await connection.request(raw)
        await connection.close()
        if response is None:
            result.statuses["transport_error"] += 1
            return
        result.statuses[response.status] += 1
        if response.status == 200:
            result.ok_latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(client() for _ in range(clients)))
    result.seconds = time.perf_counter() - started
    return result


async def slow_bodies(port: int, raw: bytes, connections: int) -> Result:
    """Half the connections stall after half the body; the other half send it all but declare 5000 bytes more.

    Meanwhile one ordinary closed-loop client runs: its 200s show whether the stalled uploads starve the model.
    """
    result = Result("slow_bodies", 0.0)
    started = time.perf_counter()
    close_times: list[float] = []
    head_end = raw.index(b"\r\n\r\n") + 4
    declared = int(raw[:head_end].split(b"Content-Length: ")[1].split(b"\r\n")[0])
    lying = raw[:head_end].replace(b"Content-Length: %d" % declared, b"Content-Length: %d" % (declared + 5000))

    async def stall(i: int) -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        t0 = time.perf_counter()
        if i % 2:
            writer.write(raw[: head_end + (len(raw) - head_end) // 2])
        else:
            writer.write(lying + raw[head_end:])
        await writer.drain()
        try:
            response = await asyncio.wait_for(read_response(reader), BODY_TIMEOUT_S + 30)
            result.statuses[response.status] += 1
            rest = await asyncio.wait_for(reader.read(), 30)  # b"" once the server has closed the connection
            close_times.append(time.perf_counter() - t0)
            if rest:
                result.statuses["data_after_close"] += 1
        except (asyncio.TimeoutError, OSError, asyncio.IncompleteReadError):
            result.statuses["no_answer"] += 1
        finally:
            writer.close()

    # A well-behaved client alongside: stalled uploads must not keep it from the model.
    stalls = asyncio.gather(*(stall(i) for i in range(connections)))
    await asyncio.sleep(0.5)
    legit = await closed_loop(port, raw, 1, BODY_TIMEOUT_S - 1.0, False)
    await stalls
    result.seconds = time.perf_counter() - started
    result.notes["meanwhile_1_client"] = f"{legit.statuses[200]} x 200, p50 {legit.percentile(50):.2f} s"
    result.notes["meanwhile_statuses"] = dict(legit.statuses)
    result.notes["closed_within_s"] = round(max(close_times), 2) if close_times else None
    result.notes["body_timeout_s"] = BODY_TIMEOUT_S
    return result


async def gone_queued(server: Server, port: int, raw: bytes, stayers: int = 3, leavers: int = 6) -> Result:
    result = Result("gone_queued", 0.0)
    started = time.perf_counter()
    calls_before = await asyncio.to_thread(server.metric, "carpose_stage_duration_seconds_count", stage="inference")

    async def stay() -> None:
        connection = Connection(port)
        response = await connection.request(raw)
        await connection.close()
        result.statuses[response.status if response else "transport_error"] += 1

    staying = [asyncio.create_task(stay()) for _ in range(stayers)]
    await asyncio.sleep(0.3)
    writers = []
    for _ in range(leavers):
        _, writer = await asyncio.open_connection(HOST, port)
        writer.write(raw)
        await writer.drain()
        writers.append(writer)
    await asyncio.sleep(0.3)  # uploaded and queued behind the stayers
    for writer in writers:
        writer.close()
    result.statuses["left_while_queued"] = leavers
    await asyncio.gather(*staying)
    await asyncio.sleep(0.5)
    calls = await asyncio.to_thread(server.metric, "carpose_stage_duration_seconds_count", stage="inference")
    result.notes["model_calls"] = int(calls - calls_before)
    result.notes["model_calls_for_departed"] = int(calls - calls_before) - result.statuses[200]
    result.seconds = time.perf_counter() - started
    return result


# --- inputs -----------------------------------------------------------------------------------------------------


def car_photo(dataset: Path) -> tuple[bytes, str]:
    folder = dataset / "testset" / "JPEGImages"
    path = folder / "car10.jpg"
    if path.is_file():
        return path.read_bytes(), str(path)
    from devtools.images import encode
    from service.model_state import warmup_image

    return encode(warmup_image(768), "JPEG", quality=90), "synthetic 768x768 JPEG (dataset not found)"


def large_jpeg(photo: bytes, size: tuple[int, int] = (7680, 5120)) -> bytes:
    """A 7680x5120 JPEG of the car photo (upscaled: smooth, so a phone-like 1-3 MB, not noise-sized)."""
    with Image.open(io.BytesIO(photo)) as image:
        big = image.convert("RGB").resize(size, Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    big.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


# --- main -------------------------------------------------------------------------------------------------------


def resolve_model_dir(args: argparse.Namespace, scratch: Path) -> Path:
    if args.tiny:
        from devtools.tiny_model import build_tiny_model_dir

        return build_tiny_model_dir(scratch / "tiny_model")
    return (args.model_dir or DEFAULT_MODEL_DIR).resolve()


def report_targets(results: dict[str, Result], max_queue: int) -> list[str]:
    lines = []

    def check(label: str, ok: bool | None, detail: str) -> None:
        mark = "n/a " if ok is None else "MET " if ok else "MISS"
        lines.append(f"  [{mark}] {label}: {detail}")

    base = results.get("closed1")
    for name in ("storm16", "storm64"):
        run = results.get(name)
        if base and run:
            ratio = run.goodput / base.goodput if base.goodput else float("nan")
            check(f"{name} goodput >= 90% of closed1", ratio >= GOODPUT_TARGET, f"{ratio:.0%}")
            bound = (max_queue + 2) * base.percentile(50)
            check(
                f"{name} p99 of 200s <= (queue + 2) x closed1 p50",
                run.percentile(99) <= bound,
                f"{run.percentile(99):.2f} s vs {bound:.2f} s",
            )
    if "large16" in results:
        peak = results["large16"].peak_rss
        check("large16 peak RSS <= 1.6 GB", peak <= RSS_TARGET_BYTES, f"{peak / 1e9:.2f} GB")
    fives = sum(r.statuses.get(500, 0) for r in results.values())
    check("no 500 in the whole run", fives == 0, f"{fives}")
    if "slow_bodies" in results:
        closed = results["slow_bodies"].notes["closed_within_s"]
        check(
            "stalled bodies closed within timeout + 5 s",
            closed is not None and closed <= BODY_TIMEOUT_S + 5 and "no_answer" not in results["slow_bodies"].statuses,
            f"last closed after {closed} s (timeout {BODY_TIMEOUT_S:g} s)",
        )
    if "gone_queued" in results:
        departed = results["gone_queued"].notes["model_calls_for_departed"]
        check("0 model calls for requests abandoned while queued", departed == 0, f"{departed}")
    return lines


SCENARIOS = ("closed1", "closed4", "storm16", "storm64", "polite16", "large16", "slow_bodies", "gone_queued")


async def run_suite(args: argparse.Namespace, server: Server, photo: bytes, rss: RssSampler) -> dict[str, Result]:
    port = int(server.url.rsplit(":", 1)[1])
    raw = multipart_request(port, photo)
    chosen = [s for s in SCENARIOS if not args.only or s in args.only.split(",")]
    plans: dict[str, Callable[[], object]] = {
        "closed1": lambda: closed_loop(port, raw, 1, args.seconds, False),
        "closed4": lambda: closed_loop(port, raw, 4, args.seconds * 0.75, False),
        "storm16": lambda: closed_loop(port, raw, 16, args.seconds, False),
        "storm64": lambda: closed_loop(port, raw, 64, args.seconds, False),
        "polite16": lambda: closed_loop(port, raw, 16, args.seconds, True),
        "large16": lambda: one_shot(port, multipart_request(port, large_jpeg(photo)), 16, "large16"),
        "slow_bodies": lambda: slow_bodies(port, raw, args.slow_connections),
        "gone_queued": lambda: gone_queued(server, port, raw),
    }
    results: dict[str, Result] = {}
    for name in chosen:
        await asyncio.sleep(1.0)  # let the previous scenario's queue drain
        rss.reset()
        result = await plans[name]()  # type: ignore[misc]
        result.peak_rss = rss.peak
        results[name] = result
        print(result.line() + (f"  {result.notes}" if result.notes else ""), flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, help=f"model directory (default {DEFAULT_MODEL_DIR})")
    parser.add_argument("--tiny", action="store_true", help="the tiny random-weights test model (quick check)")
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET_DIR, help="Car Parts dataset (a photo)")
    parser.add_argument("--seconds", type=float, default=20.0, help="duration of each closed-loop scenario")
    parser.add_argument("--slow-connections", type=int, default=200, help="stalling connections (default 200)")
    parser.add_argument("--threads", type=int, default=1, help="POSE_TORCH_THREADS of the server (default 1)")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(SCENARIOS)}")
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 120 or not 1 <= args.slow_connections <= 1000:
        parser.error("--seconds must be 1-120 and --slow-connections 1-1000 (the suite is bounded)")

    photo, photo_source = car_photo(args.dataset)
    defaults = Settings()
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = resolve_model_dir(args, Path(scratch))
        env = {
            "POSE_MODEL_DIR": str(model_dir),
            "POSE_DEVICE": "cpu",
            "POSE_TORCH_THREADS": str(args.threads),
            "POSE_BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
            "POSE_LOG_LEVEL": "warning",
        }
        print(
            f"model {model_dir}; photo {photo_source} ({len(photo)} bytes); cpus {os.cpu_count()}; "
            f"load {os.getloadavg()[0]:.2f}; queue {defaults.max_queue}, workers {defaults.inference_workers}, "
            f"decode workers {defaults.decode_workers}, decoded images {defaults.max_decoded_images}"
        )
        log_path = Path(scratch) / "uvicorn.log"
        with (
            uvicorn_server(env, log_path, uvicorn_args=["--no-access-log"]) as server,
            RssSampler(server.process.pid) as rss,
        ):
            print(f"server ready in {server.ready_s:.1f} s, RSS {rss.rss() / 1e9:.2f} GB", flush=True)
            results = asyncio.run(run_suite(args, server, photo, rss))
    print("targets (issue 10):")
    for line in report_targets(results, defaults.max_queue):
        print(line)
    p50s = [r.percentile(50) for r in results.values() if r.ok_latencies]
    if p50s:
        print(f"median of the scenarios' p50: {statistics.median(p50s):.2f} s; load now {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
