# Two commands do all the set-up on a fresh machine: `make serve` and `make test` (see README.md).
HOST ?= 127.0.0.1
PORT ?= 8000
PY := .venv/bin/python
# glibc's malloc thrashes on Detectron2's tensors (mmap/munmap churn); these thresholds keep latency stable.
export MALLOC_MMAP_THRESHOLD_ ?= 131072
export MALLOC_TRIM_THRESHOLD_ ?= 131072

.PHONY: install serve test test-fast lint bench test-deps data

install:
	./scripts/install.sh

serve: install
	$(PY) -m uvicorn service.api.main:app --host $(HOST) --port $(PORT) --http service.api.http_protocol:HeaderTimeoutH11Protocol

# The datasets at their pinned commits into $CARPOSE_DATA_ROOT (default ../shared/datasets), checked (docs/data.md).
data: install
	$(PY) -m models.cli data

# System tools some tests drive: Debian's chromium (page tests), docker-compose and hadolint (deploy checks).
test-deps: install
	./scripts/install_browser.sh
	./scripts/install_ci_tools.sh

test: install test-deps
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not slow and not browser"

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

bench: install
	$(PY) -m benchmarks.http_overhead
