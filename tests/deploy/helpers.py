"""Parsers for the deployment files (compose, Dockerfile, .dockerignore, PromQL): small, stdlib + PyYAML only."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.settings import REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "docker" / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
PROMETHEUS_CONFIG = REPO_ROOT / "docker" / "prometheus" / "prometheus.yml"
GRAFANA_DIR = REPO_ROOT / "docker" / "grafana"
DEPLOY_DOC = REPO_ROOT / "docs" / "settings.md"

# Environment variables a carpose container may get that service.settings.Settings does not read. Each one is
# documented in docs/settings.md ("Environment variables that are not settings"); a test checks that.
ALLOWED_NON_SETTINGS_ENV = frozenset(
    {
        # glibc malloc tuning (set in docker/Dockerfile): Detectron2's tensors make the default thresholds thrash.
        "MALLOC_MMAP_THRESHOLD_",
        "MALLOC_TRIM_THRESHOLD_",
        # boto3's default credential chain, for POST /pose/rekognition.
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_ROLE_ARN",
        "AWS_ROLE_SESSION_NAME",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CA_BUNDLE",
        "AWS_EC2_METADATA_DISABLED",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    }
)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def pyproject() -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli", reason="reading pyproject.toml needs Python 3.11+ or tomli")
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


# ----------------------------------------------------------------------------------------------------- compose


def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE_FILE)


def env_names(service: dict[str, Any]) -> set[str]:
    """Names of the variables a compose service sets (list `K=V` / `K` form or mapping form)."""
    env = service.get("environment") or {}
    if isinstance(env, dict):
        return set(env)
    return {item.split("=", 1)[0] for item in env}


def image_services(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services built from docker/Dockerfile (pose, pose-cpu, train)."""
    out = {}
    for name, svc in spec["services"].items():
        build = svc.get("build")
        if isinstance(build, dict) and Path(build.get("dockerfile", "Dockerfile")) == Path("docker/Dockerfile"):
            out[name] = svc
    return out


def published_ports(service: dict[str, Any]) -> list[tuple[str | None, str | None, int]]:
    """(host_ip, host_port, container_port) per `ports` entry; ${VAR:-default} resolved to its default."""
    out = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            out.append((entry.get("host_ip"), str(entry.get("published")), int(entry["target"])))
            continue
        text = resolve_defaults(str(entry)).split("/", 1)[0]
        parts = text.rsplit(":", 2)
        if len(parts) == 3:
            out.append((parts[0], parts[1], int(parts[2])))
        elif len(parts) == 2:
            out.append((None, parts[0], int(parts[1])))
        else:
            out.append((None, None, int(parts[0])))
    return out


def resolve_defaults(text: str) -> str:
    """Replace ${VAR:-default} / ${VAR-default} by the default and ${VAR} by an empty string."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}", lambda m: m.group(1) or "", text)


# -------------------------------------------------------------------------------------------------- Dockerfile


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """Instructions with continuation lines joined; comments (also inside continuations) dropped."""
    out: list[Instruction] = []
    buf: list[str] = []
    start = 0
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not buf:
            start = lineno
        if stripped.endswith("\\"):
            buf.append(stripped[:-1].strip())
            continue
        buf.append(stripped)
        keyword, _, args = " ".join(buf).partition(" ")
        out.append(Instruction(keyword.upper(), args.strip(), start))
        buf = []
    return out


def dockerfile_stages(path: Path = DOCKERFILE) -> list[Stage]:
    stages: list[Stage] = []
    for ins in dockerfile_instructions(path):
        if ins.keyword == "FROM":
            words = [w for w in ins.args.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append(Stage(words[0], name))
        elif stages:
            stages[-1].instructions.append(ins)
    return stages


def exec_form(args: str) -> list[str] | None:
    try:
        value = json.loads(args)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, list) else None


def copy_sources(ins: Instruction) -> tuple[list[str], dict[str, str]]:
    """(sources, flags) of a COPY/ADD instruction."""
    words = exec_form(ins.args) or shlex.split(ins.args)
    flags: dict[str, str] = {}
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        flags[key] = value
    return words[:-1], flags


def env_assignments(ins: Instruction) -> dict[str, str]:
    """ENV K=V K2=V2 (and the legacy `ENV K V` form)."""
    words = shlex.split(ins.args)
    if words and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    return dict(word.split("=", 1) for word in words)


# ------------------------------------------------------------------------------------------------ .dockerignore


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def dockerignored(relpath: str, ignore_file: Path = DOCKERIGNORE) -> bool:
    """Whether Docker leaves `relpath` out of the build context (last matching pattern wins; a pattern that
    matches a parent directory matches everything below it)."""
    rel = relpath.strip("/")
    candidates = [rel] + [str(p) for p in Path(rel).parents if str(p) != "."]
    excluded = False
    for raw in ignore_file.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        regex = _pattern_regex(line.lstrip("!").strip().strip("/"))
        if any(regex.fullmatch(c) for c in candidates):
            excluded = not negate
    return excluded


# ------------------------------------------------------------------------------------------------------ PromQL

_PROMQL_KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}
    | {"atan2", "inf", "nan"}
)
_TOKEN = re.compile(r"(?P<num>\d[\w.]*)|(?P<id>[A-Za-z_:][A-Za-z0-9_:]*)(?P<call>\s*\()?")


def promql_metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, aggregations, keywords and label names left out)."""
    text = re.sub(r"\$\{?__\w+\}?", "5m", expr)  # Grafana's $__rate_interval, $__range, ...
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', text)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in _TOKEN.finditer(text):
        name = match.group("id")
        if name and not match.group("call") and name.lower() not in _PROMQL_KEYWORDS:
            names.add(name)
    return names


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) for every target of every panel (rows' nested panels included)."""
    out = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    out.append((panel.get("title", "?"), target["expr"]))
            walk(panel.get("panels", []))

    walk(dashboard.get("panels", []))
    return out
