#!/usr/bin/env bash
# The seed's table, on the GPU machine: one classifier checkpoint built into
# fp32, tf32, fp16, bf16 and int8 engines on the GPU; each engine's accuracy
# on the test split of TEST_PACK (`pointnet eval`, the engine on the GPU) and
# its speed at B = 1024 and B = 1 x 1024 points (`pointnet bench`); then
# PyTorch eager and torch.compile (max-autotune) on the same shapes, same
# call, same GPU (bench/peers/torch_train_step.py --infer). Writes
# accuracy.jsonl, engine.jsonl and peer.jsonl into $OUT/precision-table.tgz and
# prints one table.
# Usage: scripts/gpu-precision-table.sh MODEL|TRAIN_PACK TEST_PACK
#   MODEL: a checkpoint (.safetensors). TRAIN_PACK (a .pack): train one first,
#   fp32, `pointnet train --epochs $EPOCHS --seed $SEED $TRAIN_ARGS` within
#   $TRAIN_LIMIT_S seconds (SIGINT at the limit: it saves and stops); its
#   model and metrics go to $OUT. int8 calibrates on 512 clouds of the train
#   split of TRAIN_PACK (or CALIB, a dataset with one).
#   TABLE_TESTS=1: the CUDA engine tests first (tests.log).
#   PRECISIONS: the engines to build (default "fp32 tf32 fp16 bf16 int8").
#   TABLE_PEERS=0: no PyTorch eager peers.
#   COMPILE_PRECISIONS: the precisions torch.compile is timed in (default
#   fp16,fp32; each compiles for a minute or more), "" for none.
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# = 2 ] || { echo "usage: scripts/gpu-precision-table.sh MODEL|TRAIN_PACK TEST_PACK" >&2; exit 2; }
model=$1 pack=$2
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
source scripts/gpu-build.sh
pack_out_on_exit precision-table
start=$(date +%s)
stamp() { echo "[$(( $(date +%s) - start )) s] $*"; }
nvidia-smi -L 2>/dev/null
gpu_build || exit 1
P=build-gpu/pointnet
status=0

if [ "${TABLE_TESTS:-0}" = 1 ]; then
  stamp "== CUDA engine tests"
  timeout 200 build-gpu/pointnet_tests --gtest_filter='CudaRunner*:CudaArchitectures*:CudaEngine*' --gtest_color=no \
    > "$OUT/tests.log" 2>&1 || status=1
  grep -E '^\[  (PASSED|FAILED) |Failure|Which is' "$OUT/tests.log" | head -n 20
fi

calib=${CALIB:-}
[[ $model == *.pack ]] || [ -n "$calib" ] || { echo "CALIB: a dataset with a train split, for the int8 engine" >&2; exit 2; }
if [[ $model == *.pack ]]; then
  stamp "== training the checkpoint on $model (fp32, ${EPOCHS:-200} epochs, seed ${SEED:-1})"
  calib=${calib:-$model}
  rm -rf build-gpu/table-run
  read -r -a extra <<< "${TRAIN_ARGS:-}"
  timeout -k 30 -s INT "${TRAIN_LIMIT_S:-240}" $P train --data "$model" --test-data none --device cuda --precision fp32 \
    --epochs "${EPOCHS:-200}" --seed "${SEED:-1}" "${extra[@]}" --plain --out build-gpu/table-run \
    > "$OUT/train.log" 2>&1 || { echo "training stopped: $(tail -n 2 "$OUT/train.log")"; }
  tail -n 2 "$OUT/train.log"
  cp build-gpu/table-run/metrics.jsonl "$OUT/metrics.jsonl" 2>/dev/null
  # Stopped at the limit, the trainer leaves its last checkpoint, not model.safetensors.
  model=build-gpu/table-run/model.safetensors
  [ -f "$model" ] || model=build-gpu/table-run/checkpoint.safetensors
  cp "$model" "$OUT/model.safetensors" 2>/dev/null || { echo "no model or checkpoint"; exit 1; }
  echo "epochs finished: $(wc -l < build-gpu/table-run/metrics.jsonl 2>/dev/null || echo 0)"
fi
engines=build-gpu/table-engines
rm -rf "$engines" && mkdir -p "$engines"
for p in ${PRECISIONS:-fp32 tf32 fp16 bf16 int8}; do
  c=(); [ $p = int8 ] && c=(--calib "$calib" --calib-split train --calib-clouds 512)
  $P build --model "$model" --device cuda --precision $p "${c[@]}" --out "$engines/$p.engine" \
    > "$OUT/build-$p.log" 2>&1 || { echo "build $p FAILED: $(tail -n 2 "$OUT/build-$p.log")"; status=1; }
