"""ONNX Runtime: every task and the detector give the torch results within a stated tolerance; an
ONNX file is always checked against the weights it was built from; int8 quantisation works.

Skipped with a reason where onnxruntime is not installed (``pip install 'facezoo[onnx]'``)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import facezoo
from facezoo import _onnx, onnx_export
from facezoo.cli import main
from facezoo.detection import MTCNN
from facezoo.testing import FACES

pytest.importorskip("onnxruntime", reason="the ONNX tests need onnxruntime: pip install 'facezoo[onnx]'")
pytest.importorskip("onnxscript", reason="exporting to ONNX needs onnxscript: pip install 'facezoo[onnx]'")

#: Outputs agree to this, relative to their scale (float32 kernels differ in summation order).
TOLERANCE = 1e-3


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path / "cache"))


def _numbers(data) -> list[float]:
    if isinstance(data, dict):
        return [v for key in sorted(data) for v in _numbers(data[key])]
    if isinstance(data, list):
        return [v for item in data for v in _numbers(item)]
    return [float(data)] if isinstance(data, (int, float)) and not isinstance(data, bool) else []


@pytest.mark.parametrize("task", ["beauty", "age-gender", "expression", "keypoints", "identity"])
def test_every_task_predicts_the_same_on_onnx_runtime(task, tmp_path):
    torch.manual_seed(0)
    facezoo.load(task, "test_efficientnet", pretrained=False).save_pretrained(tmp_path / "model")
    on_torch = facezoo.load(tmp_path / "model", runtime="torch")
    on_onnx = facezoo.load(tmp_path / "model", runtime="onnx")
    assert (on_torch.runtime, on_onnx.runtime) == ("torch", "onnx")
    a = on_torch.predict([FACES[3], FACES[0]])
    b = on_onnx.predict([FACES[3], FACES[0]])
    assert [len(x) for x in a] == [len(x) for x in b] == [2, 1]
    for faces_a, faces_b in zip(a, b, strict=True):
        for x, y in zip(faces_a, faces_b, strict=True):
            assert np.allclose(x.face.box, y.face.box, atol=0.01)  # the detector agrees to a hundredth of a pixel
            # keypoints are pixels: allow a hundredth of a pixel; everything else is in units of 1
            assert _numbers(y.to_dict()) == pytest.approx(_numbers(x.to_dict()), abs=0.01 if task == "keypoints" else TOLERANCE)


def test_the_detector_finds_the_same_faces_on_onnx_runtime():
    image = np.asarray(facezoo._images.load_image(FACES[3]))
    on_torch, on_onnx = MTCNN.from_pretrained().detect([image])[0], MTCNN.from_pretrained(runtime="onnx").detect([image])[0]
    assert len(on_torch) == len(on_onnx) == 2
    for a, b in zip(on_torch, on_onnx, strict=True):
        assert np.allclose(a.box, b.box, atol=0.01) and np.allclose(a.landmarks, b.landmarks, atol=0.01) and abs(a.score - b.score) < 1e-4


def test_onnx_inference_imports_no_torch(tmp_path):
    facezoo.load("beauty", "test_resnet", pretrained=False).save_pretrained(tmp_path / "model")
    facezoo.load(tmp_path / "model", runtime="onnx")  # builds the ONNX file once, into the cache
    code = (
        "import sys, facezoo; m = facezoo.load(sys.argv[1], runtime='onnx'); m.predict(sys.argv[2]);"
        "assert 'torch' not in sys.modules and 'timm' not in sys.modules, sorted(k for k in sys.modules if k.startswith(('torch', 'timm')))[:5]"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "model"), str(FACES[0])], check=True)


def test_an_onnx_file_built_from_other_weights_is_refused(tmp_path):
    torch.manual_seed(0)
    model = facezoo.load("beauty", "test_resnet", pretrained=False)
    model.save_pretrained(tmp_path / "model")
    path = _onnx.export_network(model, tmp_path / "model" / _onnx.ONNX_NAME)
    _onnx.write_stamp(path, _onnx.weights_digest(tmp_path / "model"))
    assert facezoo.load(tmp_path / "model", runtime="onnx").network.path == path  # the directory's own file is used
    torch.manual_seed(1)
    facezoo.load("beauty", "test_resnet", pretrained=False).save_pretrained(tmp_path / "other")
    (tmp_path / "model" / "model.safetensors").write_bytes((tmp_path / "other" / "model.safetensors").read_bytes())
    with pytest.raises(facezoo.WeightsError, match=r"model\.onnx was built from other weights"):
        facezoo.load(tmp_path / "model", runtime="onnx")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"head": {"mode": "distribution", "bins": 11, "dropout": 0.2}}, r"wrong shapes \['head\.fc\.1\.bias', 'head\.fc\.1\.weight'\]"),
        ({"head": {"mode": "regression", "bins": 101, "dropout": 0.2}}, r"wrong shapes \['head\.fc\.1\.bias', 'head\.fc\.1\.weight'\]"),
        ({"backbone": "test_efficientnet"}, r"missing keys \['backbone\."),
    ],
)
def test_an_edited_config_never_reuses_the_cached_graph(tmp_path, edit, message):
    facezoo.load("beauty", "test_resnet", pretrained=False).save_pretrained(tmp_path / "model")
    facezoo.load(tmp_path / "model", runtime="onnx")  # builds the float32 graph into the cache
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    (tmp_path / "model" / "config.json").write_text(json.dumps({**config, **edit}))
    with pytest.raises(facezoo.WeightsError, match=message):  # a new graph is built, and the weights do not fit it
        facezoo.load(tmp_path / "model", runtime="onnx")


def test_an_edited_input_size_builds_a_new_graph(tmp_path):
    facezoo.load("beauty", "test_resnet", pretrained=False).save_pretrained(tmp_path / "model")
    first = facezoo.load(tmp_path / "model", runtime="onnx").network
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    config["preprocess"]["input_size"] = [96, 96]
    (tmp_path / "model" / "config.json").write_text(json.dumps(config))
    second = facezoo.load(tmp_path / "model", runtime="onnx")
    assert second.network.path != first.path
    assert first.session.get_inputs()[0].shape[2:] == [112, 112] and second.network.session.get_inputs()[0].shape[2:] == [96, 96]
    assert len(second.predict(FACES[0], detect=False)) == 1


def test_a_graph_of_another_output_width_is_refused_naming_both(tmp_path):
    facezoo.load("beauty", "test_resnet", pretrained=False).save_pretrained(tmp_path / "beauty")
    keypoints = facezoo.load("keypoints", "test_resnet", pretrained=False)
    path = _onnx.export_network(keypoints, tmp_path / "beauty" / _onnx.ONNX_NAME)
    _onnx.write_stamp(path, _onnx.weights_digest(tmp_path / "beauty"))  # a stamp forged for the beauty weights
    with pytest.raises(facezoo.WeightsError, match=r"model\.onnx gives 136 outputs per face, but the beauty head of .*config\.json expects 101"):
        facezoo.load(tmp_path / "beauty", runtime="onnx")


def test_a_corrupted_onnx_file_is_a_clear_error(tmp_path):
    facezoo.load("beauty", "test_resnet", pretrained=False).save_pretrained(tmp_path / "model")
    path = tmp_path / "model" / _onnx.ONNX_NAME
    path.write_bytes(b"not an onnx graph")
    _onnx.write_stamp(path, _onnx.weights_digest(tmp_path / "model"))
    with pytest.raises(facezoo.WeightsError, match=r"model\.onnx is not a readable ONNX model"):
        facezoo.load(tmp_path / "model", runtime="onnx")
    path.with_name("model.onnx.json").unlink()
    with pytest.raises(facezoo.WeightsError, match=r"has no readable model\.onnx\.json"):
        facezoo.load(tmp_path / "model", runtime="onnx")


def test_int8_only_where_a_quantised_model_ships(tmp_path):
    facezoo.load("beauty", "test_resnet", pretrained=False).save_pretrained(tmp_path / "model")
    with pytest.raises(facezoo.WeightsError, match=r"has no model\.int8\.onnx"):
        facezoo.load(tmp_path / "model", runtime="onnx", quantize="int8")
    with pytest.raises(facezoo.FacezooError, match="needs runtime='onnx'"):
        facezoo.load(tmp_path / "model", runtime="torch", quantize="int8")


def test_static_int8_quantisation_stays_close(tmp_path):
    torch.manual_seed(0)
    model = facezoo.load("expression", "test_efficientnet", pretrained=False)
    model.save_pretrained(tmp_path / "model")
    faces = model.transform.to_array(model.prepare(FACES, detect=False)[0])
    uint8 = np.stack([np.asarray(c.image) for c in model.prepare(FACES * 4, detect=False)[0]])
    source = _onnx.export_network(model, tmp_path / "model" / _onnx.ONNX_NAME)
    int8 = onnx_export.quantize_int8(model, source, tmp_path / "model" / _onnx.INT8_NAME, uint8)
    digest = _onnx.weights_digest(tmp_path / "model")
    _onnx.write_stamp(int8, digest, quantize="int8")
    quantised = facezoo.load(tmp_path / "model", runtime="onnx", quantize="int8")
    assert int8.stat().st_size < 0.5 * source.stat().st_size
    a, b = model.network.run(faces), quantised.network.run(faces)
    assert np.abs(a - b).max() < 0.1 * max(1.0, np.abs(a).max()), "int8 outputs stay near the float ones"
    assert json.loads(int8.with_name("model.int8.onnx.json").read_text())["quantize"] == "int8"


def test_cli_exports_any_model_with_its_onnx_file(tmp_path, capsys):
    facezoo.load("beauty", "test_resnet", pretrained=False).save_pretrained(tmp_path / "model")
    assert main(["export", str(tmp_path / "model"), str(tmp_path / "exported"), "--format", "onnx"]) == 0
    assert sorted(p.name for p in (tmp_path / "exported").iterdir()) == ["README.md", "config.json", "model.onnx", "model.onnx.json", "model.safetensors"]
    exported = facezoo.load(tmp_path / "exported", runtime="onnx")
    assert exported.network.path == tmp_path / "exported" / "model.onnx"
    assert main(["export", str(tmp_path / "model"), str(tmp_path / "other"), "--format", "onnx", "--quantize", "int8"]) == 2
    assert "needs calibration faces" in capsys.readouterr().err


def test_add_onnx_puts_a_checked_model_onnx_beside_the_weights(tmp_path):
    """How the shipped models got theirs: model.onnx in the directory (the weights untouched),
    used by runtime="onnx", with the same answers as torch."""
    torch.manual_seed(0)
    model = facezoo.load("beauty", "test_efficientnet", pretrained=False)
    model.network.half().float()  # as a shipped model's weights: float16 values
    model.save_pretrained(tmp_path / "model")
    weights = (tmp_path / "model" / "model.safetensors").read_bytes()
    crops, _, _ = model.prepare([FACES[3]])
    path = onnx_export.add_onnx(tmp_path / "model", np.stack([np.asarray(c.image) for c in crops]))
    assert path == tmp_path / "model" / "model.onnx" and (tmp_path / "model" / "model.safetensors").read_bytes() == weights
    on_onnx = facezoo.load(tmp_path / "model", runtime="onnx")
    assert on_onnx.network.path == path
    a, b = facezoo.load(tmp_path / "model", runtime="torch").predict(FACES[3]), on_onnx.predict(FACES[3])
    assert _numbers(b[0].to_dict()) == pytest.approx(_numbers(a[0].to_dict()), abs=TOLERANCE)
