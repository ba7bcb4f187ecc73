#!/usr/bin/env bash
# Prove, on a machine without a GPU, that the GPU image's Detectron2 build compiles: upstream detectron2 at the
# Dockerfile's commit, with its CUDA ops (FORCE_CUDA=1), against the project's torch (2.14.1+cu130), with the
# CUDA 13.0 compiler from PyPI, exactly as docker/Dockerfile's gpu-builder stage runs it (pip wheel, no build
# isolation). Then it imports the built detectron2._C and runs its CPU ops (no GPU: the CUDA kernels are only
# compiled, and checked to be in the library). Not part of `make test` (it takes minutes); see docs/gpu.md.
#
#   scripts/check_gpu_build.sh DETECTRON2_SOURCE_DIR     an upstream source tree at the Dockerfile's commit
#   scripts/check_gpu_build.sh                           clones it (only where GitHub is reachable)
#
# Environment: CHECK_ARCH (default 9.0: one architecture of the Dockerfile's TORCH_CUDA_ARCH_LIST is enough to
# prove the sources compile with this nvcc; the whole list takes about 7x as long), MAX_JOBS (default 2),
# SCRATCH (default build/gpu-check; everything is written there, nothing in .venv).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
py=$repo/.venv/bin/python
dockerfile=docker/Dockerfile
scratch=${SCRATCH:-$repo/build/gpu-check}
arch=${CHECK_ARCH:-9.0}
export MAX_JOBS=${MAX_JOBS:-2}

# The pins are the Dockerfile's, read from it (stated once there).
arg() { sed -n "s/^ARG $1=\"\{0,1\}\([^\"]*\)\"\{0,1\}$/\1/p" "$dockerfile" | head -n1; }
commit=$(arg DETECTRON2_COMMIT)
cuda_version=$(arg CUDA_VERSION)
arch_list=$(arg TORCH_CUDA_ARCH_LIST)
[[ -n $commit && -n $cuda_version && -n $arch_list ]] || { echo "cannot read the pins from $dockerfile" >&2; exit 2; }
[[ ";${arch_list//+PTX/};" == *";$arch;"* ]] || { echo "CHECK_ARCH=$arch is not in $arch_list" >&2; exit 2; }

# The CUDA 13.0 Update 2 toolkit (the Dockerfile's base image nvidia/cuda:13.0.2-devel) as PyPI wheels: the
# component versions of that release; nvidia-cuda-runtime is the one torch 2.14.1+cu130 itself depends on.
[[ $cuda_version == 13.0.2 ]] || {
  echo "$dockerfile moved to CUDA $cuda_version: update the component pins below to that release" >&2
  exit 2
}
cuda_pins=(nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88
  nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85)

src=${1:-}
if [[ -z $src ]]; then
  src=$scratch/detectron2-src
  if [[ ! -d $src ]]; then
    git clone --quiet https://github.com/facebookresearch/detectron2 "$src"
    git -C "$src" checkout --quiet "$commit"
  fi
fi
src=$(cd "$src" && pwd)
[[ -f $src/setup.py && -d $src/detectron2/layers/csrc ]] || { echo "$src is not a detectron2 source tree" >&2; exit 2; }
if git -C "$src" rev-parse HEAD >/dev/null 2>&1; then
  head=$(git -C "$src" rev-parse HEAD)
  [[ $head == "$commit" ]] || { echo "$src is at $head, the Dockerfile pins $commit" >&2; exit 2; }
fi

rm -rf "$scratch/cuda" "$scratch/cuda_home" "$scratch/wheels" "$scratch/site"
mkdir -p "$scratch"
start=$(date +%s)