done

stamp "== accuracy and speed of each engine"
for e in "$engines"/*.engine; do
  name=$(basename "$e" .engine)
  if timeout 120 $P eval --model "$e" --data "$pack" --split test --batch-size 256 --json > build-gpu/eval.json 2> build-gpu/eval.err; then
    python3 -c "
import json, sys
r = json.load(open('build-gpu/eval.json')); r['engine'] = '$name'
print(json.dumps(r))" >> "$OUT/accuracy.jsonl"
  else
    echo "eval $name FAILED: $(tail -n 2 build-gpu/eval.err)"; status=1
  fi
  for b in 1024 1; do
    if timeout 40 $P bench --model "$e" --batch $b --points 1024 --seconds 1.5 --json 2>/dev/null | tail -n 1 > build-gpu/bench.json; then
      python3 -c "
import json
r = json.load(open('build-gpu/bench.json')); r['engine'] = '$name'
print(json.dumps(r))" >> "$OUT/engine.jsonl"
    else
      echo "bench $name B=$b FAILED"; status=1
    fi
  done
done

stamp "== PyTorch eager, same shapes"
peer() { timeout "$1" python3 bench/peers/torch_train_step.py --infer --task cls --classes 40 --points 1024 "${@:2}" \
  >> "$OUT/peer.jsonl" 2>> "$OUT/peer.err" || { echo "peer ${*:2} FAILED"; tail -n 3 "$OUT/peer.err"; status=1; }; }
if [ "${TABLE_PEERS:-1}" != 0 ]; then
  peer 120 --batch 1024 --steps 30 --warmup 5 --precisions fp16,bf16,tf32,fp32
  peer 60 --batch 1 --steps 200 --warmup 20 --precisions fp16,fp32
fi
IFS=, read -r -a compiled <<< "${COMPILE_PRECISIONS-fp16,fp32}"
for p in "${compiled[@]}"; do
  stamp "== torch.compile max-autotune, $p, B = 1024 (compiles in the warm-up)"
  peer 300 --batch 1024 --steps 30 --warmup 5 --precisions "$p" --compile max-autotune
done

stamp "== the table"
python3 - "$OUT" <<'EOF'
import json, sys
out = sys.argv[1]
def lines(name):
    try:
        return [json.loads(l) for l in open(f"{out}/{name}") if l.strip()]
    except FileNotFoundError:
        return []
acc = {r["engine"]: r for r in lines("accuracy.jsonl")}
speed = {}
for r in lines("engine.jsonl"):
    speed[(r["engine"], r["batch"])] = r
peers = {}
for r in lines("peer.jsonl"):
    peers[(r["peer"], r["precision"], r["batch"])] = r
print("| engine | accuracy | mean class acc | B=1024 clouds/s (GPU compute) | B=1 median latency | eager B=1024 | compile B=1024 |")
print("|---|---|---|---|---|---|---|")
order = ["fp32", "tf32", "fp16", "bf16", "int8"]
for name in sorted(acc.keys() | {k[0] for k in speed}, key=lambda n: order.index(n) if n in order else 9):
    a = acc.get(name, {})
    big, one = speed.get((name, 1024), {}), speed.get((name, 1), {})
    prec = big.get("precision") or name
    eager = peers.get(("pytorch-eager", prec, 1024), {}).get("clouds_per_s")
    comp = peers.get(("torch.compile-max-autotune", prec, 1024), {}).get("clouds_per_s")
    fmt = lambda v: f"{v:,.0f}" if v else "-"
    print(f"| {name} | {a.get('overall_accuracy', 0) * 100:.2f}% | {a.get('mean_class_accuracy', 0) * 100:.2f}% | "
          f"{fmt(big.get('clouds_per_s'))} ({fmt(big.get('gpu_clouds_per_s'))}) | "
          f"{one.get('latency_ms', {}).get('median', 0) * 1000:.1f} us | {fmt(eager)} | {fmt(comp)} |")
for k, r in sorted(peers.items()):
    print("peer %-28s %-5s B=%-5d median %.3f ms  %9.0f clouds/s" % (k[0], k[1], k[2], r["latency_ms"]["median"], r["clouds_per_s"]))
EOF
stamp "done"
[ $status = 0 ] && echo "gpu-precision-table: OK" || echo "gpu-precision-table: FAILED"
exit $status
