#!/usr/bin/env bash
# Installs what is missing, builds everything with the tests, runs them all.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-tests
cd build
ctest --output-on-failure -j"$(nproc 2>/dev/null || echo 2)" --timeout 600
cd ..
# The installed library through find_package(pointnet), as an application uses it (examples/).
bash scripts/check-install.sh build
# Every file reader under libFuzzer (ASan + UBSan), 10 s each: about 2 minutes with the build.
bash scripts/fuzz.sh 10
