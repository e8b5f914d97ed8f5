# Sourced by the GPU scripts: builds build-gpu/ (Release, CUDA on) and sets
# the environment the binaries need. Returns non-zero if the build fails.
# shellcheck shell=bash

# The toolkit is often installed without being on PATH.
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH=/usr/local/cuda/bin:$PATH
fi
gpu_build() {
  # GPU_PREBUILT=1: the binaries built on the CI machine from this same tree
  # (Release, CUDA on), carried in $GPU_PREBUILT_DIR (default build/; strip
  # -o copies fit the 64 MiB a call carries better), instead of a build here:
  # ~105 s of a short device lease saved. Their libraries (CUDA 13, OpenBLAS,
  # HDF5, libpng) resolve on the GPU machine too. bench_wide_max_gpu is optional.
  # GPU_PREBUILT_DIR=build/carry.tgz: the folder as prebuilt-for-gpu.sh packs
  # it (gzip, ~15 of ~57 MB: the tree and the plain binaries no longer fit
  # the 64 MiB a call carries), unpacked here first; the archive holds a
  # folder of its own name less .tgz (carry/).
  if [ "${GPU_PREBUILT:-0}" = 1 ]; then
    local f dir=${GPU_PREBUILT_DIR:-build}
    if [ "${dir%.tgz}" != "$dir" ]; then
      tar -C "$(dirname "$dir")" -xzf "$dir" || { echo "gpu-build: cannot unpack $dir" >&2; return 1; }
      dir=${dir%.tgz}
    fi
    source scripts/source-digest.sh
    if [ ! -f "$dir/source-digest" ] || [ "$(cat "$dir/source-digest")" != "$(source_digest)" ]; then
      echo "gpu-build: $dir was not built from this tree (source-digest differs): run scripts/prebuilt-for-gpu.sh" >&2
      return 1
    fi
    mkdir -p build-gpu
    for f in pointnet pointnet_tests libkernel_profile.so bench_wide_max_gpu; do
      if [ -f "$dir/$f" ]; then cp "$dir/$f" "build-gpu/$f"
      elif [ "$f" != bench_wide_max_gpu ]; then echo "gpu-build: GPU_PREBUILT=1 but $dir/$f was not carried" >&2; return 1
      fi
    done
    # Not `ldd | grep -q`: grep's early exit kills ldd, and under pipefail the
    # pipeline then reads as no match.
    local missing
    missing=$(ldd build-gpu/pointnet_tests build-gpu/pointnet 2>&1 | grep "not found")
    if [ -n "$missing" ]; then
      echo "gpu-build: the prebuilt binaries miss libraries here; building instead" >&2
      echo "$missing" >&2
      rm -f build-gpu/pointnet build-gpu/pointnet_tests build-gpu/libkernel_profile.so build-gpu/bench_wide_max_gpu
    else
      echo "== prebuilt binaries from $dir (built from this tree on the CI machine)"
      export OPENBLAS_NUM_THREADS=1
      return 0
    fi
  fi
  local jobs
  jobs=$(nproc 2>/dev/null || echo 2)
  [ "$jobs" -gt 16 ] && jobs=16
  echo "== build (build-gpu, Release, CUDA on, -j$jobs)"
  local start
  start=$(date +%s)
  cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DPOINTNET_CUDA=ON "$@" >/dev/null || {
    echo "gpu-build: cmake configure failed" >&2; return 1; }
  cmake --build build-gpu -j"$jobs" >build-gpu/build.log 2>&1 || {
    tail -n 40 build-gpu/build.log >&2; echo "gpu-build: build failed" >&2; return 1; }
  if [ ! -f build-gpu/libpointnet_cuda.a ]; then
    echo "gpu-build: the CUDA backend was not built (no CUDA toolkit found?)" >&2
    return 1
  fi
  echo "build: $(( $(date +%s) - start )) s"
  # The pthread OpenBLAS runs its own thread pool beside OpenMP's and the two
  # spin against each other: keep it to one thread (see CMakeLists.txt).
  if ! grep -q '^OPENBLAS_LIBRARY:.*openblas-openmp' build-gpu/CMakeCache.txt; then
    echo "gpu-build: pthread OpenBLAS: OPENBLAS_NUM_THREADS=1"
    export OPENBLAS_NUM_THREADS=1
  fi
}

# GPU time per kernel of one training step shape under build-gpu/libkernel_profile.so
# (CUPTI, tools/kernel_profile): profile_step OUT_FILE TOP ITERS pointnet-bench-arguments...
# Writes OUT_FILE; returns non-zero if the library is missing or the run fails.
profile_step() {
  local file=$1 top=$2 iters=$3
  shift 3
  [ -f build-gpu/libkernel_profile.so ] || { echo "no build-gpu/libkernel_profile.so (CUPTI not found)"; return 1; }
  KERNEL_PROFILE_OUT="$file" KERNEL_PROFILE_TOP="$top" CUDA_INJECTION64_PATH=$PWD/build-gpu/libkernel_profile.so \
    timeout 60 build-gpu/pointnet bench --device cuda --batch 32 --points 2500 --train --warmup 5 --iters "$iters" "$@"
}

# The device machine returns at most 8 files from $OUT: pack_out_on_exit NAME
# points OUT at $OUT/NAME/ and packs it into $OUT/NAME.tgz when the script
# exits (a timeout's TERM too).
pack_out_on_exit() {
  PACKED_OUT=$OUT
  OUT=$PACKED_OUT/$1
  mkdir -p "$OUT"
  trap "tar czf '$PACKED_OUT/$1.tgz' -C '$PACKED_OUT' '$1' && rm -rf '$OUT'" EXIT
  trap 'exit 143' TERM INT
}
