#!/usr/bin/env bash
# The part of scripts/gpu-check.sh and scripts/gpu-engine-check.sh that fits a
# short device lease (one call, under 10 minutes): build build-gpu/, the CUDA
# tests (every kernel against the CPU reference, recorded vs eager training
# steps, the engine runner; then the runner again with the FFMA fp32 kernels),
# and the benchmarks this session's changes need, each beside its baseline in
# the same call: fp32 engines by 3xTF32 vs FFMA, training steps recorded as a
# CUDA graph vs op by op, and PyTorch eager's training step on the same shapes.
# Writes bench.jsonl, peer.jsonl and tests.log into $OUT/session-check.tgz. Exits non-zero if the
# build or a test fails.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0
source scripts/gpu-build.sh
pack_out_on_exit session-check
start=$(date +%s)
stamp() { echo "[$(( $(date +%s) - start )) s] $*"; }
nvidia-smi -L 2>/dev/null
gpu_build || exit 1
P=build-gpu/pointnet
status=0

# One engine benchmark into $OUT/engine.jsonl and a console line.
engine_bench() {  # label env ("" for none) batch precision [task points]
  env $2 timeout 40 $P bench --device cuda --task ${5:-cls} --precision $4 --batch $3 --points ${6:-1024} --seconds 1.5 \
    --json 2>/dev/null | tail -n 1 | python3 -c "
import json, sys
r = json.loads(sys.stdin.read()); r['variant'] = '$1'
print(json.dumps(r))" >> "$OUT/engine.jsonl" || { echo "engine bench $*: FAILED"; status=1; return; }
  tail -n 1 "$OUT/engine.jsonl" | python3 -c "
import json, sys
r = json.loads(sys.stdin.read())
print('engine %s %-5s B=%-5d %-9s %9.0f clouds/s  gpu %9.0f  pipelined %9.0f%s  median %.4f ms  err %.2e  %s' % (r['task'], r['precision'], r['batch'],
    r['variant'], r['clouds_per_s'], r.get('gpu_clouds_per_s', 0), r.get('pipelined_clouds_per_s', 0),
    '' if r.get('pipelined_same_output', True) else ' (DIFFERENT OUTPUT)', r['latency_ms']['median'], r.get('check_rel_error', -1),
    r.get('trunk_kernels')))"
}
# conv3 + max alone at B = 1024 x 1024 (bench_wide_max_gpu: every precision,
# checked exactly against the CPU first, beside cuBLAS's GEMM) into $OUT/wide_max.jsonl.
wide_max_bench() {
  timeout 90 build-gpu/bench_wide_max_gpu --batch 1024 --points 1024 --json > "$OUT/wide_max-1024.txt" 2>&1 || status=1
  grep -v '^{' "$OUT/wide_max-1024.txt"
  grep '^{' "$OUT/wide_max-1024.txt" | tee -a "$OUT/wide_max.jsonl" | python3 -c "
import json, sys
for l in sys.stdin:
    r = json.loads(l)
    print('%-5s %-34s B=%-5d %9.2f us %7.1f TFLOP/s' % (r['precision'], r['program'], r['batch'], r['us'], r['tflops']))"
}
# SESSION_WIDE_MAX=1: the engine's conv3 + max alone (wgmma, weight-stationary)
# beside cuBLAS's GEMM of the same shape (build-gpu/bench_wide_max_gpu), checked
# against the CPU first, into $OUT/wide_max.jsonl; the engine tests; engines
# with the split trunk (default) vs the fused mma.sync one, the other split
# tile size, and with fp32 wide
# FCs into $OUT/engine.jsonl; the fp16 engine's kernel profile; Nsight
# Compute on its first trunk kernel into $OUT/ncu-split-trunk.txt.
# SESSION_LEAN=1 (with SESSION_WIDE_MAX): only the fused-wide tests and the
# benchmarks of the variants not yet timed (fused-wide, the segmenter's head).
lean=${SESSION_LEAN:-0}
if [ "${SESSION_WIDE_MAX:-0}" != 0 ]; then
  stamp "== conv3 + max alone: wgmma wide_max vs cuBLAS GEMM (bench_wide_max_gpu)"
  [ "$lean" = 1 ] || wide_max_bench
  [ "$lean" = 1 ] || { stamp "== engine tests (the split trunk is the default on sm_90)"
  timeout 150 build-gpu/pointnet_tests --gtest_filter='CudaRunner*:CudaArchitectures*:CudaEngine*' \
    --gtest_color=no > "$OUT/tests-split.log" 2>&1 || status=1
  grep -E '^\[  (PASSED|FAILED) |Failure|Which is' "$OUT/tests-split.log" | head -n 20
  grep -E 'info.*(150 x 200|70 x 300)' "$OUT/tests-split.log" | head -n 8
  # Tile sizes besides the defaults (fp16 128x4, bf16 128 = three blocks, int8 256): 128 and 256 for each
  # (some of these runs repeat a default).
  for tile in 128 256; do
    POINTNET_ENGINE_SPLIT_TILE=$tile timeout 150 build-gpu/pointnet_tests \
      --gtest_filter='CudaArchitectures*.EveryFloat*/cls_3ch:CudaArchitectures*.Int8*/cls_3ch' \
      --gtest_color=no > "$OUT/tests-split$tile.log" 2>&1 || status=1
    grep -E '^\[  (PASSED|FAILED) |Failure|Which is' "$OUT/tests-split$tile.log" | sed "s/^/SPLIT_TILE=$tile: /" | head -n 8
  done; }
  stamp "== engine tests with POINTNET_ENGINE_TRUNK=fused-wide"
  POINTNET_ENGINE_TRUNK=fused-wide timeout 150 build-gpu/pointnet_tests \
    --gtest_filter='CudaArchitectures*/cls_3ch:CudaArchitectures*/seg_3ch:CudaArchitectures*/cls_6ch' \
    --gtest_color=no > "$OUT/tests-fused-wide.log" 2>&1 || status=1
  stamp "== the segmenter's GEMM head (default): its own test, and the segmenters' with POINTNET_ENGINE_SEG_HEAD=fused"
  timeout 100 build-gpu/pointnet_tests --gtest_filter='CudaRunnerEntries.Segmenter*' --gtest_color=no \
    > "$OUT/tests-seg-head.log" 2>&1 || status=1
  POINTNET_ENGINE_SEG_HEAD=fused timeout 150 build-gpu/pointnet_tests --gtest_filter='CudaArchitectures*/seg_*' \
    --gtest_color=no >> "$OUT/tests-seg-head.log" 2>&1 || status=1
  grep -E '^\[  (PASSED|FAILED) |Failure|Which is' "$OUT/tests-seg-head.log" | sed 's/^/seg head: /' | head -n 12
  grep -E '^\[  (PASSED|FAILED) |Failure|Which is' "$OUT/tests-fused-wide.log" | sed 's/^/fused-wide: /' | head -n 12
  stamp "== engines: default (split trunk, TF32 wide FCs) vs POINTNET_ENGINE_TRUNK=mma vs POINTNET_ENGINE_FC=fp32"
  for prec in fp16 int8 bf16 tf32; do
    engine_bench default "" 1024 $prec
    if [ "$lean" = 1 ]; then
      case $prec in fp16|int8|bf16) engine_bench fused-wide POINTNET_ENGINE_TRUNK=fused-wide 1024 $prec ;; esac
      continue
    fi
    engine_bench mma POINTNET_ENGINE_TRUNK=mma 1024 $prec
    [ $prec = tf32 ] || engine_bench fused-wide POINTNET_ENGINE_TRUNK=fused-wide 1024 $prec
    engine_bench fc-fp32 POINTNET_ENGINE_FC=fp32 1024 $prec
    case $prec in
      int8) engine_bench tile128 POINTNET_ENGINE_SPLIT_TILE=128 1024 $prec ;;
      fp16) engine_bench tile256 POINTNET_ENGINE_SPLIT_TILE=256 1024 $prec
            engine_bench tile128 POINTNET_ENGINE_SPLIT_TILE=128 1024 $prec ;;
      bf16) engine_bench tile256 POINTNET_ENGINE_SPLIT_TILE=256 1024 $prec
            engine_bench tile128 POINTNET_ENGINE_SPLIT_TILE=128 1024 $prec ;;
    esac
  done
  # The segmenter, B = 32 x 2500: its head as cuBLASLt GEMMs (default) vs one kernel.
  for prec in fp16 bf16 tf32 int8; do
    engine_bench default "" 32 $prec seg 2500
    [ $prec = int8 ] || engine_bench seg-fused POINTNET_ENGINE_SEG_HEAD=fused 32 $prec seg 2500
  done
  [ "$lean" = 1 ] || for b in 128 1; do
    engine_bench default "" $b fp16
    [ $b = 1 ] || engine_bench fused-wide POINTNET_ENGINE_TRUNK=fused-wide $b fp16
    engine_bench mma POINTNET_ENGINE_TRUNK=mma $b fp16
  done
  if [ "$lean" = 1 ]; then stamp "done"; [ $status = 0 ] && echo "gpu-session-check: OK" || echo "gpu-session-check: FAILED"; exit $status; fi
  KERNEL_PROFILE_OUT=$OUT/engine-profile-fp16.txt KERNEL_PROFILE_TOP=12 \
    CUDA_INJECTION64_PATH=$PWD/build-gpu/libkernel_profile.so timeout 60 $P bench --device cuda --task cls \
    --precision fp16 --batch 1024 --points 1024 --iters 20 > /dev/null 2>&1
  head -n 14 "$OUT/engine-profile-fp16.txt" 2>/dev/null | cut -c1-140
  ncu=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
  if [ -x "$ncu" ]; then
    timeout 90 "$ncu" --kernel-name "regex:trunk_kernel" --launch-count 1 --set full --import-source no \
      $P bench --device cuda --task cls --precision fp16 --batch 1024 --points 1024 --iters 1 --warmup 1 \
      > "$OUT/ncu-split-trunk.txt" 2>&1 || echo "ncu FAILED (not counted)"
    grep -E 'Duration|Registers Per|Achieved Occupancy|Issue Slots Busy|No Eligible|Compute \(SM\) Throughput|Memory Throughput' \
      "$OUT/ncu-split-trunk.txt" | head -n 12
  fi
  # SESSION_WIDE_MAX=only: nothing else.
  if [ "${SESSION_WIDE_MAX}" = only ]; then
    stamp "done"
    [ $status = 0 ] && echo "gpu-session-check: OK" || echo "gpu-session-check: FAILED"
    exit $status
  fi
