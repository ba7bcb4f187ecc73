"""The prepared GPU check (scripts/gpu_check.sh, devtools/gpu_check.py, docs/gpu.md) agrees with what it checks.

It runs where no GPU is and nothing can be installed, so a package the check imports that neither travels as a
wheel nor is on the machine would only show up there, at the cost of a lent machine. These tests catch that here:
a new runtime dependency or import must be sorted into CARRIED, MACHINE or NOT_NEEDED first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from devtools.gpu_check import (
    CARRIED,
    CARRY,
    DATA_DIR,
    DETECTRON2,
    MACHINE,
    NOT_NEEDED,
    PROJECT,
    SOURCE_ONLY,
    WHEEL_DIR,
    canonical,
    project_dependencies,
    requirement_names,
)
from service.settings import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "gpu_check.sh"
KNOWN = CARRIED | MACHINE | set(NOT_NEEDED) | PROJECT


def run_python(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MALLOC_MMAP_THRESHOLD_": "131072"}
    return subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_the_sets_are_disjoint() -> None:
    assert not CARRIED & MACHINE
    assert not (CARRIED | MACHINE) & set(NOT_NEEDED)
    assert SOURCE_ONLY <= CARRIED and DETECTRON2 in CARRIED


def test_every_runtime_dependency_is_carried_on_the_machine_or_not_needed() -> None:
    unsorted = requirement_names(project_dependencies()) - KNOWN
    assert not unsorted, f"pyproject.toml dependencies the GPU check does not account for: {sorted(unsorted)}"


def test_what_each_carried_package_needs_travels_or_is_on_the_machine() -> None:
    """Read from .venv's metadata: `prepare` carries exactly .venv's versions."""
    missing = {
        f"{name} needs {need}"
        for name in CARRIED
        for need in requirement_names(metadata.requires(name) or [])
        if need not in KNOWN
    }
    assert not missing, sorted(missing)


def test_everything_the_check_imports_travels_or_is_on_the_machine() -> None:
    """A real run of the check's code paths (the app, the uvicorn protocol, the benchmark, the GPU tests' module,
    a tiny-model inference) in a fresh interpreter, its imported modules mapped to their distributions."""
    result = run_python("-m", "devtools.gpu_check", "imports", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    imported = json.loads(result.stdout.splitlines()[-1])
    assert {"torch", DETECTRON2, "fastapi", "uvicorn", "carpose"} <= set(imported)
    unsorted = {name: modules for name, modules in imported.items() if name not in KNOWN}
    assert not unsorted, f"imported by the check, neither carried nor on the machine: {unsorted}"


def test_the_script_reads_what_prepare_writes_and_ignores_it_in_git() -> None:
    text = SCRIPT.read_text()
    assert f"{WHEEL_DIR.relative_to(REPO_ROOT)}/*.whl" in text
    assert str(DATA_DIR.relative_to(REPO_ROOT)) in text
    assert "tests/service/test_gpu_inference.py" in text and "-m gpu" in text
    assert "benchmarks.throughput" in text and "--device cuda" in text
    for path in CARRY:
        ignored = subprocess.run(["git", "check-ignore", "-q", f"{path}/x"], cwd=REPO_ROOT, check=False)
        assert ignored.returncode == 0, f"{path}/ must be ignored by git (it is carried, never committed)"
    syntax = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert syntax.returncode == 0, syntax.stderr


def test_the_docs_give_the_carry_list_the_script_needs() -> None:
    page = (REPO_ROOT / "docs" / "gpu.md").read_text()
    assert "scripts/gpu_check.sh" in page and "devtools.gpu_check prepare" in page
    assert json.dumps(list(CARRY)) in page, f"docs/gpu.md must give the carry list {json.dumps(list(CARRY))}"


@pytest.mark.slow
def test_the_dry_run_passes_on_the_cpu(tmp_path: Path) -> None:
    """The whole script, as on the machine, with .venv on the CPU (minutes; needs `prepare` first)."""
    if not any(WHEEL_DIR.glob("*.whl")):
        pytest.skip("no wheels in .whl/: run `python -m devtools.gpu_check prepare`")
    env = {**os.environ, "GPU_CHECK_DRY_RUN": "1", "OUT": str(tmp_path), "PYTHON": sys.executable}
    env["GPU_CHECK_SITE"] = str(tmp_path / "site")
    result = subprocess.run([str(SCRIPT)], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    summary = (tmp_path / "summary.md").read_text()
    assert result.returncode == 0, summary + result.stdout[-3000:]
    for step in ("install", "environment", "pytest-gpu", "throughput", "pytest-cpu"):
        assert f"| {step} | passed |" in summary
    assert "3 skipped" in summary  # the GPU tests, on a CPU
    assert "img/s" in summary and canonical(DETECTRON2) in summary
