"""The backend registry is the one description of the backends: routes, gates, /backends and the schema follow it."""

from __future__ import annotations

from fastapi.testclient import TestClient

from service.api.middleware import POSE_GATES
from service.backends.registry import BACKEND_NAMES, BACKENDS


def test_every_registered_backend_has_its_route_gate_and_entry(client: TestClient) -> None:
    openapi = client.get("/openapi.json").json()
    listed = client.get("/backends").json()["backends"]
    assert [b["name"] for b in listed] == list(BACKEND_NAMES)
    for spec, entry in zip(BACKENDS, listed, strict=True):
        assert "post" in openapi["paths"][spec.route], spec.route
        assert openapi["paths"][spec.route]["post"]["summary"] == spec.summary
        assert POSE_GATES[spec.route] == spec.name  # admitted by its own gate
        assert client.app.state.serving.gates[spec.name].workers == spec.workers(client.app.state.settings)
        assert (entry["route"], entry["label"]) == (spec.route, spec.label)


def test_the_response_schema_names_exactly_the_registered_backends(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert tuple(schema["PoseResponse"]["properties"]["backend"]["enum"]) == BACKEND_NAMES
    assert tuple(schema["BackendInfo"]["properties"]["name"]["enum"]) == BACKEND_NAMES


def test_names_routes_and_labels_are_unique() -> None:
    for field in ("name", "route", "label"):  # a gate each: keyed by name
        values = [getattr(spec, field) for spec in BACKENDS]
        assert len(set(values)) == len(values), field
