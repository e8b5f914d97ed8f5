#!/usr/bin/env bash
# ModelNet40 accuracy runs on the GPU machine: builds, then trains one run per
# precision at the same time on the one GPU (each run is bound by launches and
# host work, so sharing the GPU costs each little), and copies each finished
# model and its metrics log to $OUT (or ./gpu-out). Evaluate the models on the
# exact f32 test split afterwards (the machine gets only a train pack: the
# whole dataset does not fit the 64 MiB that travels).
# Usage: [SEED=1] scripts/gpu-modelnet40.sh PACK EPOCHS TIME_LIMIT_S PRECISION...
set -uo pipefail
cd "$(dirname "$0")/.."
pack=$1 epochs=$2 limit=$3
shift 3
out=${OUT:-gpu-out}
mkdir -p "$out"
source scripts/gpu-build.sh
nvidia-smi -L
gpu_build || exit 1

threads=$(( $(nproc) / $# ))
[ "$threads" -lt 1 ] && threads=1
pids=()
for precision in "$@"; do
  rm -rf "build-gpu/mn40-$precision"
  # SIGINT at the limit: the trainer finishes the batch and saves a checkpoint.
  OMP_NUM_THREADS=$threads timeout -s INT "$limit" build-gpu/pointnet train --data "$pack" --test-data none \
    --device cuda --precision "$precision" --epochs "$epochs" --seed "${SEED:-1}" --plain \
    --out "build-gpu/mn40-$precision" > "build-gpu/mn40-$precision.log" 2>&1 &
  pids+=($!)
done
status=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || status=1
done
for precision in "$@"; do
  run="build-gpu/mn40-$precision"
  echo "== $precision"
  tail -n 3 "$run.log"
  cp "$run.log" "$out/mn40-$precision.log"
  [ -f "$run/metrics.jsonl" ] && cp "$run/metrics.jsonl" "$out/mn40-$precision.jsonl"
  [ -f "$run/model.safetensors" ] && cp "$run/model.safetensors" "$out/mn40-$precision.safetensors"
  [ -f "$run/metrics.jsonl" ] && tail -n 1 "$run/metrics.jsonl"
done
exit "$status"
