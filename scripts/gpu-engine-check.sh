#!/usr/bin/env bash
# The CUDA inference engine on the GPU machine, in one call: builds build-gpu/
# (Release, CUDA on), runs the CUDA engine tests, builds one engine per
# precision from a checkpoint trained for one epoch on small synthetic data,
# and times them with `pointnet bench` (cls, 1024 points, B = 1024 and B = 1;
# the segmenter at 32 x 2500), beside PyTorch eager on the same GPU
# (bench/peers/torch_train_step.py --infer). Logs and JSON lines go to $OUT;
# a table is printed last. Exits non-zero if the build or a test fails.
# Usage: scripts/gpu-engine-check.sh [extra cmake arguments]
#   ENGINE_CHECK_ALT=0   skip the alternative trunk variants (POINTNET_ENGINE_TRUNK=alt)
#   ENGINE_CHECK_COMPILE=1  also time torch.compile(mode="max-autotune") (minutes of compilation)
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/gpu-build.sh
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
status=0
start=$(date +%s)
stamp() { echo "[$(( $(date +%s) - start )) s] $*"; }

stamp "== GPU"
nvidia-smi -L 2>/dev/null || echo "nvidia-smi not found"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu --format=csv 2>/dev/null
echo "profilers: $(command -v ncu || echo 'no ncu') $(command -v nsys || echo 'no nsys')"

gpu_build "$@" || exit 1
P=build-gpu/pointnet

stamp "== CUDA engine tests"
OMP_NUM_THREADS=8 timeout 300 build-gpu/pointnet_tests --gtest_filter='CudaEngine*:CudaRunner*:CudaArchitectures*' \
  --gtest_color=no > "$OUT/engine-tests.log" 2>&1
test_rc=$?
grep -E '^\[  (PASSED|FAILED|SKIPPED) |^\[==========\]|Failure|rel. error' "$OUT/engine-tests.log" | grep -v 'rel. error' | tail -n 30
grep -E 'rel. error' "$OUT/engine-tests.log" | sort -t: -k2 | awk '{print}' > "$OUT/engine-errors.log"
echo "measured errors: $OUT/engine-errors.log ($(wc -l < "$OUT/engine-errors.log") lines); largest per precision:"
for p in fp32 tf32 fp16 bf16 int8; do
  grep " $p " "$OUT/engine-errors.log" | awk -v p=$p '{v=$NF+0; if (v>m) m=v} END {printf "  %s max %.3g\n", p, m}'
done
if [ "$test_rc" -ne 0 ] || grep -q 'no CUDA device' "$OUT/engine-tests.log"; then
  echo "gpu-engine-check: CUDA engine tests FAILED or SKIPPED (rc $test_rc)" >&2
  status=1
fi

stamp "== engines (synthetic data, one epoch on the GPU)"
rm -rf build-gpu/esynth build-gpu/erun
$P synth --task cls --out build-gpu/esynth --points 1024 --train-per-class 40 --test-per-class 10 >/dev/null || status=1
$P train --data build-gpu/esynth --out build-gpu/erun --device cuda --epochs 1 --plain > "$OUT/train.log" 2>&1 || {
  tail -n 5 "$OUT/train.log"; status=1; }
ckpt=build-gpu/erun/checkpoint.safetensors
for p in fp32 tf32 fp16 bf16; do
  $P build --model $ckpt --device cuda --precision $p --out build-gpu/e-$p.engine > "$OUT/build-$p.log" 2>&1 || {
    cat "$OUT/build-$p.log"; status=1; }
done
$P build --model $ckpt --device cuda --precision int8 --calib build-gpu/esynth --calib-clouds 256 \
  --out build-gpu/e-int8.engine > "$OUT/build-int8.log" 2>&1 || { cat "$OUT/build-int8.log"; status=1; }
$P eval --model build-gpu/e-fp16.engine --data build-gpu/esynth 2>&1 | tail -n 2
$P eval --model build-gpu/e-int8.engine --data build-gpu/esynth 2>&1 | tail -n 2

