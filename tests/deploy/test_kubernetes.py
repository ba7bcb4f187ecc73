"""deploy/kubernetes: every overlay renders and validates, and says what the service needs. No cluster needed."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from pydantic import ValidationError

from service.gate import decode_budget_bytes
from service.metrics import exported_metric_names
from service.settings import Settings
from tests.deploy import helpers as h
from tests.deploy import kube as k

SETTINGS_ENV = {f"{Settings.model_config.get('env_prefix', '')}{name}".upper() for name in Settings.model_fields}

# checkov checks that the rendered overlays may fail, each with its reason (also in docs/deploy.md).
CHECKOV_SKIPS = {
    # Images are named by tag in the repository; a release pins the digest with
    # `kustomize edit set image carpose=REGISTRY/carpose@sha256:...` (docs/deploy.md, "Kubernetes").
    "CKV_K8S_43": "Image should use digest",
    # The overlays pin the tag (VERSION-cpu, VERSION-gpu), so a node's copy is the right image: IfNotPresent.
    "CKV_K8S_15": "Image Pull Policy should be Always",
}

# An overlay and the components added to it, named "overlay+component+...".
VARIANTS = {
    name: (k.KUSTOMIZE_ROOT / "overlays" / name.split("+")[0], name.split("+")[1:])
    for name in (
        "cpu",
        "gpu",
        "cpu+keda",
        "gpu+keda+servicemonitor",
        "cpu+servicemonitor+namespace",
        "gpu+keda+servicemonitor+namespace",
    )
}
VERSION = h.REPO_ROOT.joinpath("pyproject.toml").read_text().split('version = "', 1)[1].split('"')[0]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for name, (overlay, components) in VARIANTS.items():
        if components:
            workdir = tmp_path_factory.mktemp(name.replace("+", "-"))
            dirs = [k.KUSTOMIZE_ROOT / "components" / c for c in components]
            out[name] = k.render_with_components(overlay, dirs, workdir)
        else:
            out[name] = k.render(overlay)
    return out


def deployment_container(objects: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    pod = k.one(objects, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return pod, container


def configmap_data(objects: list[dict[str, Any]]) -> dict[str, str]:
    return k.one(objects, "ConfigMap")["data"]


def settings_from(data: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The Settings a pod gets from this ConfigMap (the image's own POSE_* variables aside)."""
    with monkeypatch.context() as m:
        for name in SETTINGS_ENV:
            m.delenv(name, raising=False)
        for name, value in data.items():
            m.setenv(name, value)
        return Settings()


def dockerfile_cmd() -> list[str]:
    gpu = next(s for s in h.dockerfile_stages() if s.name == "gpu")
    cmd = h.exec_form(next(i.args for i in gpu.instructions if i.keyword == "CMD"))
    assert cmd is not None
    return cmd


# ------------------------------------------------------------------------------------------------- rendering


