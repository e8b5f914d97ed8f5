#!/usr/bin/env bash
# ModelNet40 accuracy runs on the GPU machine: builds, then trains one run per
# precision at the same time on the one GPU (each run is bound by launches and
# host work, so sharing the GPU costs each little), and copies each finished
# model and its metrics log to $OUT (or ./gpu-out). Evaluate the models on the
# exact f32 test split afterwards (the machine gets only a train pack: the
# whole dataset does not fit the 64 MiB that travels).
# PACK may be gzipped (PACK.gz, unpacked into build-gpu/ first): the f16 train
# pack is 61 MB and the tree ~7 MB, over the 64 MiB a device call carries;
# `gzip -1 -k data/modelnet40-train-f16.pack` makes it 54 MB.
# Usage: [SEED=1] scripts/gpu-modelnet40.sh PACK EPOCHS TIME_LIMIT_S RUN...
#   RUN: PRECISION[+fc32][@SEED], e.g. bf16, bf16+fc32@2 (+fc32: --fp32-fc;
#   @SEED overrides SEED for that run). TRAIN_ARGS: more `pointnet train`
#   flags for every run (e.g. another recipe).
set -uo pipefail
cd "$(dirname "$0")/.."
pack=$1 epochs=$2 limit=$3
shift 3
out=${OUT:-gpu-out}
mkdir -p "$out"
source scripts/gpu-build.sh
nvidia-smi -L
gpu_build || exit 1
if [[ $pack == *.gz ]]; then
  unpacked="build-gpu/$(basename "${pack%.gz}")"
  gunzip -c "$pack" > "$unpacked" || { echo "gpu-modelnet40: cannot unpack $pack" >&2; exit 1; }
  pack=$unpacked
fi

threads=$(( $(nproc) / $# ))
[ "$threads" -lt 1 ] && threads=1
pids=()
for spec in "$@"; do
  precision=${spec%%[+@]*}
  seed=${SEED:-1}
  [[ $spec == *@* ]] && seed=${spec##*@}
  read -r -a extra <<< "${TRAIN_ARGS:-}"
  [[ $spec == *+fc32* ]] && extra+=(--fp32-fc)
  run=${spec//[+@]/-}
  rm -rf "build-gpu/mn40-$run"
  # SIGINT at the limit: the trainer finishes the batch and saves a checkpoint.
  OMP_NUM_THREADS=$threads timeout -s INT "$limit" build-gpu/pointnet train --data "$pack" --test-data none \
    --device cuda --precision "$precision" "${extra[@]}" --epochs "$epochs" --seed "$seed" --plain \
    --out "build-gpu/mn40-$run" > "build-gpu/mn40-$run.log" 2>&1 &
  pids+=($!)
done
status=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || status=1
done
for spec in "$@"; do
  name=${spec//[+@]/-}
  run="build-gpu/mn40-$name"
  echo "== $spec"
  tail -n 3 "$run.log"
  cp "$run.log" "$out/mn40-$name.log"
  [ -f "$run/metrics.jsonl" ] && cp "$run/metrics.jsonl" "$out/mn40-$name.jsonl"
  [ -f "$run/model.safetensors" ] && cp "$run/model.safetensors" "$out/mn40-$name.safetensors"
  [ -f "$run/metrics.jsonl" ] && tail -n 1 "$run/metrics.jsonl"
done
exit "$status"