fi

# The engine tests that a change to the classifier's kernels needs (not the
# segmenters' and the feature transform's EveryFloat ones: minutes of CPU reference).
classifier_engine_tests() {
  stamp "== engine tests (the classifiers', the runner's entries, the kernels')"
  timeout 200 build-gpu/pointnet_tests --gtest_color=no \
    --gtest_filter='CudaRunner*:CudaArchitectures*:CudaEngine*-*EveryFloat*/seg_*:*EveryFloat*/cls_ft_*:CudaRunnerEntries.SegmenterHead*' \
    > "$OUT/tests-engine.log" 2>&1 || status=1
  grep -E '^\[  (PASSED|FAILED|SKIPPED) |^\[==========\]|Failure|Which is' "$OUT/tests-engine.log" | head -n 20
}
# SESSION_ENGINE=quick (a short lease): classifier_engine_tests, then only the
# defaults, 8 and 16 slices for fp16 and int8, and fp16's 256-point tiles; no
# profiles, no peers.
if [ "${SESSION_ENGINE:-}" = quick ]; then
  classifier_engine_tests
  stamp "== engines, B = 1024: defaults, 8 slices, fp16's 256-point tiles"
  for prec in fp16 bf16 int8 tf32; do engine_bench default "" 1024 $prec; done
  for prec in fp16 int8; do
    engine_bench slices-8 POINTNET_ENGINE_SLICES=8 1024 $prec
    engine_bench slices-16 POINTNET_ENGINE_SLICES=16 1024 $prec
  done
  engine_bench tile-256 POINTNET_ENGINE_SPLIT_TILE=256 1024 fp16
  engine_bench default "" 1024 fp16
