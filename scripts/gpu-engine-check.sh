#!/usr/bin/env bash
# The CUDA inference engine on the GPU machine, in one call: builds build-gpu/
# (Release, CUDA on), runs the CUDA engine tests, builds one engine per
# precision from a checkpoint trained for one epoch on small synthetic data,
# and times them with `pointnet bench` (cls, 1024 points, B = 1024 and B = 1),
# beside PyTorch eager on the same GPU (bench/peers/torch_train_step.py
# --infer); the tests and the main benchmarks again with the wgmma trunk
# (POINTNET_ENGINE_TRUNK); then a per-stage profile, the segmenter at 32 x 2500
# and, in the time left, torch.compile. At most 6 files go to $OUT (the device tool returns 8):
# engine-tests.log, engine-bench.jsonl, peer.jsonl, profile.log, misc.log,
# table.txt. Exits non-zero if the build or a test fails.
# Usage: scripts/gpu-engine-check.sh [extra cmake arguments]
#   ENGINE_CHECK_EXTRA=0    only the tests, the main benchmarks and the peer
#   ENGINE_CHECK_WGMMA=0    skip the wgmma trunk variants (tests and benchmarks)
#   ENGINE_CHECK_COMPILE=0  skip torch.compile(mode="max-autotune") (it runs last, in the time left
#                           of ENGINE_CHECK_BUDGET seconds, default 400)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
M="$OUT/misc.log"
: > "$M"
status=0
start=$(date +%s)
stamp() { echo "[$(( $(date +%s) - start )) s] $*"; }

stamp "== GPU"
nvidia-smi -L 2>/dev/null || echo "nvidia-smi not found"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu --format=csv 2>/dev/null
command -v nvcc >/dev/null 2>&1 || export PATH=/usr/local/cuda/bin:$PATH

stamp "== build (build-gpu, Release, CUDA on)"
jobs=$(nproc 2>/dev/null || echo 2)
[ "$jobs" -gt 16 ] && jobs=16
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DPOINTNET_CUDA=ON "$@" >> "$M" 2>&1 &&
  cmake --build build-gpu -j"$jobs" --target pointnet pointnet_tests > build-gpu/build.log 2>&1 || {
  tail -n 40 build-gpu/build.log; echo "gpu-engine-check: build FAILED"; cp build-gpu/build.log "$M"; exit 1; }
grep -q 'openblas-openmp' build-gpu/CMakeCache.txt || export OPENBLAS_NUM_THREADS=1
P=build-gpu/pointnet

# The tests once per kernel variant: the caller's environment picks it
# (POINTNET_ENGINE_TRUNK, engine_trunk.cu; POINTNET_ENGINE_FP32, cuda_runner.cpp).
: > "$OUT/engine-tests.log"
run_tests() {  # label [timeout]
  local label=$1 log=build-gpu/engine-tests-$1.log rc
  stamp "== CUDA engine tests, kernel variant $label"
  OMP_NUM_THREADS=8 timeout "${2:-120}" build-gpu/pointnet_tests \
    --gtest_filter='CudaEngine*:CudaRunner*:CudaArchitectures*' --gtest_color=no > "$log" 2>&1
  rc=$?
  { echo "===== trunk variant $label (rc $rc)"; cat "$log"; } >> "$OUT/engine-tests.log"
  grep -E '^\[  (PASSED|FAILED|SKIPPED) |^\[==========\]|Failure|Expected|Which is|error' "$log" | head -n 30
  echo "largest measured error per precision (test lines 'rel. error'):"
  for p in fp32 tf32 fp16 bf16 int8; do
    grep "info.* $p .*rel. error" "$log" | awk -v p=$p '{v=$NF+0; if (v>m) m=v} END {printf "  %s %.3g\n", p, m}'
  done
  if [ "$rc" -ne 0 ] || grep -q 'no CUDA device' "$log"; then
    echo "gpu-engine-check: CUDA engine tests ($label) FAILED or SKIPPED (rc $rc)"
    status=1
    return 1
  fi
}
run_tests default
# A variant is benchmarked only after its tests pass (a hang would eat the lease).
wgmma_ok=0; wgmma1_ok=0
if [ "${ENGINE_CHECK_WGMMA:-1}" = 1 ]; then
  POINTNET_ENGINE_TRUNK=wgmma run_tests wgmma 60 && wgmma_ok=1
  POINTNET_ENGINE_TRUNK=wgmma1 run_tests wgmma1 60 && wgmma1_ok=1
