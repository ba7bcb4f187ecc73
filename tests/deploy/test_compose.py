"""docker-compose.yml: settings-only environment, GPU reservation, ports, Prometheus scrape, validation against the
Compose Specification's JSON schema (vendored, offline) and by `docker compose config` where installed."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from service.settings import Settings
from tests.deploy import helpers as h

SETTINGS_ENV = {f"{Settings.model_config.get('env_prefix', '')}{name}".upper() for name in Settings.model_fields}


@pytest.fixture(scope="module")
def spec() -> dict:
    return h.compose()


@pytest.fixture(scope="module")
def image_services(spec: dict) -> dict[str, dict]:
    services = h.image_services(spec)
    assert {"pose", "train"} <= set(services), f"services built from docker/Dockerfile: {sorted(services)}"
    return services


@pytest.fixture(scope="module")
def pose_services(image_services: dict[str, dict]) -> dict[str, dict]:
    """The services that run the HTTP app (publish a port), as opposed to `train`."""
    return {name: svc for name, svc in image_services.items() if svc.get("ports")}


def test_settings_env_prefix_is_pose() -> None:
    assert Settings.model_config.get("env_prefix") == "POSE_"


def test_pose_services_set_only_variables_that_settings_reads(image_services: dict[str, dict]) -> None:
    for name, svc in image_services.items():
        unknown = h.env_names(svc) - SETTINGS_ENV - h.ALLOWED_NON_SETTINGS_ENV
        assert not unknown, (
            f"service {name!r} sets {sorted(unknown)}, which service.settings.Settings does not read "
            f"(known: POSE_ + {sorted(Settings.model_fields)}; allowed others: tests/deploy/helpers.py)"
        )


def test_pose_services_pass_every_setting(pose_services: dict[str, dict]) -> None:
    for name, svc in pose_services.items():
        missing = SETTINGS_ENV - h.env_names(svc)
        assert not missing, f"{name}: {sorted(missing)} cannot be set through docker compose"


def test_settings_defaults_are_not_duplicated_in_compose(pose_services: dict[str, dict]) -> None:
    """Only POSE_MODEL_DIR (a path inside the image) has a value; the rest pass through, so that an unset
    variable keeps the default of service/settings.py and never becomes an empty string."""
    for name, svc in pose_services.items():
        with_value = {e.split("=", 1)[0] for e in svc["environment"] if "=" in e}
        assert with_value <= {"POSE_MODEL_DIR"}, f"{name}: {sorted(with_value)}"


def test_no_env_file_smuggles_other_variables(spec: dict) -> None:
    for name, svc in spec["services"].items():
        assert "env_file" not in svc, f"{name}: env_file would bypass the settings-only environment check"


def test_allowed_non_settings_variables_are_documented() -> None:
    doc = h.DEPLOY_DOC.read_text()
    missing = sorted(n for n in h.ALLOWED_NON_SETTINGS_ENV if f"`{n}`" not in doc)
    assert not missing, f"docs/settings.md does not document {missing}"


def test_pose_gets_a_gpu_and_cpu_variant_does_not(spec: dict, image_services: dict[str, dict]) -> None:
    for name in ("pose", "train"):
        devices = spec["services"][name]["deploy"]["resources"]["reservations"]["devices"]
        assert any("gpu" in d.get("capabilities", []) for d in devices), f"{name} reserves no GPU"
    cpu = image_services.get("pose-cpu")
    if cpu is not None:
        assert "deploy" not in cpu
        assert cpu["build"]["target"] == "cpu"
        assert "cpu" in cpu.get("profiles", [])
    assert spec["services"]["pose"]["build"]["target"] == "gpu"
    assert "profiles" not in spec["services"]["pose"], "`docker compose up` must start pose"


def test_pose_port_healthcheck_restart_and_models_volume(pose_services: dict[str, dict]) -> None:
    for name, svc in pose_services.items():
        assert [p[2] for p in h.published_ports(svc)] == [8000], name
        assert svc.get("restart") in {"unless-stopped", "always"}, name
        test = " ".join(svc["healthcheck"]["test"])
        assert "/readyz" in test and ":8000" in test, name
        mounts = [
            h.resolve_defaults(v) if isinstance(v, str) else f"{v['source']}:{v['target']}" for v in svc["volumes"]
        ]
        assert any(m.split(":")[1] == "/models" for m in mounts), f"{name}: no models volume at /models: {mounts}"


def test_train_profile_runs_the_gpu_recipe(spec: dict) -> None:
    train = spec["services"]["train"]
    assert train["profiles"] == ["train"]
    argv = train["entrypoint"] + train.get("command", [])
    assert argv[:2] == ["carpose", "train"]
    assert argv[argv.index("--recipe") + 1] == "gpu_r50_fpn"
    dataset = argv[argv.index("--dataset") + 1]
    output = argv[argv.index("--output-dir") + 1]
    targets = [h.resolve_defaults(v).split(":")[1] for v in train["volumes"]]
    assert dataset in targets, f"dataset {dataset} is not mounted: {targets}"
    assert any(output.startswith(t.rstrip("/") + "/") for t in targets), f"{output} is not on a mounted volume"
    assert (h.REPO_ROOT / "models" / "recipes" / "gpu_r50_fpn.yaml").is_file()


def test_train_reads_the_dataset_from_the_one_data_root(spec: dict) -> None:
    """The same variable and default as models/paths.py (and so as the CLI and the tests)."""
    from models.paths import DATA_ROOT_VARIABLE, DEFAULT_DATA_ROOT

    sources = [v.rsplit(":", 2)[0] for v in spec["services"]["train"]["volumes"] if v.endswith(":/data/car-parts:ro")]
    assert sources == [f"${{{DATA_ROOT_VARIABLE}:-{DEFAULT_DATA_ROOT.as_posix()}}}/car-parts"]


def test_monitoring_ports_bind_to_localhost_only(spec: dict) -> None:
    for name in ("prometheus", "grafana"):
        ports = h.published_ports(spec["services"][name])
        assert ports and all(ip == "127.0.0.1" for ip, _, _ in ports), f"{name}: {ports}"


def test_config_files_mounted_by_compose_exist(spec: dict) -> None:
    for name, svc in spec["services"].items():
        for volume in svc.get("volumes", []):
            source = h.resolve_defaults(volume).split(":")[0] if isinstance(volume, str) else volume["source"]
            if source.startswith("./docker/"):
                assert (h.REPO_ROOT / source).exists(), f"{name}: {source} does not exist"


def test_prometheus_scrapes_every_pose_service_metrics(pose_services: dict[str, dict]) -> None:
    config = h.load_yaml(h.PROMETHEUS_CONFIG)
    scraped = set()
    for job in config["scrape_configs"]:
        if job.get("metrics_path", "/metrics") != "/metrics" or job.get("scheme", "http") != "http":
            continue
        for static in job.get("static_configs", []):
            scraped.update(static.get("targets", []))
    for name, svc in pose_services.items():
        for _, _, container_port in h.published_ports(svc):
            assert f"{name}:{container_port}" in scraped, f"prometheus does not scrape {name}:{container_port}/metrics"


def test_prometheus_config_is_mounted_where_prometheus_reads_it(spec: dict) -> None:
    prom = spec["services"]["prometheus"]
    assert "./docker/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prom["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prom["command"]


def test_grafana_is_secure_by_default(spec: dict) -> None:
    env = {
        k: h.resolve_defaults(v) for k, _, v in (e.partition("=") for e in spec["services"]["grafana"]["environment"])
    }
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert env["GF_AUTH_DISABLE_LOGIN_FORM"] == "true", "admin/admin must not be usable out of the box"
    assert env["GF_AUTH_BASIC_ENABLED"] == "false"
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env or "admin" not in env["GF_SECURITY_ADMIN_PASSWORD"]


COMPOSE_SCHEMA = Path(__file__).resolve().parent / "schemas" / "compose-spec.json"


def interpolated(node: Any) -> Any:
    """The file as Compose sees it with no variable set: every ${VAR:-default} replaced by its default."""
    if isinstance(node, dict):
        return {key: interpolated(value) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolated(value) for value in node]
    return h.resolve_defaults(node) if isinstance(node, str) else node


def compose_spec_errors(spec: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(h.load_json(COMPOSE_SCHEMA))
    return [f"{e.message} at {list(e.absolute_path)}" for e in validator.iter_errors(spec)]


def test_compose_file_validates_against_the_compose_specification(spec: dict) -> None:
    """What Docker Compose v2 checks (its loader validates against this schema), with no Docker installed."""
    assert not compose_spec_errors(spec)
    assert not compose_spec_errors(interpolated(spec))


def test_compose_schema_check_rejects_what_compose_v2_rejects(spec: dict) -> None:
    misspelt = copy.deepcopy(spec)
    misspelt["services"]["pose"]["healtcheck"] = misspelt["services"]["pose"].pop("healthcheck")
    assert any("healtcheck" in e for e in compose_spec_errors(misspelt))
    wrong_type = copy.deepcopy(spec)
    wrong_type["services"]["pose"]["restart"] = ["unless-stopped"]  # a string, not a list
    assert compose_spec_errors(wrong_type)


def _compose_command() -> list[str] | None:
    # The v2 plugin first: it is what the README's `docker compose` runs. Debian's docker-compose 1.29 (end of
    # life) is the fallback; the schema test above covers v2's rules where neither is installed.
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_docker_compose_config_validates() -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("neither docker-compose nor the docker compose plugin is installed (scripts/install_ci_tools.sh)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSE_", "CARPOSE_", "COMPOSE_", "GRAFANA_"))}
    result = subprocess.run(
        [*command, "-f", str(h.COMPOSE_FILE), "--profile", "cpu", "--profile", "train", "config", "--quiet"],
        cwd=h.REPO_ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