@pytest.mark.parametrize("directory", ["base", "overlays/cpu", "overlays/gpu"])
def test_every_kustomization_renders(directory: str) -> None:
    objects = k.render(k.KUSTOMIZE_ROOT / directory)
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == sorted(
        [
            "ConfigMap",
            "Deployment",
            "HorizontalPodAutoscaler",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Service",
            "ServiceAccount",
        ]
    ), "the base needs no CRD (KEDA, Prometheus Operator) and leaves the Namespace to the user"
    for obj in objects:
        assert obj["metadata"].get("namespace") == "carpose", f"{obj['kind']} is not in namespace carpose"


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_object_of_every_variant_is_in_one_namespace(
    variant: str, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    namespaced = [o for o in rendered[variant] if o["kind"] != "Namespace"]
    assert {o["metadata"].get("namespace") for o in namespaced} == {"carpose"}
    namespaces = k.of_kind(rendered[variant], "Namespace")
    assert len(namespaces) == ("namespace" in VARIANTS[variant][1])
    for namespace in namespaces:
        assert namespace["metadata"]["name"] == "carpose"
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_every_overlay_is_tested() -> None:
    overlays = {p.name for p in (k.KUSTOMIZE_ROOT / "overlays").iterdir() if p.is_dir()}
    components = {p.name for p in (k.KUSTOMIZE_ROOT / "components").iterdir() if p.is_dir()}
    assert overlays == set(k.OVERLAYS) == {v[0].name for v in VARIANTS.values()}
    assert components == set(k.COMPONENTS) == {c for v in VARIANTS.values() for c in v[1]}


def test_servicemonitor_component_adds_one_servicemonitor(rendered: dict[str, list[dict[str, Any]]]) -> None:
    assert not k.of_kind(rendered["gpu"], "ServiceMonitor")
    monitor = k.one(rendered["gpu+keda+servicemonitor"], "ServiceMonitor")
    service = k.one(rendered["gpu+keda+servicemonitor"], "Service")
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items(), "the ServiceMonitor does not select the Service"
    port_names = {p["name"] for p in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in port_names and endpoint["path"] == "/metrics"


# ------------------------------------------------------------------------------------------------ validation


def validate_builtin(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, k.KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_builtin_objects_validate_strictly_against_the_kubernetes_schema(
    variant: str, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    for obj in rendered[variant]:
        if (obj["apiVersion"], obj["kind"]) in k.CRD_SCHEMAS:
            continue
        try:
            validate_builtin(obj)
        except kubernetes_validate.SchemaNotFoundError:
            pytest.fail(f"{variant}: no schema for {obj['apiVersion']} {obj['kind']}: add its schema")
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{variant}: {obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.path)}")


def test_kubernetes_validation_rejects_an_unknown_field(rendered: dict[str, list[dict[str, Any]]]) -> None:
    deployment = json.loads(json.dumps(k.one(rendered["cpu"], "Deployment")))
    deployment["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFileSystem"] = True  # misspelt
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_builtin(deployment)


def crd_validator(api_version: str, kind: str) -> jsonschema.Draft7Validator:
    schema = k.strict(h.load_json(k.CRD_SCHEMAS[(api_version, kind)]))
    return jsonschema.Draft7Validator(schema)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_custom_resources_validate_against_their_published_schemas(
    variant: str, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    custom = [o for o in rendered[variant] if (o["apiVersion"], o["kind"]) in k.CRD_SCHEMAS]
    kinds = {o["kind"] for o in custom}
    assert ("ScaledObject" in kinds) == ("keda" in VARIANTS[variant][1])
    assert ("ServiceMonitor" in kinds) == ("servicemonitor" in VARIANTS[variant][1])
    for obj in custom:
        errors = [
            f"{e.message} at {list(e.absolute_path)}"
            for e in crd_validator(obj["apiVersion"], obj["kind"]).iter_errors(obj)
        ]
        assert not errors, f"{variant}: {obj['kind']}: {errors}"


def test_crd_validation_rejects_unknown_fields_and_wrong_types(rendered: dict[str, list[dict[str, Any]]]) -> None:
    scaled = json.loads(json.dumps(k.one(rendered["cpu+keda"], "ScaledObject")))
    validator = crd_validator(scaled["apiVersion"], scaled["kind"])
    assert validator.is_valid(scaled)
    typo = json.loads(json.dumps(scaled))
    typo["spec"]["minReplicas"] = 1
    assert not validator.is_valid(typo)
    wrong_type = json.loads(json.dumps(scaled))
    wrong_type["spec"]["maxReplicaCount"] = "ten"
    assert not validator.is_valid(wrong_type)


# --------------------------------------------------------------------------------------------------- checkov


def run_checkov(files: list[Path]) -> list[dict[str, Any]]:
    command = [k.checkov(), "--framework", "kubernetes", "--output", "json", "--quiet", "--skip-download"]
    for path in files:
        command += ["--file", str(path)]
    # BC_SKIP_MAPPING: no attempt to fetch guideline links from checkov's platform (there is no network).
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, check=False, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"}
    )
    assert result.returncode in (0, 1), f"checkov failed to run:\n{result.stderr[-3000:]}"
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert sum(r["summary"]["resource_count"] for r in reports) > 0, "checkov scanned nothing"
    return [check for r in reports for check in r["results"].get("failed_checks", [])]


def test_checkov_finds_nothing_beyond_the_documented_skips(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    files = []
    for variant, objects in rendered.items():
        path = tmp_path / f"{variant.replace('+', '-')}.yaml"
        path.write_text(yaml.safe_dump_all(objects))
        files.append(path)
    failed = run_checkov(files)
    unexpected = sorted(
        {f"{c['check_id']} {c['check_name']} ({c['resource']})" for c in failed if c["check_id"] not in CHECKOV_SKIPS}
    )
    assert not unexpected, f"checkov failures outside the documented skip list: {unexpected}"
    stale = set(CHECKOV_SKIPS) - {c["check_id"] for c in failed}
    assert not stale, f"skipped checks that no longer fail (remove them from the list and docs): {sorted(stale)}"


def test_checkov_skips_are_documented() -> None:
    doc = (h.REPO_ROOT / "docs" / "deploy.md").read_text()
    missing = [check for check in CHECKOV_SKIPS if check not in doc]
    assert not missing, f"docs/deploy.md does not explain the checkov skips {missing}"


# -------------------------------------------------------------------------------------------------- settings


@pytest.mark.parametrize("overlay", k.OVERLAYS)
def test_configmap_holds_only_valid_settings(
    overlay: str, rendered: dict[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = configmap_data(rendered[overlay])
    unknown = set(data) - SETTINGS_ENV
    assert not unknown, f"{overlay}: {sorted(unknown)} are not fields of service.settings.Settings"
    settings = settings_from(data, monkeypatch)
    assert settings.device == {"cpu": "cpu", "gpu": "cuda"}[overlay]


def test_a_malformed_overlay_value_fails_the_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    overlay = tmp_path / "bad"
    overlay.mkdir()
    spec = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(k.KUSTOMIZE_ROOT / "overlays" / "cpu", overlay)],
        "configMapGenerator": [{"name": "carpose", "behavior": "merge", "literals": ["POSE_MAX_QUEUE=lots"]}],
    }
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(spec))
    data = configmap_data(k.render(overlay))
    assert data["POSE_MAX_QUEUE"] == "lots"
    with pytest.raises(ValidationError):
        settings_from(data, monkeypatch)


@pytest.mark.parametrize("overlay", k.OVERLAYS)
def test_pod_gets_settings_only_from_the_configmap(overlay: str, rendered: dict[str, list[dict[str, Any]]]) -> None:
    _, container = deployment_container(rendered[overlay])
    configmap = k.one(rendered[overlay], "ConfigMap")["metadata"]["name"]
    assert container["envFrom"] == [{"configMapRef": {"name": configmap}}]
    names = {e["name"] for e in container.get("env", [])}
    unknown = names - SETTINGS_ENV - h.ALLOWED_NON_SETTINGS_ENV
    assert not unknown, f"{overlay}: {sorted(unknown)}"


# ------------------------------------------------------------------------------------------ pod and service


@pytest.mark.parametrize("overlay", k.OVERLAYS)
def test_probes_use_readyz_and_healthz_on_the_service_port(
    overlay: str, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    _, container = deployment_container(rendered[overlay])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    cmd = dockerfile_cmd()
    assert ports == {"http": int(cmd[cmd.index("--port") + 1])}
    for probe, path in (("startupProbe", "/readyz"), ("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path and get["port"] in ("http", ports["http"]), f"{probe}: {get}"
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120, "too little time to load a model"


@pytest.mark.parametrize("overlay", k.OVERLAYS)
def test_shutdown_lets_the_queue_drain(overlay: str, rendered: dict[str, list[dict[str, Any]]]) -> None:
    pod, container = deployment_container(rendered[overlay])
    sleep = container["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep"
    cmd = dockerfile_cmd()
    drain = float(cmd[cmd.index("--timeout-graceful-shutdown") + 1])
    # Kubernetes counts the grace period from the start of preStop; SIGTERM (uvicorn's drain) comes after it.
    assert pod["terminationGracePeriodSeconds"] > float(sleep[1]) + drain


@pytest.mark.parametrize("overlay", k.OVERLAYS)
def test_pod_is_locked_down(overlay: str, rendered: dict[str, list[dict[str, Any]]]) -> None:
    pod, container = deployment_container(rendered[overlay])
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001, "the image's carpose user (docker/Dockerfile USER)"
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"]
    account = k.one(rendered[overlay], "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == account["metadata"]["name"]


def test_writable_dirs_of_the_image_are_emptydirs(rendered: dict[str, list[dict[str, Any]]]) -> None:
    """Every directory the image points a writer at (ENV) sits on an emptyDir, since the root is read-only."""
    pod, container = deployment_container(rendered["gpu"])
    empty = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    mounted = [m["mountPath"] for m in container["volumeMounts"] if m["name"] in empty]
    gpu = next(s for s in h.dockerfile_stages() if s.name == "gpu")
    env = {n: v for i in gpu.instructions if i.keyword == "ENV" for n, v in h.env_assignments(i).items()}
    for name in ("XDG_CACHE_HOME", "FVCORE_CACHE"):
        assert any(env[name] == m or env[name].startswith(m + "/") for m in mounted), f"{name}={env[name]}"
    assert "/tmp" in mounted


def test_gpu_overlay_takes_one_gpu_and_cpu_overlay_none(rendered: dict[str, list[dict[str, Any]]]) -> None:
    pod, container = deployment_container(rendered["gpu"])
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["image"] == f"registry.example.com/carpose:{VERSION}-gpu"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    pod, container = deployment_container(rendered["cpu"])
    assert "nvidia.com/gpu" not in json.dumps(pod)
    assert container["image"] == f"registry.example.com/carpose:{VERSION}-cpu"


@pytest.mark.parametrize("overlay", k.OVERLAYS)
def test_image_tag_is_pinned_and_pulled_once_per_node(overlay: str, rendered: dict[str, list[dict[str, Any]]]) -> None:
    _, container = deployment_container(rendered[overlay])
    tag = container["image"].rsplit(":", 1)[1]
    assert tag not in ("latest", "cpu", "gpu") and tag.startswith(VERSION), tag
    assert container["imagePullPolicy"] == "IfNotPresent"


@pytest.mark.parametrize("overlay", k.OVERLAYS)
def test_resources_are_requested_and_limited(overlay: str, rendered: dict[str, list[dict[str, Any]]]) -> None:
    _, container = deployment_container(rendered[overlay])
    resources = container["resources"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[kind]), f"{overlay}: {kind} {resources[kind]}"


def test_cpu_memory_limit_covers_the_measured_peak_and_a_full_queue_of_large_images(
    rendered: dict[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/operations.md's worst case, from the overlay's settings: whole uploads held, bodies being received,
    the decode budget (full-size decodes at once, any format) and the reduced images."""
    measured_peak_mib = 884  # VmHWM from `python -m deploy.measure_pod` (docs/deploy.md)
    _, container = deployment_container(rendered["cpu"])
    settings = settings_from(configmap_data(rendered["cpu"]), monkeypatch)
    admitted = settings.inference_workers + settings.max_queue
    worst_bytes = (
        admitted * settings.max_upload_bytes
        + settings.max_uploads * 2**20
        + decode_budget_bytes(settings)
        + settings.max_decoded_images * 1.3e6
    )
    worst_mib = measured_peak_mib + worst_bytes / 2**20
    limit = container["resources"]["limits"]["memory"]
    assert limit.endswith("Gi")
    assert float(limit[:-2]) * 1024 >= worst_mib
    assert float(container["resources"]["requests"]["memory"][:-2]) * 1024 >= measured_peak_mib


@pytest.mark.parametrize("overlay", k.OVERLAYS)
def test_service_pdb_and_networkpolicy_select_the_pods(overlay: str, rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered[overlay]
    labels = k.one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert k.one(objects, "Service")["spec"]["selector"].items() <= labels.items()
    assert k.one(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    policy = k.one(objects, "NetworkPolicy")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["spec"]["ingress"] == [{"ports": [{"port": "http", "protocol": "TCP"}]}]
    assert k.one(objects, "Service")["spec"]["ports"][0]["targetPort"] == "http"


@pytest.mark.parametrize("overlay", k.OVERLAYS)
def test_prometheus_annotations_name_the_metrics_port(overlay: str, rendered: dict[str, list[dict[str, Any]]]) -> None:
    annotations = k.one(rendered[overlay], "Deployment")["spec"]["template"]["metadata"]["annotations"]
    _, container = deployment_container(rendered[overlay])
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == container["ports"][0]["containerPort"]


# ----------------------------------------------------------------------------------------------- autoscaling


def one_autoscaler(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """Exactly one of the HPA (base) and KEDA's ScaledObject (components/keda, which removes the HPA)."""
    found = k.of_kind(objects, "HorizontalPodAutoscaler") + k.of_kind(objects, "ScaledObject")
    assert len(found) == 1, f"expected one autoscaler, found {[o['kind'] for o in found]}"
    return found[0]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_one_autoscaler_owns_the_replica_count(variant: str, rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered[variant]
    scaler = one_autoscaler(objects)
    assert scaler["kind"] == ("ScaledObject" if "keda" in VARIANTS[variant][1] else "HorizontalPodAutoscaler")
    deployment = k.one(objects, "Deployment")
    assert scaler["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert scaler["spec"]["scaleTargetRef"]["kind"] == "Deployment"
    assert "replicas" not in deployment["spec"], "kubectl apply would reset the autoscaler's replica count"


@pytest.mark.parametrize("overlay", k.OVERLAYS)
def test_plain_hpa_scales_on_cpu_before_the_queue_fills(
    overlay: str, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    hpa = k.one(rendered[overlay], "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["minReplicas"] >= 1
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    target = metric["resource"]["target"]
    # Utilisation is of the request: below 100 % of it, so that pods are added while they still keep up.
    assert target["type"] == "Utilization" and 50 <= target["averageUtilization"] < 100
    _, container = deployment_container(rendered[overlay])
    assert "cpu" in container["resources"]["requests"], "a CPU HPA needs a CPU request"


@pytest.mark.parametrize("overlay", k.OVERLAYS)
def test_keda_scales_the_deployment_on_the_service_own_metrics(
    overlay: str, rendered: dict[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    variant = next(v for v, (o, components) in VARIANTS.items() if o.name == overlay and "keda" in components)
    objects = rendered[variant]
    scaled = k.one(objects, "ScaledObject")
    deployment = k.one(objects, "Deployment")
    assert scaled["spec"]["minReplicaCount"] >= 1
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus" and trigger["metricType"] == "AverageValue"
    query = trigger["metadata"]["query"]
    names = h.promql_metric_names(query)
    assert names == {"carpose_requests_in_flight"}, names
    assert names <= exported_metric_names()
    namespace = re.search(r'namespace="([^"]+)"', query)
    assert namespace and namespace.group(1) == deployment["metadata"]["namespace"]
    # The target: one request running per inference worker and as many waiting (docs/deploy.md).
    settings = settings_from(configmap_data(objects), monkeypatch)
    threshold = float(trigger["metadata"]["threshold"])
    assert threshold == 2 * settings.inference_workers
    assert threshold < settings.inference_workers + settings.max_queue, "would scale only once pods refuse work"