fi
engine_profiles() {  # [precisions] (default: fp16 int8)
  for prec in ${1:-fp16 int8}; do
    KERNEL_PROFILE_OUT=$OUT/engine-profile-$prec.txt KERNEL_PROFILE_TOP=8 \
      CUDA_INJECTION64_PATH=$PWD/build-gpu/libkernel_profile.so timeout 60 $P bench --device cuda --task cls \
      --precision $prec --batch 1024 --points 1024 --iters 20 > /dev/null 2>&1
    echo "$prec profile:"; head -n 10 "$OUT/engine-profile-$prec.txt" 2>/dev/null | cut -c1-140
  done
}
# SESSION_ENGINE=defaults: classifier_engine_tests, the classifier engines at
# B = 1024 by default in every tensor-core precision, fp16 / bf16 with
# 256-point tiles, fp16 / int8 / fp32 with the narrow layers by the few-row
# kernels, then the fp16 and int8 kernel profiles; no peers.
# SESSION_ENGINE=short (about 2 minutes): the tests, fp16 and int8 by
# default, their kernel profiles.
if [ "${SESSION_ENGINE:-}" = short ]; then
  classifier_engine_tests
  stamp "== engines, B = 1024: fp16 and int8 by default"
  for prec in fp16 int8; do engine_bench default "" 1024 $prec; done
  engine_profiles