# The compiler in a scratch directory (pip --target), not in .venv: the project keeps its torch untouched.
"$py" -m pip install --quiet --disable-pip-version-check --target "$scratch/cuda" "${cuda_pins[@]}"
# CUDA_HOME for torch.utils.cpp_extension: the compiler wheels' tree plus the library headers (cuBLAS, cuSPARSE,
# cuSOLVER, ...) that torch's own nvidia wheels ship and ATen's CUDA headers include. Symlinks, no copies.
site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
home=$scratch/cuda_home
mkdir -p "$home"
cp -rs "$scratch/cuda/nvidia/cu13/." "$home/"
cp -rsn "$site/nvidia/cu13/include/." "$home/include/"
# The wheels ship only the versioned runtime (libcudart.so.13); the extension links with -lcudart.
ln -sfn libcudart.so.13 "$home/lib/libcudart.so"
ln -sfn lib "$home/lib64"
export CUDA_HOME=$home PATH=$home/bin:$PATH
"$home/bin/nvcc" --version | tail -n 2

# The Dockerfile's build command, with one architecture.
echo "building detectron2 $commit for sm_${arch/./} with MAX_JOBS=$MAX_JOBS"
build_start=$(date +%s)
FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="$arch" \
  "$py" -m pip wheel --quiet --disable-pip-version-check --no-build-isolation --no-deps -w "$scratch/wheels" "$src"
build_s=$(($(date +%s) - build_start))
"$py" -m pip install --quiet --disable-pip-version-check --no-deps --target "$scratch/site" "$scratch"/wheels/detectron2-*.whl

# Import the built extension (ahead of the project's CPU-only repack of detectron2) and run its CPU ops.
PYTHONPATH=$scratch/site "$py" - "$scratch/site" "$arch" <<'EOF'
import subprocess
import sys
from pathlib import Path

import torch

site, arch = Path(sys.argv[1]), sys.argv[2]
import detectron2
from detectron2 import _C
from detectron2.layers import ROIAlignRotated, nms_rotated
from detectron2.layers.rotated_boxes import pairwise_iou_rotated

assert Path(detectron2.__file__).is_relative_to(site), detectron2.__file__
print("detectron2._C:", _C.__file__)
print("compiled with CUDA", _C.get_cuda_version(), "by", _C.get_compiler_version())
assert _C.has_cuda(), "detectron2._C was built without CUDA"
# The CUDA kernels are in the library: its fatbinary section holds sm_XX code (readelf needs no GPU).
sections = subprocess.run(["readelf", "-SW", _C.__file__], capture_output=True, text=True, check=True).stdout
assert ".nv_fatbin" in sections, "no CUDA device code in detectron2._C"
blob = Path(_C.__file__).read_bytes()
assert f"sm_{arch.replace('.', '')}".encode() in blob, f"no sm_{arch} code in detectron2._C"

# CPU ops: rotated IoU, rotated NMS and rotated ROIAlign, checked against values known by hand.
a = torch.tensor([[10.0, 10.0, 4.0, 4.0, 0.0]])
b = torch.tensor([[10.0, 10.0, 4.0, 4.0, 90.0], [12.0, 10.0, 4.0, 4.0, 0.0]])
iou = pairwise_iou_rotated(a, b)
assert torch.allclose(iou, torch.tensor([[1.0, 1 / 3]]), atol=1e-4), iou
keep = nms_rotated(torch.cat([a, b]), torch.tensor([0.9, 0.8, 0.7]), 0.5)
assert keep.tolist() == [0, 2], keep
feat = torch.arange(16.0).reshape(1, 1, 4, 4)
rois = torch.tensor([[0.0, 2.0, 2.0, 2.0, 2.0, 0.0]])
out = ROIAlignRotated((1, 1), spatial_scale=1.0, sampling_ratio=1)(feat, rois)
assert torch.allclose(out, torch.tensor([[[[7.5]]]])), out
print("CPU ops: pairwise_iou_rotated, nms_rotated, ROIAlignRotated ok; CUDA available here:", torch.cuda.is_available())
EOF
echo "PASS: detectron2 $commit built with CUDA $cuda_version (nvcc 13.0.88) for sm_${arch/./} against torch" \
  "$("$py" -c 'import torch; print(torch.__version__)') in ${build_s}s (whole check $(($(date +%s) - start))s)"