stamp "== pointnet bench on the engines (cls, 1024 points)"
J="$OUT/engine-bench.jsonl"
: > "$J"
bench() {  # label, then pointnet bench arguments
  local label=$1
  shift
  if out=$(timeout 120 $P bench --json "$@" 2> "$OUT/bench-stderr.log"); then
    echo "$out" | python3 -c "import json,sys; r=json.loads(sys.stdin.read()); r['label']='$label'; print(json.dumps(r))" >> "$J"
  else
    echo "gpu-engine-check: bench $label FAILED: $(tail -n 3 "$OUT/bench-stderr.log")" >&2
    status=1
  fi
}
for p in fp16 int8 bf16 tf32 fp32; do
  bench "$p" --model build-gpu/e-$p.engine --batch 1024 --points 1024 --seconds 2
  bench "$p" --model build-gpu/e-$p.engine --batch 1 --points 1024 --seconds 2
done
# The same engines again: the spread between the two runs is the noise.
bench "fp16 again" --model build-gpu/e-fp16.engine --batch 1024 --points 1024 --seconds 2
bench "fp16 again" --model build-gpu/e-fp16.engine --batch 1 --points 1024 --seconds 2
if [ "${ENGINE_CHECK_ALT:-1}" = 1 ]; then
  for p in fp16 int8 bf16 tf32; do
    POINTNET_ENGINE_TRUNK=alt bench "$p alt" --model build-gpu/e-$p.engine --batch 1024 --points 1024 --seconds 1.5
  done
fi
stamp "== segmenter, random weights, 32 x 2500"
for p in fp16 int8 fp32; do
  bench "seg $p" --device cuda --task seg --precision $p --batch 32 --points 2500 --seconds 1.5
done
bench "cls-ft fp16" --device cuda --task cls --feature-transform --precision fp16 --batch 1024 --points 1024 --seconds 1.5

stamp "== where the time goes (POINTNET_ENGINE_PROFILE=1: no graphs, events between stages)"
for args in "fp16 1024" "fp16 1" "int8 1024" "fp32 1024" "tf32 1024"; do
  set -- $args
  POINTNET_ENGINE_PROFILE=1 $P bench --model build-gpu/e-$1.engine --batch $2 --points 1024 --iters 3 --warmup 1 \
    --json 2>&1 >/dev/null | tail -n 1 | sed "s/^/$1: /" | tee -a "$OUT/profile.log"
done

stamp "== PyTorch eager, same GPU and shapes (bench/peers/torch_train_step.py --infer)"
T="$OUT/peer.jsonl"
: > "$T"
python3 bench/peers/torch_train_step.py --infer --task cls --batch 1024 --points 1024 --classes 40 \
  --precisions fp16,bf16,tf32,fp32 --steps 20 --warmup 5 >> "$T" 2> "$OUT/peer-stderr.log" || status=1
python3 bench/peers/torch_train_step.py --infer --task cls --batch 1 --points 1024 --classes 40 \
  --precisions fp16,fp32 --steps 200 --warmup 20 >> "$T" 2>> "$OUT/peer-stderr.log" || status=1
python3 bench/peers/torch_train_step.py --infer --task seg --batch 32 --points 2500 --classes 50 \
  --precisions fp16,fp32 --steps 20 --warmup 5 >> "$T" 2>> "$OUT/peer-stderr.log" || status=1
if [ "${ENGINE_CHECK_COMPILE:-0}" = 1 ]; then
  stamp "== torch.compile(mode=max-autotune)"
  timeout 240 python3 bench/peers/torch_train_step.py --infer --compile max-autotune --task cls --batch 1024 \
    --points 1024 --classes 40 --precisions fp16 --steps 20 --warmup 5 >> "$T" 2>> "$OUT/peer-stderr.log" || status=1
fi

stamp "== summary"
python3 bench/engine_table.py "$J" "$T" | tee "$OUT/table.txt"
nvidia-smi -L 2>/dev/null
if [ "$status" -eq 0 ]; then echo "gpu-engine-check: OK"; else echo "gpu-engine-check: FAILED"; fi
exit "$status"
