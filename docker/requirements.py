"""Print carpose's runtime requirements from pyproject.toml, one per line, for `pip install -r`.

The images install the dependencies from the same list as scripts/install.sh (no second copy of the pins):
  python docker/requirements.py                            everything in [project].dependencies
  python docker/requirements.py --only torch torchvision   just these (the CPU image takes them from the
                                                           PyTorch CPU index first)
  python docker/requirements.py --exclude sal-detectron2   all but these (the GPU image compiles upstream
                                                           detectron2 with its CUDA ops instead)
  python docker/requirements.py --extra train              the `train` extra (the training image only)
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import tomllib

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def requirements(
    pyproject: Path = PYPROJECT, only: list[str] | None = None, exclude: list[str] | None = None, extra: str = ""
) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    if extra and extra not in project.get("optional-dependencies", {}):
        raise SystemExit(f"no [project.optional-dependencies] {extra} in {pyproject.name}")
    deps = project["optional-dependencies"][extra] if extra else project["dependencies"]
    wanted = {_name(n) for n in only} if only else None
    dropped = {_name(n) for n in exclude or []}
    known = {_name(d) for d in deps}
    missing = (wanted or set()) | dropped
    if missing - known:
        raise SystemExit(f"not in {pyproject.name} dependencies: {sorted(missing - known)}")
    return [d for d in deps if (wanted is None or _name(d) in wanted) and _name(d) not in dropped]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pyproject", type=Path, default=PYPROJECT)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--only", nargs="+", metavar="NAME")
    group.add_argument("--exclude", nargs="+", metavar="NAME")
    parser.add_argument("--extra", default="", metavar="NAME", help="an optional-dependencies group instead")
    args = parser.parse_args(argv)
    sys.stdout.write("".join(f"{r}\n" for r in requirements(args.pyproject, args.only, args.exclude, args.extra)))


if __name__ == "__main__":
    main()
