#!/usr/bin/env bash
# Ours beside ONNX Runtime, PyTorch eager and LibTorch on this CPU (issue 4):
# the same machine, shapes, thread count and weights. Checks first that all give
# the same log-probs, then times, repeats interleaved (ours, ORT, PyTorch,
# LibTorch, then again) so that a busy spell hits all of them, and prints one
# markdown table. LibTorch (bench/peers/libtorch, C++) is built into
# DIR/bench-cpu/libtorch where CMake finds it (Debian: libtorch-dev) and skipped
# otherwise; it runs the classifier cases only (it implements PointNetCls, no
# segmenter).
#
#   scripts/bench-cpu.sh [--threads T] [--batch B] [--points N] [--seg-batch B --seg-points N]
#                        [--model CLS_CKPT] [--seg-model SEG_CKPT] [--repeat R] [--seconds S]
#                        [--build DIR] [--out FILE]
#
# Cases: cls inference at B x N and 1 x N, cls training step at B x N, seg
# inference at seg-B x seg-N. Each run times as `pointnet bench` does by default
# (3 warm-up, then at least 10 iterations and 3 s), or for --seconds S. Without --model / --seg-model, it trains one
# epoch on a small synthetic dataset (weights and BatchNorm statistics that are
# not the initialisation's). The peers need a Python with torch, onnx,
# onnxruntime and numpy, which the project does not install: set PEERS_PYTHON,
# e.g. a virtualenv's bin/python (docs/benchmarks.md). Full JSON lines go to
# --out (default DIR/bench-cpu/results.jsonl).
set -euo pipefail
cd "$(dirname "$0")/.."

threads=$(nproc) batch=32 points=1024 seg_batch=8 seg_points=2500 repeat=2
model="" seg_model="" build=build out="" timing=()
command="scripts/bench-cpu.sh $*"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) threads=$2 ;; --batch) batch=$2 ;; --points) points=$2 ;;
    --seg-batch) seg_batch=$2 ;; --seg-points) seg_points=$2 ;; --repeat) repeat=$2 ;;
    --model) model=$2 ;; --seg-model) seg_model=$2 ;; --build) build=$2 ;; --out) out=$2 ;;
    --seconds) timing=(--seconds "$2") ;;
    *) echo "bench-cpu: unknown argument $1 (see the top of $0)" >&2; exit 1 ;;
  esac
  shift 2
done
py=${PEERS_PYTHON:-python3}
bin=$build/pointnet
work=$build/bench-cpu
out=${out:-$work/results.jsonl}
peers=bench/peers/cpu_peers.py
[[ -x $bin ]] || { echo "bench-cpu: no $bin: build first (or --build DIR)" >&2; exit 1; }
"$py" -c "import torch, onnx, onnxruntime, numpy" 2>/dev/null || {
  echo "bench-cpu: $py cannot import torch, onnx, onnxruntime and numpy; set PEERS_PYTHON (docs/benchmarks.md)" >&2
  exit 1
}
mkdir -p "$work"
export OMP_NUM_THREADS=$threads  # every library's OpenMP pool the same size
quiet() { local log=$1; shift; "$@" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }; }

# The LibTorch peer: a CMake project of its own, rebuilt only when its sources change.
libtorch=""
if cmake -S bench/peers/libtorch -B "$work/libtorch" -DCMAKE_BUILD_TYPE=Release >"$work/libtorch-configure.log" 2>&1
then
  echo "bench-cpu: building the LibTorch peer in $work/libtorch" >&2
  quiet "$work/libtorch-build.log" cmake --build "$work/libtorch"
  libtorch=$work/libtorch/pointnet_libtorch
else
  echo "bench-cpu: LibTorch not found (apt-get install libtorch-dev, or see bench/peers/libtorch/CMakeLists.txt):" \
    "skipping the LibTorch peer (why: $work/libtorch-configure.log)" >&2
fi

# One epoch of training on small synthetic data: seconds, not minutes.
if [[ -z $model ]]; then
  data=$work/synth-cls-$points  # synth refuses a folder made with other options
  quiet "$work/synth-cls.log" "$bin" synth --task cls --out "$data" --points "$points" --train-per-class 8 --test-per-class 1
  rm -rf "$work/run-cls"
  quiet "$work/train-cls.log" "$bin" --threads "$threads" train --task cls --data "$data" --out "$work/run-cls" \
    --epochs 1 --batch-size 8 --points "$points" --test-data none
  model=$work/run-cls/model.safetensors
