#!/usr/bin/env bash
# Builds build/ (Release, CUDA on) here and puts stripped copies of what the
# GPU session check runs into build/carry/, for a device call that carries
# them instead of building there, packed as build/carry.tgz (carry that, and
# pass GPU_PREBUILT=1 GPU_PREBUILT_DIR=build/carry.tgz;
# scripts/gpu-build.sh): ~105 s of a short lease saved. bench_wide_max_gpu is
# left out unless asked for (WITH_WIDE_MAX=1).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPOINTNET_CUDA=ON > /dev/null
cmake --build build -j"$(nproc)" > /dev/null
rm -rf build/carry
mkdir -p build/carry
files=(pointnet pointnet_tests libkernel_profile.so)
[ "${WITH_WIDE_MAX:-0}" = 1 ] && files+=(bench_wide_max_gpu)
for f in "${files[@]}"; do strip -o "build/carry/$f" "build/$f"; done
# What they were built from: scripts/gpu-build.sh refuses them for another tree.
source scripts/source-digest.sh
source_digest > build/carry/source-digest
# Packed: the tree and the plain binaries came to ~66 MB, over what a call
# carries; carry build/carry.tgz and pass GPU_PREBUILT_DIR=build/carry.tgz
# (scripts/gpu-build.sh unpacks it).
tar -C build -czf build/carry.tgz carry
tracked=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -n 1 | cut -f1)
carried=$(du -cb build/carry.tgz | tail -n 1 | cut -f1)
echo "build/carry.tgz: $(( carried / 1048576 )) MiB, tracked tree $(( tracked / 1048576 )) MiB (limit 64 MiB together)"
