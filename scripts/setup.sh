#!/usr/bin/env bash
# Installs what is missing (Debian/Ubuntu packages) and builds pointnet into build/.
# Usage: scripts/setup.sh [--with-tests]
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=0
[ "${1:-}" = "--with-tests" ] && with_tests=1

packages=(cmake g++ make libopenblas-openmp-dev libcli11-dev nlohmann-json3-dev libpng-dev libhdf5-dev)
[ "$with_tests" = 1 ] && packages+=(libgtest-dev clang libomp-dev)  # clang: scripts/fuzz.sh (libFuzzer)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 || {
    $sudo_cmd apt-get update -q >/dev/null
    $sudo_cmd apt-get install -y -q "${missing[@]}"
  }
fi

tests_flag=OFF
[ "$with_tests" = 1 ] && tests_flag=ON
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPOINTNET_BUILD_TESTS="$tests_flag" >/dev/null
jobs=$(nproc 2>/dev/null || echo 2)
cmake --build build -j"$jobs"
echo "setup: built build/pointnet"