fi
if [ "${SESSION_ENGINE:-}" = defaults ]; then
  classifier_engine_tests
  stamp "== engines, B = 1024: defaults; fp16 / bf16 with 256-point tiles; narrow layers by the few-row kernels"
  for prec in fp16 bf16 int8 tf32; do engine_bench default "" 1024 $prec; done
  for prec in fp16 bf16; do engine_bench tile-256 POINTNET_ENGINE_SPLIT_TILE=256 1024 $prec; done
  for prec in fp16 int8 fp32; do engine_bench narrow-fc POINTNET_ENGINE_NARROW_FC=kernel 1024 $prec; done
  engine_bench default "" 1024 fp32
  engine_bench default "" 1024 int8  # again: the spread between two runs of one engine
  engine_profiles
fi
# SESSION_ENGINE=sweep: classifier_engine_tests (not the segmenters' and the feature
# transform's EveryFloat ones: minutes of CPU reference, and no kernel of
# theirs changed), then classifier engines at B = 1024 in every tensor-core
# precision by default and with each other first-kernel tile
# (POINTNET_ENGINE_SPLIT_TILE: tiles of 64, 128 or 256 points by precision),
# fp16 with the tile first kernel once (POINTNET_ENGINE_SPLIT_FIRST=tiles),
# fp16 / int8 / tf32 in 8 and 16 slices and fp16 in 2 (POINTNET_ENGINE_SLICES),
# the fp16 and int8 kernel profiles, and PyTorch eager and torch.compile
# (max-autotune, fp16, B = 1024; in the time left before
# SESSION_ENGINE_BUDGET seconds, default 330) into $OUT/engine.jsonl and
# $OUT/engine-peer.jsonl.
if [ "${SESSION_ENGINE:-}" = sweep ]; then
  classifier_engine_tests
  stamp "== engines, B = 1024: default vs the other first-kernel tiles"
  for prec in fp16 bf16 int8 tf32; do
    engine_bench default "" 1024 $prec
    case $prec in
      tf32) tiles="64x4" ;;   # tiles of 64 (default 128; 256 does not fit tf32's tile kernel)
      int8) tiles="128" ;;    # default 256
      *) tiles="256" ;;       # default 128
    esac
    for tile in $tiles; do engine_bench "tile-$tile" POINTNET_ENGINE_SPLIT_TILE=$tile 1024 $prec; done
  done
  engine_bench tiles-first POINTNET_ENGINE_SPLIT_FIRST=tiles 1024 fp16
  for prec in fp16 int8 tf32; do
    engine_bench slices-8 POINTNET_ENGINE_SLICES=8 1024 $prec
    engine_bench slices-16 POINTNET_ENGINE_SLICES=16 1024 $prec
  done
  engine_bench slices-2 POINTNET_ENGINE_SLICES=2 1024 fp16
  engine_bench default "" 1024 fp16
  engine_bench default "" 1 fp16
  engine_profiles
  stamp "== PyTorch eager and torch.compile, same GPU and shapes (bench/peers/torch_train_step.py --infer)"
  # (A peer that fails or runs out of time is reported, not counted: it tests nothing of ours.)
  epeer() { timeout "$1" python3 bench/peers/torch_train_step.py --infer "${@:2}" >> "$OUT/engine-peer.jsonl" \
    2>> "$OUT/engine-peer.log" || echo "peer ${*:2} FAILED or timed out (not counted)"; }
  epeer 90 --task cls --batch 1024 --points 1024 --classes 40 --precisions fp16,bf16,tf32 --steps 20 --warmup 5
  left=$(( ${SESSION_ENGINE_BUDGET:-330} - ($(date +%s) - start) ))
  if [ "$left" -gt 60 ]; then
    stamp "== torch.compile(mode=max-autotune), fp16, B = 1024 ($left s left for it)"
    epeer $(( left - 10 )) --compile max-autotune --task cls --batch 1024 --points 1024 --classes 40 \
      --precisions fp16 --steps 20 --warmup 3
  else
    echo "(torch.compile skipped: $left s left)"
  fi
  python3 -c "
