#!/usr/bin/env bash
# GPU time per kernel of the training step (B = 32 x 2500, recorded as a CUDA
# graph), for deciding what to fuse next: builds build-gpu/, then runs
# `pointnet bench --train` under build-gpu/libkernel_profile.so (CUPTI) for the
# classifier, the classifier with the feature transform and the segmenter.
# Writes profile-*.txt to $OUT and prints the top of each.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
source scripts/gpu-build.sh
gpu_build || exit 1
[ -f build-gpu/libkernel_profile.so ] || { echo "no build-gpu/libkernel_profile.so (CUPTI not found)"; exit 1; }
status=0
for args in "cls ${PRECISION:-bf16} 40" "cls ${PRECISION:-bf16} 40 ft" "seg ${PRECISION:-bf16} 50"; do
  set -- $args
  ft=(); name="$1-$2"; [ "${4:-}" = ft ] && { ft=(--feature-transform); name="$name-ft"; }
  profile_step "$OUT/profile-$name.txt" "${TOP:-45}" 100 --task "$1" --precision "$2" --classes "$3" "${ft[@]}" 2>&1 |
    tail -n 3 || status=1
  echo "== $name (100 timed steps + 5 warm-up + the first)"
  head -n "${TOP:-45}" "$OUT/profile-$name.txt" 2>/dev/null || status=1
done
exit "$status"
