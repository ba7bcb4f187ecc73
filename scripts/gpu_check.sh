#!/usr/bin/env bash
# The prepared GPU check (docs/gpu.md, "Prepared GPU check"), for a machine with an NVIDIA GPU, its own CUDA torch
# and no network. It installs the wheels carried in .whl/ (filled here by `python -m devtools.gpu_check prepare`)
# into a scratch folder with pip --no-index, prints the machine and the versions, runs `pytest -m gpu`, then
# `benchmarks.throughput --device cuda` on a short window, then the CPU tests of the GPU and batching paths, and
# writes everything to $OUT (default build/gpu-check-out): summary.md (steps, pytest summary, throughput table,
# versions), log.txt and one file per step. The run ends within GPU_CHECK_BUDGET_S (default 420 s, machine start
# not included); each step has its own limit too, and a failed step does not stop the ones after it.
#
#   scripts/gpu_check.sh                        on the GPU machine, from the repository root there
#   GPU_CHECK_DRY_RUN=1 scripts/gpu_check.sh    here, without a GPU: the same steps with .venv on the CPU (the
#                                               wheels install for the machine's Python into a scratch folder
#                                               but are not used; the GPU tests skip; a 2 s benchmark)
#
# Exit status: 0 when every step passed, 1 otherwise (the summary says which).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
out=${OUT:-$repo/build/gpu-check-out}
budget=${GPU_CHECK_BUDGET_S:-420}
dry=${GPU_CHECK_DRY_RUN:-0}
site=${GPU_CHECK_SITE:-/tmp/carpose-gpu-check-site}
mkdir -p "$out"
summary=$out/summary.md
exec > >(tee "$out/log.txt") 2>&1

export PYTHONUNBUFFERED=1 MALLOC_MMAP_THRESHOLD_=131072 MALLOC_TRIM_THRESHOLD_=131072
# The photos `prepare` staged; without them the answer-comparing GPU tests skip and the benchmark uses a
# synthetic photo (the summary shows both).
if [[ -d .gpu-check/data ]]; then export CARPOSE_DATA_ROOT=$repo/.gpu-check/data; fi
if [[ $dry == 1 ]]; then
  py=${PYTHON:-$repo/.venv/bin/python}
  device=cpu
  export PYTHONPATH=$repo
  bench=(--device cpu --clients 1 --batch-sizes 1 --seconds 2 --warmup-s 1)
else
  py=${PYTHON:-python3}
  device=cuda
  export PYTHONPATH=$site:$repo
  # 2 batch sizes x 4 client counts x (3 + 10) s, plus two model loads and warm-ups: about 3 minutes.
  bench=(--device cuda --clients "1,4,16,64" --batch-sizes "1,8" --seconds "${GPU_CHECK_SECONDS:-10}" --warmup-s 3)
fi

failures=0
{
  echo "# carpose GPU check"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'); mode: $([[ $dry == 1 ]] && echo 'DRY RUN on the CPU' || echo 'GPU')"
  echo "source: $(cat .gpu-check/source.txt 2>/dev/null || echo 'unknown (no .gpu-check/source.txt)')"
  echo "data: ${CARPOSE_DATA_ROOT:-not carried}"
  echo
  echo "| step | result | seconds |"
  echo "|---|---|---:|"
} >"$summary"

# step NAME LIMIT_S COMMAND...: run COMMAND under its limit (cut to what is left of the budget), its output to the
# log and to $out/NAME.txt, and its result to the summary's table.
step() {
  local name=$1 limit=$2 left rc started
  shift 2
  left=$((budget - SECONDS))
  ((limit <= left)) || limit=$left
  if ((limit < 15)); then
    echo "| $name | not run: the ${budget} s budget is spent | 0 |" >>"$summary"
    failures=$((failures + 1))
    return 0
  fi
  echo "=== $name (limit ${limit} s): $*"
  started=$SECONDS
  set +e
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$out/$name.txt"
  rc=${PIPESTATUS[0]}
  set -e
  local result="passed"
  if ((rc == 124 || rc == 137)); then
    result="FAILED: stopped at its ${limit} s limit"
  elif ((rc != 0)); then
    result="FAILED: exit status $rc"
  fi
  [[ $result == passed ]] || failures=$((failures + 1))
  echo "| $name | $result | $((SECONDS - started)) |" >>"$summary"
}

install_wheels() {
  local wheels=(.whl/*.whl) target=()
  [[ -e ${wheels[0]} ]] || {
    echo "no wheels in .whl/: run 'python -m devtools.gpu_check prepare' here and carry .whl" >&2
    return 1
  }
  # The dry run installs them for the machine's Python and platform (proves they are complete and installable
  # there), but .venv's own packages are what it runs with.
  if [[ $dry == 1 ]]; then
    read -r -a target < <("$py" -c 'from devtools.gpu_check import DEVICE_TARGET; print(*DEVICE_TARGET)')
  fi
  rm -rf "$site"
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade "${target[@]}" \
    --target "$site" "${wheels[@]}"
  echo "installed ${#wheels[@]} wheels into $site"
}

machine() {
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem,temperature.gpu,utilization.gpu \
      --format=csv
  else
    echo "nvidia-smi: not found"
  fi
  echo "CPU: $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1), $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)"
  "$py" -m devtools.gpu_check environment
}

# timeout runs programs, not functions: the two steps written as functions run in a child bash.
export -f install_wheels machine
export py dry site
step install 90 bash -euo pipefail -c install_wheels
step environment 90 bash -euo pipefail -c machine
# Only the GPU tests' own module: collecting all of tests/ would import what the check does not carry.
step pytest-gpu 200 "$py" -m pytest -p no:cacheprovider -q -rA -m gpu tests/service/test_gpu_inference.py
step throughput 240 "$py" -m benchmarks.throughput "${bench[@]}"
# The same code on the machine's CPU: the GPU options' no-op path and batching (answers alone = batched).
step pytest-cpu 120 "$py" -m pytest -p no:cacheprovider -q -m "not gpu and not slow" \
  tests/service/test_gpu_inference.py tests/service/test_batching.py

{
  echo
  echo "## pytest -m gpu (device $device)"
  echo
  echo '```'
  grep -E '^(PASSED|FAILED|ERROR|SKIPPED)|[0-9]+ (passed|failed|skipped|error)' "$out/pytest-gpu.txt" 2>/dev/null || true
  echo '```'
  echo
  echo "## benchmarks.throughput ${bench[*]}"
  echo
  echo '```'
  cat "$out/throughput.txt" 2>/dev/null || true
  echo '```'
  echo
  echo "## CPU tests of the GPU and batching paths"
  echo
  echo '```'
  tail -n 3 "$out/pytest-cpu.txt" 2>/dev/null || true
  echo '```'
  echo
  echo "## Machine and versions"
  echo
  echo '```'
  cat "$out/environment.txt" 2>/dev/null || true
  echo '```'
  echo
  echo "$failures step(s) failed; $SECONDS s in all (budget $budget s)."
} >>"$summary"
echo "=== summary: $summary"
cat "$summary"
((failures == 0))