fi
if [[ -z $seg_model ]]; then
  data=$work/synth-seg-$seg_points
  quiet "$work/synth-seg.log" "$bin" synth --task seg --out "$data" --points "$seg_points" --train-per-class 8 --test-per-class 1
  rm -rf "$work/run-seg"
  quiet "$work/train-seg.log" "$bin" --threads "$threads" train --task seg --data "$data" --out "$work/run-seg" \
    --epochs 1 --batch-size 8 --points "$seg_points" --test-data none
  seg_model=$work/run-seg/model.safetensors
fi

# A checkpoint the LibTorch peer does not implement (feature transform, normals): ours, ORT and PyTorch only.
if [[ -n $libtorch ]] && ! why=$("$libtorch" time --model "$model" --batch 1 --points 32 --warmup 0 --iters 1 2>&1 >/dev/null)
then
  echo "bench-cpu: skipping the LibTorch peer: $why" >&2
  libtorch=""
fi
versions=$("$py" -c "import torch, onnxruntime; print(f'PyTorch {torch.__version__}, ONNX Runtime {onnxruntime.__version__}')")
[[ -z $libtorch ]] || versions+=", LibTorch $("$libtorch" --version)"
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
: >"$out"
loads=()

# Same answers first: no timing of a model that computes something else.
"$py" $peers check --model "$model" --pointnet "$bin" --threads "$threads" --points "$points" \
  ${libtorch:+--libtorch "$libtorch"} >>"$out"
"$py" $peers check --model "$seg_model" --pointnet "$bin" --threads "$threads" --points "$seg_points" \
  --clouds 2 >>"$out"

# case: model batch points train(0/1) libtorch(0/1); one ONNX graph per inference case, exported once
cases=("$model $batch $points 0 1" "$model 1 $points 0 1" "$model $batch $points 1 1"
  "$seg_model $seg_batch $seg_points 0 0")
for i in "${!cases[@]}"; do
  read -r m b n t lt <<<"${cases[$i]}"
  [[ $t == 1 ]] || "$py" $peers export --model "$m" --batch "$b" --points "$n" --out "$work/case$i.onnx"
done

for ((r = 1; r <= repeat; r++)); do
  loads+=("$(cut -d' ' -f1-3 /proc/loadavg)")
  for i in "${!cases[@]}"; do
    read -r m b n t lt <<<"${cases[$i]}"
    echo "bench-cpu: repeat $r/$repeat, $(basename "$m") B=$b N=$n $([[ $t == 1 ]] && echo train || echo inference)" >&2
    tag="s/^{/{\"repeat\":$r,/"
    if [[ $t == 1 ]]; then
      "$bin" --threads "$threads" bench --model "$m" --batch "$b" --points "$n" --train "${timing[@]}" --json |
        sed "s/^{/{\"peer\":\"pointnet\",/; $tag" >>"$out"
      "$py" $peers time --peer torch-train --model "$m" --threads "$threads" --batch "$b" --points "$n" \
        "${timing[@]}" | sed "$tag" >>"$out"
    else
      "$bin" --threads "$threads" bench --model "$m" --batch "$b" --points "$n" "${timing[@]}" --json |
        sed "s/^{/{\"peer\":\"pointnet\",/; $tag" >>"$out"
      # Our int8 engine (calibrated on the timed batch; AVX512-VNNI where the CPU has it).
      "$bin" --threads "$threads" bench --model "$m" --batch "$b" --points "$n" --precision int8 "${timing[@]}" \
        --json | sed "s/^{/{\"peer\":\"pointnet-int8\",/; $tag" >>"$out"
      "$py" $peers time --peer ort --onnx "$work/case$i.onnx" --model "$m" --threads "$threads" \
        --batch "$b" --points "$n" "${timing[@]}" | sed "$tag" >>"$out"
      "$py" $peers time --peer torch --model "$m" --threads "$threads" --batch "$b" --points "$n" \
        "${timing[@]}" | sed "$tag" >>"$out"
    fi
    if [[ -n $libtorch && $lt == 1 ]]; then
      "$libtorch" time --model "$m" --threads "$threads" --batch "$b" --points "$n" \
        $([[ $t == 1 ]] && echo --train) "${timing[@]}" | sed "$tag" >>"$out"
    fi
  done
done
loads+=("$(cut -d' ' -f1-3 /proc/loadavg) (after)")

"$py" -c 'import json, sys; a = sys.argv; print(json.dumps({"meta": True, "date": a[1], "cpu": a[2], "threads": int(a[3]),
  "commit": a[4], "versions": a[5], "command": a[6], "loadavg": a[7:]}))' \
  "$(date -u +%Y-%m-%dT%H:%MZ)" "$cpu" "$threads" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  "$versions" "$command" \
  "${loads[@]}" >>"$out"
"$py" bench/peers/cpu_table.py "$out"
echo "bench-cpu: full results in $out" >&2
