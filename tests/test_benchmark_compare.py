"""benchmarks.compare reads http_overhead's and throughput's output (the formats both sides of a comparison print)."""

from __future__ import annotations

import pytest

from benchmarks.compare import THROUGHPUT, parse_run

OUTPUT = """model: /work/main/models/carparts_mnv2_fpn
images: 30 from /work/shared/datasets/car-parts/testset/JPEGImages (first 30 by name)
service ready 7.41 s after process start

30 calls per side (interleaved), milliseconds
                                         p50       p95      mean       min       max
(a) raw detect_array                   410.9     564.1     437.5     345.2     601.8
(b) HTTP POST /pose end to end         425.0     619.1     471.4     352.6     708.7
    server: inference stage            397.8     503.9     415.3     343.9     560.0
"""


def test_parse_run_reads_the_raw_and_http_rows() -> None:
    run = parse_run("this checkout", OUTPUT)
    assert (run.raw_p50, run.http_p50, run.http_p95, run.ready_s) == (410.9, 425.0, 619.1, 7.41)


def test_parse_run_refuses_output_without_a_table() -> None:
    with pytest.raises(RuntimeError, match="no result table"):
        parse_run("ref abc", OUTPUT.split("30 calls")[0])


def test_the_throughput_line_is_read() -> None:
    output = "batch 1: server ready in 9.2 s\n  4 clients done: 3.71 img/s\n"
    found = THROUGHPUT.search(output)
    assert found is not None and (found["clients"], found["rate"]) == ("4", "3.71")
