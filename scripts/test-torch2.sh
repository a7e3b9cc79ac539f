#!/usr/bin/env bash
# Builds openrm against the LibTorch 2.x inside the reference environment's
# PyPI torch (CUDA-enabled) in its own build folder and runs the test suite
# there: what `make test-torch2` does. The CUDA code is compiled and linked
# (the CUDA toolkit must be installed: nvcc, cuDNN headers come with torch);
# with no GPU the *_CUDA tests skip themselves.
#
# Usage: scripts/test-torch2.sh [BUILD_DIR]   (default: build-torch2)
# Environment: JOBS (default: nproc), OPENRM_REFERENCE_VENV (see
# scripts/install-reference.sh, which this runs first).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${1:-build-torch2}"
jobs="${JOBS:-$(nproc)}"
say() { echo "test-torch2.sh: $*" >&2; }

python="$(bash scripts/install-reference.sh --print-python)"
torch_root="$("$python" -c 'import os, torch; print(os.path.dirname(torch.__file__))')"
torch_version="$("$python" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)')"
if ! command -v nvcc >/dev/null 2>&1; then
  for dir in /usr/local/cuda/bin /usr/lib/cuda/bin; do
    if [[ -x "$dir/nvcc" ]]; then export PATH="$dir:$PATH"; break; fi
  done
fi
if ! command -v nvcc >/dev/null 2>&1; then
  say "error: PyPI's torch is built with CUDA and its CMake files need the CUDA toolkit (nvcc), which is not installed"
  exit 1
fi
say "LibTorch $torch_version at $torch_root; $(nvcc --version | tail -n 1)"

launcher=()
if command -v ccache >/dev/null 2>&1; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
# The torch folder itself is the prefix: its lib/ is then searched before the
# system's, where Debian's libtorch.so would otherwise be found first.
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$torch_root" "${launcher[@]}"
cmake --build "$build_dir" -j "$jobs"
ctest --test-dir "$build_dir" --output-on-failure -j "$jobs"
