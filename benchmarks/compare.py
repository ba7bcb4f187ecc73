"""Speed of this checkout against an earlier commit on the same machine, in alternating runs.

    python -m benchmarks.compare --ref REV [--rounds N] [--images N] [--dataset DIR] [--throughput-clients N]

A shared VM's speed drifts by tens of percent within an hour, so a p50 measured today says little next to one
measured on another day. This runs `benchmarks.http_overhead` in a temporary git worktree of REV (its code and
its committed default model) and in this checkout, one after the other, ROUNDS times each, on the same dataset
photos, and prints every run's p50/p95, the service's time to ready and the ratio of the two sides' medians.

With `--throughput-clients N` it then runs each side's `benchmarks.throughput` with N closed-loop clients (batch
size 1, each side's defaults otherwise), alternating ROUNDS times, and prints images/s and the peak resident
memory of the benchmark's process tree (the largest process: the uvicorn server; its clients are a few tens of MB).

Both sides run on this interpreter, so REV must work with this checkout's environment. Not a test: read the
figures next to the load averages the runs print.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from models.paths import DEFAULT_DATASET_DIR
from service.settings import REPO_ROOT

# A row of http_overhead's table: name, then p50 p95 mean min max in milliseconds.
ROW = re.compile(r"^\((?P<side>[ab])\) .*?\s+(?P<p50>[\d.]+)\s+(?P<p95>[\d.]+)\s+[\d.]+\s+[\d.]+\s+[\d.]+\s*$")
RUN_TIMEOUT_S = 1200


READY = re.compile(r"^service ready (?P<seconds>[\d.]+) s after process start", re.MULTILINE)
THROUGHPUT = re.compile(r"^\s+(?P<clients>\d+) clients done: (?P<rate>[\d.]+) img/s", re.MULTILINE)


@dataclass(frozen=True)
class Run:
    label: str
    raw_p50: float
    http_p50: float
    http_p95: float
    ready_s: float


@dataclass(frozen=True)
class ThroughputRun:
    label: str
    images_per_s: float
    peak_rss_mb: float


def parse_run(label: str, output: str) -> Run:
    """The (a) raw and (b) HTTP rows of one http_overhead run, and the service's time to ready."""
    rows = {m["side"]: m for m in map(ROW.match, output.splitlines()) if m}
    ready = READY.search(output)
    if set(rows) != {"a", "b"} or ready is None:
        raise RuntimeError(f"{label}: no result table in the benchmark's output:\n{output[-2000:]}")
    return Run(
        label, float(rows["a"]["p50"]), float(rows["b"]["p50"]), float(rows["b"]["p95"]), float(ready["seconds"])
    )


def run_throughput(checkout: Path, label: str, clients: int, dataset: Path) -> ThroughputRun:
    """One `benchmarks.throughput` run; the peak RSS from wait4, which covers the waited-for descendants."""
    command = [sys.executable, "-m", "benchmarks.throughput", "--clients", str(clients), "--batch-sizes", "1"]
    command += ["--dataset", str(dataset)]
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(command, cwd=checkout, stdout=log, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        output = log.read()
    rate = THROUGHPUT.search(output)
    if process.returncode != 0 or rate is None:
        raise RuntimeError(f"{label}: exit {process.returncode}:\n{output[-2000:]}")
    return ThroughputRun(label, float(rate["rate"]), usage.ru_maxrss / 1024.0)  # ru_maxrss is in KiB on Linux


def run_benchmark(checkout: Path, label: str, images: int, dataset: Path) -> Run:
    command = [sys.executable, "-m", "benchmarks.http_overhead", "--images", str(images), "--dataset", str(dataset)]
    done = subprocess.run(command, cwd=checkout, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{label}: exit {done.returncode}:\n{(done.stdout + done.stderr)[-2000:]}")
    if re.search(r"^images: .*not found", done.stdout, re.MULTILINE):  # synthetic photos would not compare
        raise RuntimeError(f"{label}: the dataset photos were not found:\n{done.stdout[:500]}")
    return parse_run(label, done.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", required=True, help="the commit to compare with (any git revision)")
    parser.add_argument("--rounds", type=int, default=2, help="runs per side, alternating (default 2)")
    parser.add_argument("--images", type=int, default=20, help="timed requests per side and run (default 20)")
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET_DIR, help="Car Parts dataset directory")
    parser.add_argument("--throughput-clients", type=int, default=0, help="also compare throughput (0 = not)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.images < 1:
        parser.error("--rounds and --images must be at least 1")
    if not (args.dataset / "testset" / "JPEGImages").is_dir():
        parser.error(f"no test photos under {args.dataset}: both sides must time the same real photos")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", args.ref], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()

    runs: list[tuple[int, Run]] = []
    throughput: list[ThroughputRun] = []
    with tempfile.TemporaryDirectory(prefix="carpose_ref_") as scratch:
        worktree = Path(scratch) / "ref"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "--quiet", str(worktree), commit], cwd=REPO_ROOT, check=True
        )
        try:
            for round_index in range(1, args.rounds + 1):
                for checkout, label in ((worktree, f"ref {commit}"), (REPO_ROOT, "this checkout")):
                    run = run_benchmark(checkout, label, args.images, args.dataset.resolve())
                    runs.append((round_index, run))
                    print(f"round {round_index}, {label}: POST /pose p50 {run.http_p50:.1f} ms", flush=True)
            for round_index in range(1, args.rounds + 1 if args.throughput_clients else 1):
                for checkout, label in ((worktree, f"ref {commit}"), (REPO_ROOT, "this checkout")):
                    rate = run_throughput(checkout, label, args.throughput_clients, args.dataset.resolve())
                    throughput.append(rate)
                    print(f"round {round_index}, {label}: {rate.images_per_s:.2f} img/s", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=REPO_ROOT, check=False)

    print(f"\n{args.images} photos per run, milliseconds")
    print(f"{'round':<6} {'side':<20} {'raw p50':>9} {'POST p50':>9} {'POST p95':>9} {'ready s':>8}")
    for round_index, run in runs:
        print(
            f"{round_index:<6} {run.label:<20} {run.raw_p50:>9.1f} {run.http_p50:>9.1f} {run.http_p95:>9.1f} "
            f"{run.ready_s:>8.1f}"
        )
    print(f"\nmedian of the runs: ref {commit} / this checkout / ratio")
    for name, value in (("POST /pose p50 ms", "http_p50"), ("POST /pose p95 ms", "http_p95"), ("ready s", "ready_s")):
        ref = statistics.median(getattr(run, value) for _, run in runs if run.label.startswith("ref"))
        this = statistics.median(getattr(run, value) for _, run in runs if not run.label.startswith("ref"))
        print(f"  {name:<18} {ref:9.1f} {this:9.1f} {this / ref:6.2f}")
    if throughput:
        print(f"\nthroughput, {args.throughput_clients} clients, batch size 1: img/s and peak RSS (MB) per run")
        for rate in throughput:
            print(f"  {rate.label:<20} {rate.images_per_s:7.2f} {rate.peak_rss_mb:8.0f}")
        for name, value in (("img/s", "images_per_s"), ("peak RSS MB", "peak_rss_mb")):
            ref = statistics.median(getattr(r, value) for r in throughput if r.label.startswith("ref"))
            this = statistics.median(getattr(r, value) for r in throughput if not r.label.startswith("ref"))
            print(f"  {name:<18} ref {ref:9.2f}  this {this:9.2f}  ratio {this / ref:5.2f}")
    load = os.getloadavg()
    print(f"load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