import json
for line in open('$OUT/engine-peer.jsonl'):
    r = json.loads(line)
    print('peer %-3s %-5s B=%-5d %-26s median %.3f ms  %9.0f clouds/s' % (r['task'], r['precision'], r['batch'],
          r['peer'], r['latency_ms']['median'], r.get('clouds_per_s') or 0))" 2>/dev/null
fi

# SESSION_RACECHECK="gtest filter": those tests under compute-sanitizer's
# racecheck (shared-memory hazards), into $OUT/racecheck.txt; a hazard fails the check.
if [ -n "${SESSION_RACECHECK:-}" ]; then
  stamp "== racecheck: $SESSION_RACECHECK"
  sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  if [ -x "$sanitizer" ]; then
    timeout ${RACECHECK_SECONDS:-240} "$sanitizer" --tool racecheck --racecheck-report hazard --error-exitcode 3 build-gpu/pointnet_tests \
      --gtest_filter="$SESSION_RACECHECK" --gtest_color=no > "$OUT/racecheck.txt" 2>&1
    rc=$?
    [ $rc = 0 ] || status=1
    grep -E 'RACECHECK SUMMARY|hazard|^\[  (PASSED|FAILED) |^\[==========\]' "$OUT/racecheck.txt" | head -n 12
    echo "racecheck exit $rc"
  else
    echo "no compute-sanitizer on this machine"
  fi
fi
# SESSION_STOP_AFTER_ENGINE=1: nothing more (a short lease).
if [ "${SESSION_STOP_AFTER_ENGINE:-0}" = 1 ]; then
  stamp "done"
  [ $status = 0 ] && echo "gpu-session-check: OK" || echo "gpu-session-check: FAILED"
  exit $status
fi

# SESSION_CHECK_ENGINES=0: no engine tests or benchmarks (the training ones only).
# SESSION_STEP_CASES: the training steps to time, comma-separated ("task precision [ft] [fp32fc]":
# ft, the feature transform; fp32fc, the per-cloud layers in fp32, bench --fp32-fc).
engines=${SESSION_CHECK_ENGINES:-1}
filter='Cuda*:*CudaStepGraph*:Nccl*'
[ "$engines" = 1 ] || filter='CudaOps.*:CudaThinGemm.*:CudaWideMax.*:*CudaStepGraph*:*CudaModel*:Nccl*:CudaSync*:CudaPrecisionModes.*:CudaWarpgroupExtremes.*'
stamp "== CUDA tests ($filter)"
timeout 240 build-gpu/pointnet_tests --gtest_filter="$filter" --gtest_color=no > "$OUT/tests.log" 2>&1 || status=1
grep -E '^\[  (PASSED|FAILED|SKIPPED) |^\[==========\]|Failure|Which is|no CUDA device' "$OUT/tests.log" | head -n 30
grep -E 'info.*rel. error' "$OUT/tests.log" | tail -n 12
if [ "$engines" = 1 ]; then
  stamp "== CUDA engine tests with POINTNET_ENGINE_FP32=ffma"
  POINTNET_ENGINE_FP32=ffma timeout 90 build-gpu/pointnet_tests --gtest_filter='CudaRunner*:CudaArchitectures*' \
    --gtest_color=no >> "$OUT/tests.log" 2>&1 || status=1
  grep -E '^\[  (PASSED|FAILED) ' "$OUT/tests.log" | tail -n 2
