#!/usr/bin/env bash
# The installed library as an application uses it: `cmake --install` the build
# into a temporary prefix, build examples/ against it with find_package(pointnet),
# and classify a cloud with an engine built from a freshly trained tiny model.
# Usage: scripts/check-install.sh [BUILD_DIR]   (default build/)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
quiet() { "$@" >"$work/log" 2>&1 || { cat "$work/log" >&2; echo "check-install: failed: $*" >&2; exit 1; }; }
quiet cmake --install "$build" --prefix "$work/prefix"
quiet cmake -S examples -B "$work/example" -DCMAKE_PREFIX_PATH="$work/prefix"
quiet cmake --build "$work/example"
bin=$work/prefix/bin/pointnet
quiet "$bin" synth --task cls --out "$work/data" --train-per-class 4 --test-per-class 1 --points 128
quiet "$bin" train --data "$work/data" --out "$work/run" --plain --epochs 1 --points 128 --batch-size 8 --test-data none
quiet "$bin" build --model "$work/run/model.safetensors" --out "$work/model.engine"
awk 'BEGIN { srand(1); for (i = 0; i < 200; i++) print rand(), rand(), rand() }' >"$work/cloud.xyz"
out=$("$work/example/classify" "$work/model.engine" "$work/cloud.xyz")
class=${out% *}
if ! grep -qx "$class" <(ls "$work/data"); then
  echo "check-install: the example printed '$out', not one of the dataset's classes" >&2
  exit 1
fi
echo "check-install: find_package(pointnet) example classified a cloud as '$class' (ok)"
