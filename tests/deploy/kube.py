"""Render the kustomize tree under deploy/kubernetes with `kubectl kustomize`, and the schemas to check it with."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.helpers import REPO_ROOT

KUSTOMIZE_ROOT = REPO_ROOT / "deploy" / "kubernetes"
OVERLAYS = ("cpu", "gpu")
COMPONENTS = ("keda", "namespace", "servicemonitor")
# The Kubernetes version the manifests are validated against (kubernetes-validate's bundled schemas); the
# same minor version as the kubectl that renders them here.
KUBERNETES_VERSION = "1.32.0"
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
# Custom resources and the vendored schema each is validated against (tests/deploy/schemas/README.md).
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): SCHEMA_DIR / "keda.sh_v1alpha1_scaledobject.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SCHEMA_DIR / "monitoring.coreos.com_v1_servicemonitor.json",
}
# checkov's own virtual environment (scripts/install_ci_tools.sh): its pins would downgrade the project's deps.
CHECKOV_VENV_BIN = REPO_ROOT / ".venv" / "tools" / "checkov" / "bin" / "checkov"


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.skip("kubectl is not installed (it renders deploy/kubernetes with `kubectl kustomize`)")
    return path


def render(directory: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize DIR` as a list of objects; a render error fails with kustomize's message."""
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {directory} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def render_with_components(overlay: Path, components: list[Path], workdir: Path) -> list[dict[str, Any]]:
    """An overlay with optional components added, as a user's own kustomization would add them."""
    # kustomize refuses absolute paths here, and a kustomization may not load files from outside its root
    # except whole directories: relative paths to the directories work from anywhere.
    spec = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(overlay, workdir)],
        "components": [os.path.relpath(c, workdir) for c in components],
    }
    (workdir / "kustomization.yaml").write_text(yaml.safe_dump(spec))
    return render(workdir)


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o.get("kind") == kind]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = of_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def strict(schema: Any) -> Any:
    """The schema with unknown fields refused wherever the CRD lists its fields and does not allow others."""
    schema = copy.deepcopy(schema)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


def checkov() -> str:
    if CHECKOV_VENV_BIN.is_file():
        return str(CHECKOV_VENV_BIN)
    path = shutil.which("checkov")
    if path is None:
        pytest.skip("checkov is not installed: run scripts/install_ci_tools.sh")
    return path