fi

bench() {  # pointnet bench arguments; the caller's environment picks the kernels
  local out
  if out=$(timeout 40 $P bench --json --seconds 1.5 "$@" 2>&1 | tail -n 1); then
    echo "$out" | python3 -c "
import json, os, sys
r = json.loads(sys.stdin.read())
r['env'] = ' '.join(k + '=' + v for k, v in os.environ.items() if k.startswith('POINTNET_'))
print(json.dumps(r))" >> "$OUT/bench.jsonl"
    tail -n 1 "$OUT/bench.jsonl" | python3 -c "
import json, sys
r = json.loads(sys.stdin.read())
print('%-3s %-5s %-5s %4dx%-4d %-22s median %8.4f ms  %9.0f clouds/s  gpu %9.0f  peak %5.0f MiB  %s %s' % (
    r['task'], r['precision'], 'train' if r['train'] else 'infer', r['batch'], r['points'], r['env'] or '-',
    r['latency_ms']['median'], r['clouds_per_s'], r.get('gpu_clouds_per_s', 0), r.get('peak_device_mb', 0),
    ('graph' if r.get('step_graph') else '') + (' fp32-fc' if r.get('fp32_fc') else '') + (' ft' if r.get('feature_transform') else ''), 'err %.1e %s' % (r['check_rel_error'], r.get('trunk_kernels')) if 'check_rel_error' in r else ''))
if r['train'] and r.get('peak_device_blocks'):
    print('    held at the peak: ' + ', '.join('%s %.1f%s' % (b['use'], b['mib'], ' x%d' % b['count'] if b['count'] > 1 else '')
                                               for b in r['peak_device_blocks'][:14]))"
  else
    echo "bench $* FAILED: $out"
    status=1
  fi
}
if [ "$engines" = 1 ]; then
stamp "== fp32 engines: 3xTF32 (default) vs FFMA; fp16 beside them"
for b in 1024 1; do
  bench --device cuda --task cls --precision fp32 --batch $b --points 1024
  POINTNET_ENGINE_FP32=ffma bench --device cuda --task cls --precision fp32 --batch $b --points 1024
done
bench --device cuda --task cls --precision fp32 --batch 1024 --points 1024
bench --device cuda --task cls --precision fp16 --batch 1024 --points 1024
bench --device cuda --task seg --precision fp32 --batch 32 --points 2500
POINTNET_ENGINE_FP32=ffma bench --device cuda --task seg --precision fp32 --batch 32 --points 2500

fi

# SESSION_TESTS_WITH="VAR=value ...": the training tests (ops, steps, models)
# once more with that environment (a variant not yet the default).
if [ -n "${SESSION_TESTS_WITH:-}" ]; then
  stamp "== CUDA training tests with $SESSION_TESTS_WITH"
  env $SESSION_TESTS_WITH timeout 200 build-gpu/pointnet_tests \
    --gtest_filter='CudaOps.*:CudaPrecisionModes.*:*CudaStepGraph*:*CudaModel*:CudaFp16*:CudaSync*:CudaWideMax.*' \
    --gtest_color=no > "$OUT/tests-with.log" 2>&1 || status=1
  grep -E '^\[  (PASSED|FAILED|SKIPPED) |^\[==========\]|Failure|Which is' "$OUT/tests-with.log" | head -n 30
  grep -E 'info.*(2-byte z|loss curve)' "$OUT/tests-with.log" | head -n 8
