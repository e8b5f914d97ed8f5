#!/usr/bin/env bash
# The seed's table, on the GPU machine: for each classifier engine in ENGINE_DIR
# (built beforehand from one checkpoint, one per precision), its accuracy on
# the test split of TEST_PACK (`pointnet eval`, the engine on the GPU) and its
# speed at B = 1024 and B = 1 x 1024 points (`pointnet bench`); then PyTorch
# eager and torch.compile (max-autotune) on the same shapes, same call, same
# GPU (bench/peers/torch_train_step.py --infer). Writes accuracy.jsonl,
# engine.jsonl and peer.jsonl to $OUT and prints one table.
# Usage: scripts/gpu-precision-table.sh ENGINE_DIR TEST_PACK
#   COMPILE_PRECISIONS: the precisions torch.compile is timed in (default
#   fp16,fp32; each compiles for a minute or more), "" for none.
set -uo pipefail
cd "$(dirname "$0")/.."
engines=$1 pack=$2
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
source scripts/gpu-build.sh
start=$(date +%s)
stamp() { echo "[$(( $(date +%s) - start )) s] $*"; }
nvidia-smi -L 2>/dev/null
gpu_build || exit 1
P=build-gpu/pointnet
status=0

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
peer 120 --batch 1024 --steps 30 --warmup 5 --precisions fp16,bf16,tf32,fp32
peer 60 --batch 1 --steps 200 --warmup 20 --precisions fp16,fp32
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
for name in sorted(acc.keys() | {k[0] for k in speed}):
    a = acc.get(name, {})
    big, one = speed.get((name, 1024), {}), speed.get((name, 1), {})
    prec = big.get("precision") or name.split("-")[-1]
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
