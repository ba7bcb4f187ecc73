"""Every Prometheus metric of the service, defined once on a registry of our own.

A dedicated registry (not prometheus_client's global one) keeps tests that build several apps in one process
from colliding, and lets the deployment tests enumerate exactly the metric names we export.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

# Seconds; CPU inference sits around 0.2-2 s, GPU around 20-100 ms, so cover both.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)

REQUEST_DURATION = Histogram(
    "carpose_request_duration_seconds",
    "End-to-end request latency",
    ["route", "backend", "status"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
STAGE_DURATION = Histogram(
    "carpose_stage_duration_seconds",
    "Latency of one stage of a pose request",
    ["stage", "backend"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
IN_FLIGHT = Gauge("carpose_requests_in_flight", "Pose requests being handled", registry=REGISTRY)
QUEUE_DEPTH = Gauge("carpose_queue_depth", "Requests waiting for a backend slot", ["backend"], registry=REGISTRY)
BATCH_SIZE = Histogram(
    "carpose_batch_size",
    "Images per model call (dynamic batching: POSE_BATCH_MAX_SIZE, POSE_BATCH_TIMEOUT_MS)",
    ["backend"],
    buckets=(1, 2, 4, 8, 16, 32, 64),
    registry=REGISTRY,
)
MODEL_LOAD_SECONDS = Gauge("carpose_model_load_seconds", "Time to load and warm up the model", registry=REGISTRY)
# 1 for the engine every local-model request runs on (POSE_ENGINE as resolved for the device; service/engines.py).
MODEL_ENGINE = Gauge("carpose_model_engine", "The local model's inference engine (1)", ["engine"], registry=REGISTRY)
VIEWS = Counter("carpose_views_total", "Views returned", ["view", "backend"], registry=REGISTRY)
ERRORS = Counter("carpose_errors_total", "Error responses by code", ["code", "route"], registry=REGISTRY)
CLIENT_DISCONNECTS = Counter(
    "carpose_client_disconnects_total",
    "Clients that went away before their answer (stage: upload, queued, processing); not errors of ours",
    ["route", "stage"],
    registry=REGISTRY,
)
UPSTREAM_DURATION = Histogram(
    "carpose_upstream_duration_seconds",
    "Latency of calls to an upstream service (Amazon Rekognition)",
    ["backend", "operation"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
UPSTREAM_ERRORS = Counter(
    "carpose_upstream_errors_total", "Failed upstream calls by error code", ["backend", "code"], registry=REGISTRY
)


# The series each metric type exposes (the text format's names; `_created` is prometheus_client's own).
EXPOSED_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}


def exported_metric_names() -> set[str]:
    """Names as Prometheus sees them (histograms add _bucket/_sum/_count, counters _total)."""
    names: set[str] = set()
    for metric in REGISTRY.collect():
        names.add(metric.name)  # the family name, as prometheus_client registers it
        names.update(metric.name + suffix for suffix in EXPOSED_SUFFIXES.get(metric.type, ()))
    return names
