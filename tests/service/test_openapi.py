"""The OpenAPI document: /pose's success and error responses are described by their schemas."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.api.main import create_app
from service.schemas import PoseResponse
from service.settings import REPO_ROOT
from tests.service.helpers import RESPONSE_FIELDS, tiny_settings

ERROR_STATUSES = ("400", "413", "415", "422", "503")


@pytest.fixture(scope="module")
def openapi(tmp_path_factory: pytest.TempPathFactory) -> dict:
    # The document needs no model: build the app without running its lifespan.
    from fastapi.testclient import TestClient

    app = create_app(tiny_settings(Path(tmp_path_factory.mktemp("no_model"))))
    response = TestClient(app).get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def resolve(doc: dict, ref: str) -> dict:
    assert ref.startswith("#/components/schemas/")
    return doc["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_pose_200_references_pose_response(openapi: dict) -> None:
    post = openapi["paths"]["/pose"]["post"]
    schema = post["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/PoseResponse"}
    properties = resolve(openapi, schema["$ref"])["properties"]
    assert set(properties) == set(PoseResponse.model_fields)
    assert set(RESPONSE_FIELDS) <= set(properties)
    assert properties["view"]["description"] and properties["azimuth_deg"]["description"]


def test_pose_errors_are_documented_with_the_error_schema(openapi: dict) -> None:
    responses = openapi["paths"]["/pose"]["post"]["responses"]
    for status in ERROR_STATUSES:
        assert status in responses, status
        schema = responses[status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (status, schema)
        assert responses[status]["description"]
    error = resolve(openapi, "#/components/schemas/ErrorResponse")
    detail = resolve(openapi, error["properties"]["error"]["$ref"])
    assert set(detail["properties"]) == {"code", "message"}


def test_pose_request_is_multipart_with_image_and_render(openapi: dict) -> None:
    post = openapi["paths"]["/pose"]["post"]
    body = post["requestBody"]["content"]["multipart/form-data"]["schema"]
    form = resolve(openapi, body["$ref"]) if "$ref" in body else body
    assert "image" in form["properties"] and form["required"] == ["image"]
    names = [p["name"] for p in post["parameters"]]
    assert names == ["render", "render_parts", "min_confidence", "target_view"]
    assert post["parameters"][1]["schema"]["default"] is True  # the image keeps its parts unless asked
    floor = post["parameters"][2]
    assert not floor["required"]
    bounds = [s for s in floor["schema"].get("anyOf", [floor["schema"]]) if s.get("type") == "number"]
    assert bounds and bounds[0]["minimum"] == 0.0 and bounds[0]["maximum"] == 1.0


def test_operational_routes_are_documented_with_their_models(openapi: dict) -> None:
    models = {"/healthz": "HealthResponse", "/readyz": "HealthResponse", "/model": "ModelInfoResponse"}
    models["/backends"] = "BackendsResponse"
    for path, model in models.items():
        schema = openapi["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{model}"}, path
    assert "get" in openapi["paths"]["/metrics"]


def test_the_documented_version_is_the_packages(openapi: dict) -> None:
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    assert f'version = "{openapi["info"]["version"]}"' in pyproject
