#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, clang + ASan + UBSan) into
# build-fuzz/, replays every kept crash reproducer (tests/fuzz/regressions/),
# then fuzzes each reader for SECONDS (default 10) from its seed corpus
# (tests/fuzz/corpus/<target>/), as many targets at a time as there are cores.
# Exit status 1 if anything crashed; the input is saved under build-fuzz/crashes/.
# Usage: [FUZZ_TARGETS="ply pcd"] scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
read -r -a targets <<< "${FUZZ_TARGETS:-npy off ply pcd lzf pts pack pth h5 layouts}"  # FUZZ_TARGETS: a subset

# clang (libFuzzer, sanitizers) and libomp-dev (the pack reader uses OpenMP):
# scripts/setup.sh --with-tests installs them.
if ! command -v clang++ >/dev/null || ! dpkg -s libomp-dev >/dev/null 2>&1; then
  echo "fuzz: needs clang and libomp-dev: run scripts/setup.sh --with-tests (or apt-get install clang libomp-dev)" >&2
  exit 1
fi

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B build-fuzz -DPOINTNET_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ "${launcher[@]}" >/dev/null
jobs=$(nproc 2>/dev/null || echo 2)
cmake --build build-fuzz -j"$jobs" >/dev/null
bin=build-fuzz/tests/fuzz
# One OpenMP thread a target (the pack verifier is parallel): the targets already run one per core.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# libhdf5's own leaks on malformed files are not ours (tests/fuzz/lsan.supp says which).
export LSAN_OPTIONS="suppressions=$PWD/tests/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

# fuzz_h5 exists only where libhdf5-dev was found (tests/fuzz/CMakeLists.txt).
built=()
for t in "${targets[@]}"; do
  if [ -x "$bin/fuzz_$t" ]; then built+=("$t"); else echo "fuzz: $t skipped (not built: fuzz_h5 needs libhdf5-dev)"; fi
done
targets=("${built[@]}")

# Every input that once crashed a target must now pass.
status=0
for t in "${targets[@]}"; do
  dir=tests/fuzz/regressions/$t
  [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ] || continue
  if ! "$bin/fuzz_$t" "$dir"/* >"build-fuzz/regressions-$t.log" 2>&1; then
    echo "fuzz: $t regression reproducer fails again; see build-fuzz/regressions-$t.log"
    status=1
  fi
done

# Fuzz: a scratch copy of each seed corpus (new inputs stay out of the source tree).
mkdir -p build-fuzz/crashes
run_one() {
  local t=$1 seconds=$2 bin=$3
  local work=build-fuzz/corpus/$t
  mkdir -p "$work"
  cp -n tests/fuzz/corpus/"$t"/* "$work"/ 2>/dev/null || true
  if "$bin/fuzz_$t" "$work" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=1024 \
       -artifact_prefix="build-fuzz/crashes/$t-" -print_final_stats=1 >"build-fuzz/fuzz-$t.log" 2>&1; then
    echo "fuzz: $t ok ($(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "build-fuzz/fuzz-$t.log" | grep -o '[0-9]*$') runs in ${seconds}s)"
  else
    echo "fuzz: $t FAILED; see build-fuzz/fuzz-$t.log and build-fuzz/crashes/$t-*"
    return 1
  fi
}
export -f run_one
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one "$@"' _ {} "$seconds" "$bin" || status=1
rm -rf /tmp/pointnet_fuzz_pack_*.pnpack /tmp/pointnet_fuzz_h5_* /tmp/pointnet_fuzz_layouts_*
exit $status