fi
ffma_ok=0; POINTNET_ENGINE_FP32=ffma run_tests fp32-ffma 60 && ffma_ok=1

stamp "== engines (synthetic data, one epoch on the GPU)"
rm -rf build-gpu/esynth build-gpu/erun
$P synth --task cls --out build-gpu/esynth --points 1024 --train-per-class 40 --test-per-class 10 >> "$M" 2>&1 || status=1
$P train --data build-gpu/esynth --out build-gpu/erun --device cuda --epochs 1 --plain >> "$M" 2>&1 || {
  tail -n 5 "$M"; status=1; }
ckpt=build-gpu/erun/checkpoint.safetensors
for p in fp32 tf32 fp16 bf16; do
  $P build --model $ckpt --device cuda --precision $p --out build-gpu/e-$p.engine >> "$M" 2>&1 || {
    tail -n 3 "$M"; status=1; }
done
$P build --model $ckpt --device cuda --precision int8 --calib build-gpu/esynth --calib-clouds 256 \
  --out build-gpu/e-int8.engine >> "$M" 2>&1 || { tail -n 3 "$M"; status=1; }
for p in fp32 fp16 int8; do
  echo "eval $p engine: $($P eval --model build-gpu/e-$p.engine --data build-gpu/esynth 2>&1 | grep -i accuracy | head -n 1)"
done

J="$OUT/engine-bench.jsonl"
: > "$J"
bench() {  # label, then pointnet bench arguments (the environment picks the trunk variant)
  local label=$1 out
  shift
  if out=$(timeout 60 $P bench --json "$@" 2>> "$M"); then
    echo "$out" | python3 -c "import json,sys; r=json.loads(sys.stdin.read()); r['label']='$label'; print(json.dumps(r))" >> "$J"
  else
    echo "gpu-engine-check: bench $label FAILED: $(tail -n 2 "$M")"
    status=1
  fi
}
stamp "== pointnet bench on the engines (cls, 1024 points), default kernels"
for p in fp16 int8 bf16 tf32 fp32; do
  bench "$p" --model build-gpu/e-$p.engine --batch 1024 --points 1024 --seconds 1.5
  bench "$p" --model build-gpu/e-$p.engine --batch 1 --points 1024 --seconds 1.5
done
# The same engine again: the spread between the two is the noise.
bench "fp16 again" --model build-gpu/e-fp16.engine --batch 1024 --points 1024 --seconds 1.5
bench "fp16 again" --model build-gpu/e-fp16.engine --batch 1 --points 1024 --seconds 1.5
# fp32 engines: the 3xTF32 kernels (default) against the plain FFMA ones.
bench "fp32 again" --model build-gpu/e-fp32.engine --batch 1024 --points 1024 --seconds 1.5
if [ "$ffma_ok" = 1 ]; then
  POINTNET_ENGINE_FP32=ffma bench "fp32 ffma" --model build-gpu/e-fp32.engine --batch 1024 --points 1024 --seconds 1.5
  POINTNET_ENGINE_FP32=ffma bench "fp32 ffma" --model build-gpu/e-fp32.engine --batch 1 --points 1024 --seconds 1.5
fi
stamp "== the wgmma trunk (POINTNET_ENGINE_TRUNK=wgmma, wgmma1; tests passed: $wgmma_ok, $wgmma1_ok)"
if [ "$wgmma_ok" = 1 ]; then
  for p in fp16 int8 bf16 tf32; do
    POINTNET_ENGINE_TRUNK=wgmma bench "$p wgmma" --model build-gpu/e-$p.engine --batch 1024 --points 1024 --seconds 1.5
  done
  for p in fp16 int8; do
    POINTNET_ENGINE_TRUNK=wgmma bench "$p wgmma" --model build-gpu/e-$p.engine --batch 1 --points 1024 --seconds 1.5
  done
  POINTNET_ENGINE_TRUNK=wgmma bench "fp16 wgmma again" --model build-gpu/e-fp16.engine --batch 1024 --points 1024 \
    --seconds 1.5
