"""The documentation's structure: a short README that links every docs/ page, links that resolve, each table once.

The facts inside the tables are checked where they come from: the settings table here against `Settings`, the
metrics table against `service/metrics.py`, the error table in tests/service/test_error_codes.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devtools.settings_table import PAGE as SETTINGS_PAGE
from devtools.settings_table import with_table
from service.settings import REPO_ROOT

README = REPO_ROOT / "README.md"
DOCS = sorted((REPO_ROOT / "docs").glob("*.md"))
PAGES = [README, *DOCS]
README_MAX_LINES = 300

LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", flags=re.M | re.S)


def links(page: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", page.read_text()))


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but `-` and `_` dropped, spaces to `-`."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {anchor(h) for h in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}


def test_the_readme_is_short() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines: move the detail to a docs/ page"


def test_the_readme_links_every_docs_page() -> None:
    linked = {(REPO_ROOT / target.split("#")[0]).resolve() for target in links(README)}
    missing = [p.name for p in DOCS if p.resolve() not in linked]
    assert len(DOCS) >= 10
    assert not missing, f"README.md does not link {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_and_anchors_resolve(page: Path) -> None:
    broken = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, fragment = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        missing_anchor = bool(fragment) and file.suffix == ".md" and file.exists() and fragment not in anchors(file)
        if not file.exists() or missing_anchor:
            broken.append(target)
    assert not broken, f"{page.name}: broken links {broken}"


def table_rows(prefix: str) -> dict[str, list[str]]:
    """Pages holding table rows whose first cell starts with `prefix`, and those rows' first cells."""
    found: dict[str, list[str]] = {}
    for page in PAGES:
        rows = re.findall(rf"^\| `({re.escape(prefix)}[A-Za-z_]+)` \|", page.read_text(), flags=re.M)
        if rows:
            found[page.name] = rows
    return found


def test_the_settings_table_is_generated_from_settings() -> None:
    page = SETTINGS_PAGE.read_text()
    assert with_table(page) == page, "docs/settings.md is out of date: run `python -m devtools.settings_table`"


def test_the_metrics_table_lists_every_metric() -> None:
    defined = set(re.findall(r"\"(carpose_[a-z_]+)\"", (REPO_ROOT / "service" / "metrics.py").read_text()))
    assert len(defined) >= 10
    assert set(table_rows("carpose_").get("operations.md", [])) == defined


@pytest.mark.parametrize(("prefix", "home"), [("POSE_", "settings.md"), ("carpose_", "operations.md")])
def test_each_table_exists_once(prefix: str, home: str) -> None:
    assert list(table_rows(prefix)) == [home], f"a table of `{prefix}*` rows belongs in docs/{home} only"