fi

# Each training case by default, then again with each of $STEP_COMPARE's
# environments (';' between them; default: op by op instead of the recorded
# CUDA graph; "none": not again).
compare=${STEP_COMPARE:-POINTNET_STEP_GRAPHS=0}
stamp "== training step, B = 32 x 2500: default vs $compare"
IFS=, read -r -a cases <<< "${SESSION_STEP_CASES:-cls bf16,cls fp16,cls fp32,seg bf16,cls bf16 ft}"
IFS=';' read -r -a compares <<< "$compare"
for args in "${cases[@]}"; do
  set -- $args
  k=40; [ "$1" = seg ] && k=50
  ft=()
  for extra in "${@:3}"; do
    case $extra in
      ft) ft+=(--feature-transform) ;;
      fp32fc) ft+=(--fp32-fc) ;;
      *) echo "SESSION_STEP_CASES: unknown word '$extra' in '$args'"; status=1 ;;
    esac
  done
  bench --device cuda --task "$1" --precision "$2" --batch 32 --points 2500 --classes $k --train "${ft[@]}"
  [ "$compare" = none ] && continue
  for variant in "${compares[@]}"; do
    for kv in $variant; do export "$kv"; done
    bench --device cuda --task "$1" --precision "$2" --batch 32 --points 2500 --classes $k --train "${ft[@]}"
    for kv in $variant; do unset "${kv%%=*}"; done
  done
done

stamp "== GPU time per kernel of the recorded training step (build-gpu/libkernel_profile.so, CUPTI)"
if [ -f build-gpu/libkernel_profile.so ]; then
  # SESSION_PROFILE_FT=1: the classifier with the feature transform too.
  profiled=("cls bf16 40" "seg bf16 50")
  [ "${SESSION_PROFILE_FT:-0}" = 1 ] && profiled+=("cls bf16 40 ft")
  for args in "${profiled[@]}"; do
    set -- $args
    ft_args=(); [ "${4:-}" = ft ] && ft_args=(--feature-transform)
    # SESSION_PROFILE_WITH="VAR=value ...": profile that variant instead of the default.
    ( for kv in ${SESSION_PROFILE_WITH:-}; do export "$kv"; done
      profile_step "$OUT/profile-$1-$2${4:+-$4}.txt" 60 50 --task "$1" --precision "$2" --classes "$3" "${ft_args[@]}" \
        > /dev/null 2>> "$OUT/tests.log" ) || echo "kernel profile of $args FAILED (not counted)"
    head -n 25 "$OUT/profile-$1-$2${4:+-$4}.txt" 2>/dev/null
    grep -a 'kernel_profile:' "$OUT/tests.log" | tail -n 5
  done
else
  echo "no build-gpu/libkernel_profile.so (CUPTI not found): no profile"
fi

# SESSION_NCU="kernel-name-regex": Nsight Compute on those kernels of one cls
# bf16 training step (the first launch of each; full sections, source counters
# included) into $OUT/ncu.txt. Each profiled launch replays the kernel ~40
# times: keep the regex to a kernel or two. SESSION_NCU_WITH="VAR=value ...":
# that step's environment (a variant's kernels).
if [ -n "${SESSION_NCU:-}" ]; then
  stamp "== Nsight Compute: kernels matching '$SESSION_NCU'"
  ncu=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
  if [ -x "$ncu" ]; then
    env ${SESSION_NCU_WITH:-} timeout 150 "$ncu" --kernel-name "regex:$SESSION_NCU" --launch-count 2 --set full --import-source no \
      "$P" bench --device cuda --task cls --precision bf16 --batch 32 --points 2500 --classes 40 --train \
      --warmup 1 --iters 1 > "$OUT/ncu.txt" 2>&1 || echo "ncu FAILED (not counted)"
    grep -E '^  [a-z_ ]*[a-z_]+.*\(|Duration|Registers Per|Achieved Occupancy|Issue Slots Busy|No Eligible|Stall' \
      "$OUT/ncu.txt" | head -n 30
  else
    echo "no ncu on this machine"
  fi
fi