fi
if [ "$wgmma1_ok" = 1 ]; then
  for p in fp16 int8; do
    POINTNET_ENGINE_TRUNK=wgmma1 bench "$p wgmma1" --model build-gpu/e-$p.engine --batch 1024 --points 1024 --seconds 1.5
  done
fi

stamp "== PyTorch eager, same GPU and shapes (bench/peers/torch_train_step.py --infer)"
T="$OUT/peer.jsonl"
: > "$T"
peer() { timeout "${PEER_TIMEOUT:-90}" python3 bench/peers/torch_train_step.py --infer "$@" >> "$T" 2>> "$M" || { echo "peer $* FAILED"; status=1; }; }
peer --task cls --batch 1024 --points 1024 --classes 40 --precisions fp16,bf16,tf32,fp32 --steps 20 --warmup 5
peer --task cls --batch 1 --points 1024 --classes 40 --precisions fp16,fp32 --steps 200 --warmup 20

if [ "${ENGINE_CHECK_EXTRA:-1}" = 1 ]; then
  stamp "== where the time goes (POINTNET_ENGINE_PROFILE=1: no graphs, one stream, events between stages)"
  : > "$OUT/profile.log"
  for args in "fp16 1024 -" "fp16 1 -" "fp16 1024 wgmma" "int8 1024 wgmma" "tf32 1024 wgmma" "fp32 1024 -"; do
    set -- $args
    v=$3; [ "$v" = - ] && v=
    [ "$v" = wgmma ] && [ "$wgmma_ok" != 1 ] && continue
    POINTNET_ENGINE_TRUNK=$v POINTNET_ENGINE_PROFILE=1 timeout 30 $P bench --model build-gpu/e-$1.engine --batch $2 \
      --points 1024 --iters 3 --warmup 1 --json 2>&1 >/dev/null | tail -n 1 | sed "s/^/$1 ${v:-default}: /" | tee -a "$OUT/profile.log"
  done
  stamp "== segmenter (random weights, 32 x 2500) and cls with the feature transform"
  for p in fp16 int8 fp32; do
    bench "seg $p" --device cuda --task seg --precision $p --batch 32 --points 2500 --seconds 1
  done
  [ "$ffma_ok" = 1 ] && POINTNET_ENGINE_FP32=ffma bench "seg fp32 ffma" --device cuda --task seg --precision fp32 \
    --batch 32 --points 2500 --seconds 1
  bench "cls-ft fp16" --device cuda --task cls --feature-transform --precision fp16 --batch 1024 --points 1024 --seconds 1
  if [ "$wgmma_ok" = 1 ]; then
    for p in fp16 int8; do
      POINTNET_ENGINE_TRUNK=wgmma bench "seg $p wgmma" --device cuda --task seg --precision $p --batch 32 --points 2500 \
        --seconds 1
    done
    POINTNET_ENGINE_TRUNK=wgmma bench "cls-ft fp16 wgmma" --device cuda --task cls --feature-transform --precision fp16 \
      --batch 1024 --points 1024 --seconds 1
  fi
  peer --task seg --batch 32 --points 2500 --classes 50 --precisions fp16,fp32 --steps 20 --warmup 5
fi
left=$(( ${ENGINE_CHECK_BUDGET:-400} - ($(date +%s) - start) ))
if [ "${ENGINE_CHECK_COMPILE:-1}" = 1 ] && [ "$left" -gt 60 ]; then
  stamp "== torch.compile(mode=max-autotune), fp16, B = 1024 ($left s left for it)"
  PEER_TIMEOUT=$(( left - 15 )) peer --compile max-autotune --task cls --batch 1024 --points 1024 --classes 40 \
    --precisions fp16 --steps 20 --warmup 3
else
  echo "(torch.compile skipped: $left s left)"
fi

stamp "== summary"
python3 bench/engine_table.py "$J" "$T" | tee "$OUT/table.txt"
nvidia-smi -L 2>/dev/null
if [ "$status" -eq 0 ]; then echo "gpu-engine-check: OK"; else echo "gpu-engine-check: FAILED"; fi
exit "$status"
