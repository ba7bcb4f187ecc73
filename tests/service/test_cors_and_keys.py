"""CORS (POSE_CORS_ORIGINS) with real preflights through uvicorn, and the optional API keys (POSE_API_KEYS,
POSE_API_KEYS_FILE reloaded on change and on SIGHUP, POSE_METRICS_REQUIRE_KEY). Real inference with the tiny model.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from devtools.uvicorn_server import Server, server_env, uvicorn_server
from tests.service.helpers import assert_error, running_client, tiny_settings
from tests.service.images import jpeg_bytes

SHOP = "https://shop.example"
KEY = "k-3f9a2c7e-listing-intake"


def pose_files() -> dict:
    return {"image": ("car.jpg", jpeg_bytes(), "image/jpeg")}


@pytest.fixture(scope="module")
def cors_server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = server_env(tiny_model_dir, cors_origins=f"{SHOP},https://admin.example")
    log = tmp_path_factory.mktemp("cors") / "uvicorn.log"
    with uvicorn_server(env, log, 120.0, ("--log-level", "warning")) as server:
        yield server


def preflight(server: Server, origin: str, path: str = "/pose", headers: str = "content-type, x-api-key"):
    return httpx.options(
        f"{server.url}{path}",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": headers},
    )


def test_a_listed_origin_gets_a_preflight_answer(cors_server: Server) -> None:
    response = preflight(cors_server, SHOP)
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == SHOP
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = {h.strip() for h in response.headers["access-control-allow-headers"].split(",")}
    assert {"content-type", "x-api-key", "authorization"} <= allowed
    assert response.headers["vary"] == "Origin"


def test_a_listed_origin_gets_headers_on_answers_and_errors(cors_server: Server) -> None:
    ok = httpx.post(f"{cors_server.url}/pose", files=pose_files(), headers={"Origin": SHOP}, timeout=60)
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == SHOP
    bad = httpx.post(f"{cors_server.url}/pose", files={"image": ("x", b"text", "text/plain")}, headers={"Origin": SHOP})
    assert_error(bad, 415, "unsupported_media_type")
    assert bad.headers["access-control-allow-origin"] == SHOP
    assert "Retry-After" in bad.headers["access-control-expose-headers"]


def test_other_origins_and_the_page_get_no_cors_headers(cors_server: Server) -> None:
    refused = preflight(cors_server, "https://evil.example")
    assert "access-control-allow-origin" not in refused.headers
    assert_error(refused, 405, "method_not_allowed")
    plain = httpx.get(f"{cors_server.url}/backends", headers={"Origin": "https://evil.example"})
    assert plain.status_code == 200 and "access-control-allow-origin" not in plain.headers
    page = httpx.get(f"{cors_server.url}/", headers={"Origin": SHOP})
    assert page.status_code == 200 and "access-control-allow-origin" not in page.headers
    odd_header = preflight(cors_server, SHOP, headers="x-debug")  # not a header the API reads
    assert "access-control-allow-origin" not in odd_header.headers


def test_no_cors_without_the_setting(tiny_model_dir: Path) -> None:
    with running_client(tiny_settings(tiny_model_dir), wait_ready=False) as client:
        response = client.options("/pose", headers={"Origin": SHOP, "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in response.headers


@pytest.fixture(scope="module")
def keyed(tiny_model_dir: Path) -> Iterator[TestClient]:
    with running_client(tiny_settings(tiny_model_dir, api_keys=[KEY, "second-key"])) as client:
        yield client


def test_api_routes_need_a_key(keyed: TestClient) -> None:
    missing = assert_error(keyed.post("/pose", files=pose_files()), 401, "unauthorized")
    assert "X-API-Key" in missing["error"]["message"]
    wrong = keyed.post("/pose", files=pose_files(), headers={"X-API-Key": KEY + "x"})
    assert_error(wrong, 401, "unauthorized")
    assert wrong.headers["www-authenticate"].startswith('Bearer realm="carpose"')
    assert_error(keyed.get("/model"), 401, "unauthorized")
    assert_error(keyed.get("/backends", headers={"Authorization": "Basic " + KEY}), 401, "unauthorized")


def test_either_header_carries_the_key(keyed: TestClient) -> None:
    assert keyed.post("/pose", files=pose_files(), headers={"X-API-Key": KEY}).status_code == 200
    assert keyed.post("/pose", files=pose_files(), headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert keyed.get("/backends", headers={"X-API-Key": "second-key"}).status_code == 200


def test_probes_page_docs_and_metrics_stay_open(keyed: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/", "/docs", "/openapi.json", "/static/app.js"):
        assert keyed.get(path).status_code == 200, path


def test_keys_never_reach_metrics(keyed: TestClient) -> None:
    keyed.post("/pose", files=pose_files(), headers={"X-API-Key": "attacker-guess-123"})
    keyed.get("/model", headers={"X-API-Key": KEY})
    metrics = keyed.get("/metrics").text
    assert KEY not in metrics and "attacker-guess-123" not in metrics
    assert 'code="unauthorized"' in metrics


def test_openapi_declares_the_schemes(keyed: TestClient) -> None:
    schema = keyed.get("/openapi.json").json()
    assert set(schema["components"]["securitySchemes"]) == {"APIKeyHeader", "BearerKey"}
    assert schema["paths"]["/pose"]["post"]["security"] == [{"APIKeyHeader": []}, {"BearerKey": []}]
    assert "security" not in schema["paths"]["/healthz"]["get"]
    assert "401" in schema["paths"]["/pose"]["post"]["responses"]


def test_metrics_can_require_the_key(tiny_model_dir: Path) -> None:
    settings = tiny_settings(tiny_model_dir, api_keys=[KEY], metrics_require_key=True)
    with running_client(settings, wait_ready=False) as client:
        assert_error(client.get("/metrics"), 401, "unauthorized")
        assert client.get("/metrics", headers={"X-API-Key": KEY}).status_code == 200
        assert client.get("/healthz").status_code == 200


def test_the_key_file_is_reloaded_when_it_changes(tiny_model_dir: Path, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# listing partners\nold-key\n\n")
    with running_client(tiny_settings(tiny_model_dir, api_keys_file=keys), wait_ready=False) as client:
        assert client.get("/backends", headers={"X-API-Key": "old-key"}).status_code == 200
        assert_error(client.get("/backends", headers={"X-API-Key": "# listing partners"}), 401, "unauthorized")
        keys.write_text("new-key\n")
        time.sleep(1.2)  # the file is looked at once a second
        assert_error(client.get("/backends", headers={"X-API-Key": "old-key"}), 401, "unauthorized")
        assert client.get("/backends", headers={"X-API-Key": "new-key"}).status_code == 200


def test_a_missing_key_file_keeps_the_api_closed(tiny_model_dir: Path, tmp_path: Path) -> None:
    settings = tiny_settings(tiny_model_dir, api_keys_file=tmp_path / "absent")
    with running_client(settings, wait_ready=False) as client:
        assert_error(client.get("/backends", headers={"X-API-Key": ""}), 401, "unauthorized")
        assert client.get("/healthz").status_code == 200


def test_sighup_reloads_the_key_file_and_keys_stay_out_of_the_log(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Through uvicorn: the file is rewritten with the same size and mtime (a change the stat check cannot
    see), so only the SIGHUP can make the new key valid."""
    keys = tmp_path / "keys"
    keys.write_text("key-aaaa\n")
    stamp = keys.stat()
    env = {"POSE_MODEL_DIR": str(tiny_model_dir), "POSE_DEVICE": "cpu", "POSE_API_KEYS_FILE": str(keys)}
    with uvicorn_server(env, tmp_path / "uvicorn.log", 120.0, ("--log-level", "info")) as server:
        url = f"{server.url}/backends"
        assert httpx.get(url, headers={"X-API-Key": "key-aaaa"}).status_code == 200
        keys.write_text("key-bbbb\n")
        os.utime(keys, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
        time.sleep(1.2)
        assert httpx.get(url, headers={"X-API-Key": "key-aaaa"}).status_code == 200  # not seen yet
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while httpx.get(url, headers={"X-API-Key": "key-bbbb"}).status_code != 200:
            assert time.monotonic() < deadline, server.log_tail()
            time.sleep(0.1)
        assert httpx.get(url, headers={"X-API-Key": "key-aaaa"}).status_code == 401
        assert server.process.poll() is None  # SIGHUP did not stop the server
        log = server.log_tail(100_000)
    assert "key-aaaa" not in log and "key-bbbb" not in log
    assert "API keys loaded" in log
