#!/usr/bin/env bash
# One command for the GPU machine: builds with the CUDA backend into build-gpu/,
# runs the CUDA tests (every kernel against the CPU reference, the precision
# modes, whole training steps), then the full test suite, and says which GPU it
# ran on. Exits non-zero if the build or any test fails.
# Usage: scripts/gpu-check.sh [extra cmake arguments]
set -uo pipefail
cd "$(dirname "$0")/.."

# The toolkit is often installed without being on PATH.
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH=/usr/local/cuda/bin:$PATH
fi
jobs=$(nproc 2>/dev/null || echo 2)
[ "$jobs" -gt 16 ] && jobs=16

echo "== GPU"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi -L
else
  echo "nvidia-smi not found"
fi
command -v nvcc >/dev/null 2>&1 && nvcc --version | tail -n 2

echo "== build (build-gpu, Release, CUDA on, -j$jobs)"
start=$(date +%s)
if ! cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DPOINTNET_CUDA=ON "$@"; then
  echo "gpu-check: cmake configure failed" >&2
  exit 1
fi
if ! cmake --build build-gpu -j"$jobs"; then
  echo "gpu-check: build failed" >&2
  exit 1
fi
if [ ! -f build-gpu/libpointnet_cuda.a ]; then
  echo "gpu-check: the CUDA backend was not built (no CUDA toolkit found?)" >&2
  exit 1
fi
echo "build: $(( $(date +%s) - start )) s"

# The pthread OpenBLAS runs its own thread pool beside OpenMP's and the two
# spin against each other: keep it to one thread (see CMakeLists.txt).
if ! grep -q '^OPENBLAS_LIBRARY:.*openblas-openmp' build-gpu/CMakeCache.txt; then
  echo "gpu-check: pthread OpenBLAS: OPENBLAS_NUM_THREADS=1"
  export OPENBLAS_NUM_THREADS=1
fi

status=0
echo "== CUDA tests"
timeout 300 build-gpu/pointnet_tests --gtest_filter='Cuda*' --gtest_color=no 2>&1 | tee build-gpu/cuda-tests.log
if [ "${PIPESTATUS[0]}" -ne 0 ]; then
  echo "gpu-check: CUDA tests FAILED" >&2
  status=1
fi
# A CUDA test that skipped means the GPU was not usable: a failure here.
if grep -q 'no CUDA device' build-gpu/cuda-tests.log; then
  echo "gpu-check: CUDA tests were SKIPPED (no usable GPU)" >&2
  status=1
fi

echo "== all tests"
if ! timeout 300 build-gpu/pointnet_tests --gtest_brief=1 --gtest_color=no; then
  echo "gpu-check: tests FAILED" >&2
  status=1
fi

echo "== GPU"
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L
if [ "$status" -eq 0 ]; then echo "gpu-check: OK"; else echo "gpu-check: FAILED"; fi
exit "$status"
