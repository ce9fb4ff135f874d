#!/usr/bin/env bash
# The exact commands that produced facezoo's shipped models (see docs/zoo.md for the numbers).
# Re-running a command resumes its run from the last finished epoch.
# Usage: FACEZOO_DATA=../shared/data bash docs/recipes.sh [RUNS_DIR] [task ...]
set -euo pipefail
runs=${1:-runs}; shift || true
wanted=" ${*:-beauty age-gender keypoints expression identity} "
run() {  # run NAME ARGS...: train into $runs/NAME, timing it
  local name=$1; shift
  [[ $wanted == *" $name "* ]] || return 0
  echo "== $name: facezoo train $*"
  local start=$SECONDS
  facezoo train "$@" --output "$runs/$name"
  echo "== $name finished in $(( (SECONDS - start) / 60 )) min"
}
run beauty beauty --dataset scut-fbp5500 --backbone efficientnet_lite0 --tag scut5500 \
  --input-size 128 128 --head-epochs 30 --finetune-epochs 10 --batch-size 32 --finetune-lr 5e-4
run age-gender age-gender --dataset utkface --val-split val --backbone efficientnet_lite0 --tag utkface \
  --input-size 80 80 --head-epochs 20 --finetune-epochs 6 --batch-size 64 --finetune-lr 1e-3
run keypoints keypoints --dataset p1-keypoints --backbone efficientnet_lite0 --tag p1 \
  --input-size 96 96 --head-epochs 30 --finetune-epochs 20 --batch-size 32 --finetune-lr 1e-3
run expression expression --dataset fer2013 --val-split val --backbone efficientnet_lite0 --tag fer2013 \
  --input-size 64 64 --head-epochs 20 --finetune-epochs 6 --batch-size 64 --finetune-lr 1e-3
run identity identity --dataset celeba --test-dataset lfw --test-split view2 --backbone efficientnet_lite0 --tag celeba-arcface \
  --input-size 96 96 --head-epochs 20 --finetune-epochs 10 --batch-size 64 --finetune-lr 1e-3
