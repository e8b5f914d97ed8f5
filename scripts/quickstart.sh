#!/usr/bin/env bash
# The main job on a fresh machine: install, build, generate the synthetic
# dataset, train a PointNet classifier on it, evaluate it, print the results.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

bash scripts/setup.sh

# 12 procedural shape classes, 200 train / 50 test each (ModelNet-style folders).
build/pointnet synth --task cls --out data/synth-cls --seed 1

# pointnet.pytorch's model and recipe, shortened to fit a few minutes on two
# cores: 256 points per cloud, 15 epochs, learning rate halved every 5.
rm -rf runs/quickstart
build/pointnet train --task cls --data data/synth-cls --out runs/quickstart \
  --epochs 15 --points 256 --lr-step 5 --eval-every 5 --seed 1

build/pointnet eval --model runs/quickstart/checkpoint.safetensors --data data/synth-cls --split test
echo "quickstart: done in $(( $(date +%s) - start )) s (checkpoint: runs/quickstart/checkpoint.safetensors)"
