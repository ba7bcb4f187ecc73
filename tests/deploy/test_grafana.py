"""The provisioned Grafana dashboard queries only metrics the service exports, through the provisioned source."""

from __future__ import annotations

import pytest

from service.metrics import exported_metric_names
from tests.deploy import helpers as h

DASHBOARDS = sorted((h.GRAFANA_DIR / "dashboards").glob("*.json"))


def _datasource_uids() -> set[str]:
    uids = set()
    for path in (h.GRAFANA_DIR / "provisioning" / "datasources").glob("*.y*ml"):
        uids.update(ds["uid"] for ds in h.load_yaml(path)["datasources"])
    return uids


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'histogram_quantile(0.95, sum by (le, route) (rate(a_bucket{route=~"/pose.*"}[$__rate_interval])))',
            {"a_bucket"},
        ),
        ("sum(rate(x_total[5m])) / clamp_min(sum(rate(y_count[5m] offset 1h)), 1e-9)", {"x_total", "y_count"}),
        ("sum without (instance) (g) > bool 0 and on(job) group_left(v) h", {"g", "h"}),
        ('max(i{code="model_loading", l!~"a{b}"}) * 100', {"i"}),
    ],
)
def test_promql_metric_name_parser(expr: str, names: set[str]) -> None:
    assert h.promql_metric_names(expr) == names


def test_there_is_a_dashboard() -> None:
    assert [p.name for p in DASHBOARDS] == ["carpose.json"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_queries_only_exported_metrics(path) -> None:
    exported = exported_metric_names()
    queries = h.dashboard_queries(h.load_json(path))
    assert queries
    for title, expr in queries:
        names = h.promql_metric_names(expr)
        assert names, f"{title!r}: no metric name found in {expr!r}"
        unknown = names - exported
        assert not unknown, f"{title!r} queries {sorted(unknown)}, not exported by service.metrics: {expr!r}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_covers_the_service_metrics(path) -> None:
    used = set()
    for _, expr in h.dashboard_queries(h.load_json(path)):
        used |= h.promql_metric_names(expr)
    for wanted in (
        "carpose_request_duration_seconds_bucket",
        "carpose_request_duration_seconds_count",
        "carpose_stage_duration_seconds_bucket",
        "carpose_errors_total",
        "carpose_queue_depth",
        "carpose_requests_in_flight",
        "carpose_upstream_errors_total",
    ):
        assert wanted in used, f"the dashboard shows no panel for {wanted}"
    quantiles = {q for q in ("0.5", "0.95", "0.99") for _, e in h.dashboard_queries(h.load_json(path)) if f"({q}," in e}
    assert quantiles == {"0.5", "0.95", "0.99"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_uses_the_provisioned_datasource(path) -> None:
    uids = _datasource_uids()

    def walk(node):
        if isinstance(node, dict):
            ds = node.get("datasource")
            if isinstance(ds, dict) and "uid" in ds:
                assert ds["uid"] in uids, f"datasource uid {ds['uid']!r} is not provisioned ({sorted(uids)})"
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(h.load_json(path))


def test_dashboard_provider_reads_the_mounted_directory() -> None:
    grafana = h.compose()["services"]["grafana"]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in grafana["volumes"]}
    provider_paths = {
        p["options"]["path"]
        for path in (h.GRAFANA_DIR / "provisioning" / "dashboards").glob("*.y*ml")
        for p in h.load_yaml(path)["providers"]
    }
    assert provider_paths == {mounts["./docker/grafana/dashboards"]}
    assert mounts["./docker/grafana/provisioning"] == "/etc/grafana/provisioning"
    datasource_urls = {
        ds["url"] for path in (h.GRAFANA_DIR / "provisioning" / "datasources").glob("*.y*ml")
        for ds in h.load_yaml(path)["datasources"]
    }  # fmt: skip
    assert datasource_urls == {"http://prometheus:9090"}
