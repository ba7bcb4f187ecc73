"""The layers' import contract (docs/architecture.md), read from the source with `ast`: nothing is imported.

- `service` (the runtime) never imports `models` (training, evaluation, dataset tools), nor training-only packages;
- only the HTTP edge, `service.api`, imports FastAPI or Starlette, and nothing outside it imports the edge;
- `service.postprocess` imports only the standard library, numpy and itself;
- the pipeline and the runtime use a backend through its Protocol (`service.backends.base`), never `getattr`.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from service.settings import REPO_ROOT

# Not in the serving images: the training layer, and what only the `train` extra installs.
TRAINING_ONLY = frozenset({"models", "matplotlib"})
POSTPROCESS_ALLOWED = frozenset(sys.stdlib_module_names) | {"numpy", "__future__"}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in `source`, relative ones resolved against `module`."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                yield node.lineno, ".".join([*base, *([node.module] if node.module else [])])
            else:
                yield node.lineno, node.module or ""


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def violations(
    root: str,
    allowed: frozenset[str] | None = None,
    forbidden: frozenset[str] = frozenset(),
    skip: str | None = None,
) -> list[str]:
    """Imports of the package `root` (less its subpackage `skip`) whose top-level name, or whole name, is
    forbidden, or whose top-level name is not allowed (own package always is)."""
    found = []
    for path in sorted((REPO_ROOT / Path(*root.split("."))).rglob("*.py")):
        module = module_name(path)
        if skip is not None and within(module, skip):
            continue
        for line, name in imported_modules(path.read_text(), module, path.name == "__init__.py"):
            top = name.split(".")[0]
            own = within(name, root)
            banned = top in forbidden or any(within(name, f) for f in forbidden if "." in f)
            if banned or (allowed is not None and not own and top not in allowed):
                found.append(f"{path.relative_to(REPO_ROOT)}:{line} imports {name}")
    return found


# Development only: the tests, the benchmarks and their shared tools.
DEVELOPMENT = frozenset({"tests", "benchmarks", "devtools"})


# The one way up: the `carpose` entry point registers the training commands where they are installed
# (service.cli.training_installed), so a serving-only install runs without them.
ENTRY_POINT_HOOK = ("service/cli.py:", " imports models.cli")


def test_the_runtime_never_imports_training() -> None:
    found = violations("service", forbidden=TRAINING_ONLY | DEVELOPMENT)
    hook = [v for v in found if v.startswith(ENTRY_POINT_HOOK[0]) and v.endswith(ENTRY_POINT_HOOK[1])]
    assert len(hook) == 1, found
    assert [v for v in found if v not in hook] == []


# The HTTP edge: the web framework and the package that wraps it.
EDGE = "service.api"
WEB_FRAMEWORK = frozenset({"fastapi", "fastapi_offline", "starlette", EDGE})


def test_only_the_http_edge_imports_the_web_framework() -> None:
    assert violations("service", forbidden=WEB_FRAMEWORK, skip=EDGE) == []
    assert violations("models", forbidden=WEB_FRAMEWORK) == []


def test_the_edge_check_sees_the_edge() -> None:
    """Guards the check itself: the edge does import FastAPI and Starlette, and the scan sees it."""
    found = " ".join(violations(EDGE, forbidden=WEB_FRAMEWORK - {EDGE}))
    assert "imports fastapi" in found and "imports starlette" in found


# Every module that is handed a backend: it calls what the Protocol declares, and probes nothing with getattr.
BACKEND_USERS = (
    "service/runtime.py",
    "service/response.py",
    "service/scoring.py",
    "service/batch.py",
    "service/model_state.py",
    "service/api/pipeline.py",
    "service/api/dependencies.py",
    "service/api/routers/pose.py",
    "service/api/routers/backends.py",
    "service/api/routers/health.py",
    "service/api/routers/sagemaker.py",
)


def getattr_calls(source: str) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
    ]


def test_backends_are_used_through_their_protocol() -> None:
    assert getattr_calls("x = getattr(backend, 'device', 'cpu')") == [1]  # the scan sees a probe
    for name in BACKEND_USERS:
        assert getattr_calls((REPO_ROOT / name).read_text()) == [], name


def test_training_and_the_benchmarks_never_import_the_tests() -> None:
    assert violations("models", forbidden=DEVELOPMENT) == []
    assert violations("benchmarks", forbidden=frozenset({"tests"})) == []


def test_postprocess_imports_only_the_standard_library_and_numpy() -> None:
    assert violations("service.postprocess", allowed=POSTPROCESS_ALLOWED) == []


def test_the_training_layer_builds_on_the_runtime() -> None:
    """Guards the check itself: `models` does import `service`, and the scan sees it."""
    assert violations("models", forbidden=frozenset({"service"}))


def test_relative_imports_are_resolved() -> None:
    source = "from ..modeling import carpose_cfg\nfrom . import cars\nimport torch\nfrom models.config import x\n"
    assert list(imported_modules(source, "service.backends.detectron", is_package=False)) == [
        (1, "service.modeling"),
        (2, "service.backends"),
        (3, "torch"),
        (4, "models.config"),
    ]


# Serving with the training layer and the `train` extra made unimportable: what the runtime images hold.
SERVE_WITHOUT_TRAINING = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError("not in the serving image: " + name)
sys.meta_path.insert(0, Block())
import numpy as np
from fastapi.testclient import TestClient
from service.api.main import create_app
from service.settings import Settings
from tests.service.images import jpeg_bytes
app = create_app(Settings(model_dir=sys.argv[1], device="cpu"))
with TestClient(app) as client:
    assert app.state.model.wait(120), app.state.model.error
    response = client.post("/pose", files={{"image": ("car.jpg", jpeg_bytes(), "image/jpeg")}})
    assert response.status_code == 200, response.text
from service.cli import build_parser
commands = set(build_parser()._subparsers._group_actions[0].choices)
assert commands == {{"predict", "batch", "serve"}}, commands
print("served")
"""


def carpose_commands() -> set[str]:
    from service.cli import build_parser

    return set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]


def test_carpose_has_the_training_commands_where_they_are_installed() -> None:
    training = {"train", "eval", "train-views", "train-roll", "eval-roll", "turntable", "report", "data"}
    assert carpose_commands() == {"predict", "batch", "serve"} | training


def test_the_runtime_serves_without_the_training_layer(tiny_model_dir: Path) -> None:
    """What the import scan cannot see (a dependency that imports them) is caught by running it."""
    script = SERVE_WITHOUT_TRAINING.format(blocked=set(TRAINING_ONLY))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", script, str(tiny_model_dir)], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0 and "served" in result.stdout, result.stderr[-3000:]
