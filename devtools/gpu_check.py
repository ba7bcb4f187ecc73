"""The prepared GPU check (docs/gpu.md, "Prepared GPU check"): what a lent GPU machine lacks, made ready here.

The machine it is prepared for: one NVIDIA GPU, Python 3.12 with its own CUDA torch, torchvision and NumPy 2
preinstalled, no network, and at most 64 MiB of files carried in with the working tree. So nothing is installed
there from a registry: this module fills `.whl/` here with the wheels of every package the check imports that the
machine lacks (at the versions this checkout's `.venv` runs its CPU tests with), and `.gpu-check/data/` with the
few photos the GPU tests and the benchmark read. `scripts/gpu_check.sh` installs the wheels there with
`pip --no-index` and runs the check.

    python -m devtools.gpu_check prepare       # here: fill .whl/ and .gpu-check/, check them, print the carry list
    python -m devtools.gpu_check environment   # there (and in the dry run): versions, GPU, what differs from pins
    python -m devtools.gpu_check imports       # the distributions the check imports, as JSON (for the test)

Detectron2 travels as the project's own pure-Python repack (scripts/build_detectron2_wheel.py): Mask R-CNN takes
NMS and RoIAlign from torchvision, whose CUDA kernels the machine's torchvision has, so nothing is compiled there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from email.parser import Parser
from importlib import metadata
from pathlib import Path

from service.settings import REPO_ROOT

WHEEL_DIR = REPO_ROOT / ".whl"
STAGE_DIR = REPO_ROOT / ".gpu-check"
DATA_DIR = STAGE_DIR / "data"  # CARPOSE_DATA_ROOT there
CARRY = (".whl", ".gpu-check")  # the ignored paths the device command names

# What travels with the working tree, the carried paths included; the check keeps a margin under it because the
# checkout grows between preparing and running.
TRAVEL_LIMIT_BYTES = 64 * 2**20
TRAVEL_BUDGET_BYTES = 56 * 2**20

DEVICE_PYTHON = "3.12"
# pip download matches each manylinux tag exactly; the machine's glibc (Ubuntu 24.04's Python 3.12.3) takes all.
DEVICE_PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
)
PIP = (sys.executable, "-m", "pip")
# pip's options that select wheels for the machine's interpreter and platform instead of this one's.
DEVICE_TARGET = (
    "--only-binary=:all:",
    "--python-version",
    DEVICE_PYTHON,
    "--implementation",
    "cp",
    *(arg for platform in DEVICE_PLATFORMS for arg in ("--platform", platform)),
)
DEVICE_MARKERS = {
    "python_version": DEVICE_PYTHON,
    "python_full_version": f"{DEVICE_PYTHON}.3",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "extra": "",
}

DETECTRON2 = "sal-detectron2"
# Carried as wheels, at the version installed in .venv: the service's own stack (the HTTP edge, settings,
# Detectron2 and what it imports), so that the code runs with the versions its CPU tests pass with. A machine
# copy of one of these (anyio, httpx, typing-extensions, Pillow...) is shadowed, never relied on: pydantic alone
# needs a typing-extensions newer than many images hold, and pillow-heif and AVIF photos need Pillow 11.3 or later.
CARRIED = frozenset(
    {
        "annotated-doc",
        "annotated-types",
        "antlr4-python3-runtime",
        "anyio",
        "fastapi",
        "fastapi-offline",
        "fvcore",
        "h11",
        "httpcore",
        "httpx",
        "iopath",
        "omegaconf",
        "opentelemetry-api",
        "pillow",
        "pillow-heif",
        "prometheus-client",
        "pycocotools",
        "pydantic",
        "pydantic-core",
        "pydantic-settings",
        "python-dotenv",
        "python-multipart",
        DETECTRON2,
        "starlette",
        "termcolor",
        "typing-extensions",
        "typing-inspection",
        "uvicorn",
        "yacs",
    }
)
# Used from the machine, never carried: its compiled CUDA and numeric stack (a second torch, NumPy or OpenCV would
# not match the rest of the image, and torch alone is GBs), and its test runner with its plugins. Each name is in
# the machine's package list as read there (2026-11-17); their versions are the machine's, printed by
# `environment` on every run.
MACHINE = frozenset(
    {
        "attrs",
        "certifi",
        "click",
        "cloudpickle",
        "cuda-bindings",
        "cuda-pathfinder",
        "idna",
        "iniconfig",
        "mpmath",
        "numpy",
        "opencv-python-headless",
        "packaging",
        "pluggy",
        "portalocker",
        "pygments",
        "pytest",
        "pyyaml",
        "rich",
        "setuptools",
        "sympy",
        "tabulate",
        "torch",
        "torchvision",
        "tqdm",
        "triton",
    }
)
# Declared by a carried package or by pyproject.toml but not needed by the check, with the reason.
NOT_NEEDED = {
    "boto3": "S3 input of `carpose batch` and the Rekognition backend only, neither imported by the check",
    "black": "declared by sal-detectron2, imported only by its LazyConfig export",
    "hydra-core": "declared by sal-detectron2, imported only by its LazyConfig instantiation",
    "matplotlib": "declared by sal-detectron2, imported only by its visualizer",
    "tensorboard": "declared by sal-detectron2, imported only by its training event writers",
    "importlib-metadata": "declared by opentelemetry-api for Python < 3.12's stdlib API; the check never imports it",
    "pydot": "torch.fx's graph drawer imports it if present",
    "openvino": "the CPU engine only (service/engines.py); without it POSE_ENGINE=auto is torch on any device",
}
# pyproject.toml pins that the machine's packages are known not to meet, and why the check runs anyway.
KNOWN_DIFFERENCES = {
    "torch": "the machine's own CUDA build; the service's torch calls are all older than 2.11",
    "torchvision": "the machine's own CUDA build, which holds the NMS and RoIAlign kernels",
    "numpy": "the <2 pin is sal-detectron2's declaration; the default model's answers were the same under 2.4.6",
}
PROJECT = frozenset({"carpose"})
# Published as source only: pure Python, so `pip wheel` builds each here into a py3-none-any wheel.
SOURCE_ONLY = frozenset({"antlr4-python3-runtime", "fvcore", "iopath"})

# (module, distribution): where each of the check's key modules is imported from, and its version.
ENVIRONMENT_MODULES = (
    ("detectron2", DETECTRON2),
    ("fastapi", "fastapi"),
    ("pydantic", "pydantic"),
    ("uvicorn", "uvicorn"),
    ("numpy", "numpy"),
    ("PIL", "pillow"),
    ("cv2", "opencv-python-headless"),
    ("pycocotools", "pycocotools"),
    ("pytest", "pytest"),
)
# What the check runs: the service's app, the benchmark, the GPU tests' module with its conftests.
CHECK_MODULES = (
    "service.api.main",
    "benchmarks.throughput",
    "tests.conftest",
    "tests.service.conftest",
    "tests.service.test_gpu_inference",
)


def canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def requirement_names(requires: Iterable[str]) -> set[str]:
    """The distributions `requires` (Requires-Dist lines or pyproject dependencies) needs on the machine: markers
    evaluated for its Python, extras left out."""
    from packaging.requirements import Requirement

    names = set()
    for line in requires:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate(DEVICE_MARKERS):
            names.add(canonical(requirement.name))
    return names


def project_dependencies() -> list[str]:
    import tomllib  # Python 3.11+: this checkout's .venv and the machine (3.12); the package itself allows 3.10

    with open(REPO_ROOT / "pyproject.toml", "rb") as handle:
        return list(tomllib.load(handle)["project"]["dependencies"])


def installed_version(name: str) -> str:
    return metadata.version(name)


# --- imports: what the check imports, read off a real run of its code paths ------------------------------------


def imported_distributions() -> dict[str, list[str]]:
    """{distribution: [top-level modules]} of everything imported by the service's app and its uvicorn protocol,
    the benchmark, the GPU tests' module and one tiny-model inference (Detectron2's lazy imports), in this process.
    Modules of no installed distribution (the standard library, the checkout's own folders) are left out."""
    import importlib

    import uvicorn

    from devtools.images import car_like_array
    from devtools.tiny_model import build_tiny_model_dir
    from service.backends.detectron import DetectronBackend
    from service.cli import APP, HTTP_PROTOCOL

    for module in CHECK_MODULES:
        importlib.import_module(module)
    uvicorn.Config(APP, http=HTTP_PROTOCOL).load()
    with tempfile.TemporaryDirectory() as scratch:
        # torch: what `auto` is on the machine, which has no OpenVINO (NOT_NEEDED).
        tiny = build_tiny_model_dir(Path(scratch) / "tiny")
        backend = DetectronBackend(tiny, device="cpu", score_threshold=0.0, engine="torch")
        backend.detect_array(car_like_array(320, 240, 3))
    owners = metadata.packages_distributions()
    found: dict[str, list[str]] = {}
    for top in sorted({name.partition(".")[0] for name in list(sys.modules)}):
        for dist in owners.get(top, []):
            found.setdefault(canonical(dist), []).append(top)
    return found


# --- prepare (here) ---------------------------------------------------------------------------------------------


def wheel_requirements(wheel: Path) -> tuple[str, set[str]]:
    """(canonical name, needed distributions) from a wheel's METADATA."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1)
        message = Parser().parsestr(archive.read(name).decode())
    return canonical(message["Name"]), requirement_names(message.get_all("Requires-Dist") or [])


def uncovered_requirements(wheels: Iterable[Path]) -> list[str]:
    """'wheel needs X' for each requirement of a carried wheel that is neither carried, on the machine, nor known
    to be unneeded (NumPy's `<2` of sal-detectron2 is a name on the machine: versions are not compared here)."""
    problems = []
    for wheel in wheels:
        name, needs = wheel_requirements(wheel)
        for need in sorted(needs - CARRIED - MACHINE - set(NOT_NEEDED)):
            problems.append(f"{name} needs {need}")
    return problems


def travelling_bytes() -> int:
    """Bytes of what travels without `carry`: tracked files and untracked ones git does not ignore."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    total = 0
    for raw in filter(None, listed):
        path = REPO_ROOT / os.fsdecode(raw)
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total


def tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def download_wheels(into: Path) -> None:
    def pins(names: Iterable[str]) -> list[str]:
        return sorted(f"{name}=={installed_version(name)}" for name in names)

    binary = pins(CARRIED - SOURCE_ONLY - {DETECTRON2})
    subprocess.run([*PIP, "download", "--quiet", "--no-deps", *DEVICE_TARGET, "-d", str(into), *binary], check=True)
    subprocess.run([*PIP, "wheel", "--quiet", "--no-deps", "-w", str(into), *pins(SOURCE_ONLY)], check=True)
    impure = [w.name for w in into.glob("*.whl") if canonical(w.name.split("-")[0]) in SOURCE_ONLY]
    impure = [name for name in impure if not name.endswith("-py3-none-any.whl")]
    if impure:
        raise SystemExit(f"built wheels that are not pure Python: {impure}")
    subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "build_detectron2_wheel.py"), str(into)], check=True)


def check_installable(wheels: list[Path]) -> None:
    """pip's own check that every wheel installs on the machine's Python and platform (tags), in a scratch folder."""
    with tempfile.TemporaryDirectory() as scratch:
        install = [*PIP, "install", "--quiet", "--no-index", "--no-deps", "--no-compile", *DEVICE_TARGET]
        subprocess.run([*install, "--target", scratch, *map(str, wheels)], check=True)


def stage_data(data_root: Path) -> list[str]:
    """Copy the photos the check reads into .gpu-check/data (ignored by git, removed by `prepare --clean`): the
    turntable photos of the GPU tests and the benchmark's Car Parts photo. Returns what was not found."""
    from models.paths import DEFAULT_DATASET_DIR, DEFAULT_TURNTABLE_DIR

    shutil.rmtree(DATA_DIR, ignore_errors=True)
    missing = []
    turntable = sorted(DEFAULT_TURNTABLE_DIR.glob("*.jpg"))
    if turntable:
        target = DATA_DIR / DEFAULT_TURNTABLE_DIR.relative_to(data_root)
        target.mkdir(parents=True)
        for photo in turntable:
            shutil.copy2(photo, target / photo.name)
    else:
        missing.append(f"{DEFAULT_TURNTABLE_DIR}/*.jpg (the GPU tests that compare answers will skip)")
    car10 = DEFAULT_DATASET_DIR / "testset" / "JPEGImages" / "car10.jpg"
    if car10.is_file():
        target = DATA_DIR / car10.relative_to(data_root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(car10, target)
    else:
        missing.append(f"{car10} (the benchmark falls back to a synthetic photo)")
    return missing


def source_description() -> str:
    """The commit being carried (the machine gets the working tree, not the history) and its uncommitted files."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, check=True, capture_output=True, text=True).stdout

    changed = len(git("status", "--porcelain", "--untracked-files=no").splitlines())
    return f"commit {git('rev-parse', 'HEAD').strip()}" + (f" with {changed} changed files" if changed else "")


def prepare(clean: bool) -> int:
    from models.paths import DATASETS_DIR

    shutil.rmtree(WHEEL_DIR, ignore_errors=True)
    shutil.rmtree(STAGE_DIR, ignore_errors=True)
    if clean:
        print(f"removed {WHEEL_DIR.name}/ and {STAGE_DIR.name}/")
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        download_wheels(Path(scratch))
        WHEEL_DIR.mkdir()
        for wheel in Path(scratch).glob("*.whl"):
            shutil.move(wheel, WHEEL_DIR / wheel.name)
    wheels = sorted(WHEEL_DIR.glob("*.whl"))
    names = [wheel_requirements(w)[0] for w in wheels]
    errors = [f"{n}: {names.count(n)} wheels" for n in sorted(set(names)) if names.count(n) > 1]
    errors += [f"no wheel for {n}" for n in sorted(CARRIED - set(names))]
    errors += uncovered_requirements(wheels)
    check_installable(wheels)
    missing = stage_data(DATASETS_DIR)
    (STAGE_DIR / "source.txt").write_text(source_description() + "\n")
    tree, carried = travelling_bytes(), tree_bytes(WHEEL_DIR) + tree_bytes(STAGE_DIR)
    mib = 2**20
    print(
        f"{len(wheels)} wheels in {WHEEL_DIR.name}/ ({tree_bytes(WHEEL_DIR) / mib:.1f} MiB), "
        f"photos in {DATA_DIR.relative_to(REPO_ROOT)}/ ({tree_bytes(STAGE_DIR) / mib:.1f} MiB)"
    )
    print(
        f"travels: {tree / mib:.1f} MiB of working tree + {carried / mib:.1f} MiB carried = "
        f"{(tree + carried) / mib:.1f} MiB (budget {TRAVEL_BUDGET_BYTES // mib}, limit {TRAVEL_LIMIT_BYTES // mib})"
    )
    if tree + carried > TRAVEL_BUDGET_BYTES:
        errors.append("over the travel budget: remove untracked files or carry less")
    for line in missing:
        print(f"warning: not found: {line}")
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    if errors:
        return 1
    print(f"carry: {json.dumps(list(CARRY))}")
    print("device command: scripts/gpu_check.sh")
    return 0


# --- environment (there) ----------------------------------------------------------------------------------------


def environment() -> int:
    """Print what the check runs on: Python, torch and CUDA, the GPU, where each key module came from, and each
    pyproject.toml dependency's version on this machine against its pin. Exit 1 if a module does not import or
    torchvision's CUDA NMS does not run on a visible GPU."""
    import importlib

    import torch
    from packaging.requirements import Requirement

    failed = False
    print(f"python {sys.version.split()[0]} at {sys.executable}")
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
    if torch.cuda.is_available():
        import torchvision

        props = torch.cuda.get_device_properties(0)
        print(f"GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB, capability {props.major}.{props.minor}")
        boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [50.0, 50.0, 60.0, 60.0]], device="cuda")
        kept = torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7], device="cuda"), 0.5).tolist()
        print(f"torchvision {torchvision.__version__} CUDA nms kept {kept} (expected [0, 2])")
        failed |= kept != [0, 2]
    else:
        print("GPU: none visible to torch")
    for module, dist in (*ENVIRONMENT_MODULES, *((m, "carpose") for m in CHECK_MODULES)):
        try:
            imported = importlib.import_module(module)
            version = metadata.version(dist) if dist != "carpose" else "checkout"
            print(f"  {module:<34} {version:<14} {imported.__file__}")
        except Exception as error:  # every failure is reported, then the step fails
            print(f"  {module:<34} FAILED: {type(error).__name__}: {error}")
            failed = True
    try:
        importlib.import_module("detectron2._C")
        print("  detectron2._C present (compiled ops)")
    except ImportError:
        print("  detectron2._C absent: pure-Python Detectron2, NMS and RoIAlign from torchvision")
    print("pyproject.toml dependencies here:")
    for line in project_dependencies():
        requirement = Requirement(line)
        try:
            found = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            found = "absent"
        name = canonical(requirement.name)
        if found != "absent" and requirement.specifier.contains(found, prereleases=True):
            note = ""
        else:
            note = f"  <- differs: {KNOWN_DIFFERENCES.get(name) or NOT_NEEDED.get(name) or 'UNEXPECTED'}"
        print(f"  {line:<32} {found}{note}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="fill .whl/ and .gpu-check/ for the GPU machine")
    prep.add_argument("--clean", action="store_true", help="only remove .whl/ and .gpu-check/")
    sub.add_parser("environment", help="print the machine, versions and differences from the pins")
    sub.add_parser("imports", help="print the imported distributions as JSON")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        return prepare(args.clean)
    if args.command == "environment":
        return environment()
    print(json.dumps(imported_distributions()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