# SESSION_PEERS=0: no PyTorch peers (already timed on this machine this session).
if [ "${SESSION_PEERS:-1}" != 0 ]; then
stamp "== PyTorch eager training step, same shapes (bench/peers/torch_train_step.py)"
peer() { timeout 60 python3 bench/peers/torch_train_step.py --batch 32 --points 2500 --steps 30 --warmup 5 "$@" \
  >> "$OUT/peer.jsonl" 2>> "$OUT/tests.log" || { echo "peer $* FAILED"; status=1; }; }
peer --task cls --classes 40 --precisions bf16,fp16,fp32
peer --task seg --classes 50 --precisions bf16
peer --task cls --classes 40 --precisions bf16 --feature-transform
# The segmenter's inference, B = 32 x 2500, beside the engine's (issue 6's table).
peer --task seg --classes 50 --precisions fp16,bf16,tf32,fp32 --infer
python3 -c "
import json, sys
for line in open('$OUT/peer.jsonl'):
    r = json.loads(line)
    print('peer %-3s %-5s %-5s ft=%s median %.3f ms  %8.0f clouds/s  peak %.0f MiB' % (r['task'], r['precision'],
          'train' if r.get('train') else 'infer', r.get('feature_transform'), r['latency_ms']['median'],
          r.get('clouds_per_s') or 0, r.get('peak_device_mb') or 0))"
fi
# SESSION_CHECK_WGMMA=1: the engine's wgmma trunk variants (engine_tile_wgmma.cuh)
# against the default mma.sync trunk, in the time left (the call's limit is 600 s):
# their engine tests, then fp16 / int8 / tf32 engines at B = 1024 per variant.
if [ "${SESSION_CHECK_WGMMA:-0}" = 1 ]; then
  ok=()
  for v in wgmma wgmma1; do
    [ $(( $(date +%s) - start )) -gt 380 ] && { echo "no time left for the $v tests"; break; }
    stamp "== CUDA engine tests, POINTNET_ENGINE_TRUNK=$v"
    if POINTNET_ENGINE_TRUNK=$v timeout 70 build-gpu/pointnet_tests --gtest_filter='CudaEngine*:CudaRunner*' \
        --gtest_color=no > "build-gpu/tests-$v.log" 2>&1; then
      ok+=("$v")
    else
      status=1
    fi
    grep -E '^\[  (PASSED|FAILED) |Failure|Which is' "build-gpu/tests-$v.log" | head -n 12
    { echo "===== POINTNET_ENGINE_TRUNK=$v"; cat "build-gpu/tests-$v.log"; } >> "$OUT/tests.log"
  done
  if [ $(( $(date +%s) - start )) -lt 450 ]; then
    stamp "== engines from a one-epoch synthetic checkpoint: default vs ${ok[*]:-none}"
    rm -rf build-gpu/s7synth build-gpu/s7run
    { $P synth --task cls --out build-gpu/s7synth --points 1024 --train-per-class 20 --test-per-class 5 &&
      $P train --data build-gpu/s7synth --out build-gpu/s7run --device cuda --epochs 1 --plain; } > /dev/null 2>&1 ||
      { echo "engine checkpoint FAILED"; status=1; }
    for p in fp16 tf32 int8; do
      calib=(); [ $p = int8 ] && calib=(--calib build-gpu/s7synth --calib-clouds 128)
      $P build --model build-gpu/s7run/checkpoint.safetensors --device cuda --precision $p "${calib[@]}" \
        --out build-gpu/s7-$p.engine > /dev/null 2>&1 || { echo "engine build $p FAILED"; status=1; continue; }
      bench --model build-gpu/s7-$p.engine --batch 1024 --points 1024
      for v in "${ok[@]}"; do POINTNET_ENGINE_TRUNK=$v bench --model build-gpu/s7-$p.engine --batch 1024 --points 1024; done
    done
  else
    echo "no time left for the engine benchmarks"
  fi
fi

stamp "done"
nvidia-smi -L 2>/dev/null
if [ "$status" -eq 0 ]; then echo "gpu-session-check: OK"; else echo "gpu-session-check: FAILED"; fi
exit "$status"
