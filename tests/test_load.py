"""facezoo.load and the listings: names, closest matches, missing weights, strict loading."""

from __future__ import annotations

import ast
import inspect
import json
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from facezoo_glasses import build_head, build_loss, postprocess
from safetensors.torch import load_file, save_file

import facezoo
import facezoo.training
from facezoo import _plugins
from facezoo._model_dir import write_model_dir
from facezoo.detection import MTCNN
from facezoo.detection.align import crop_box, estimate_similarity
from facezoo.errors import WeightsError
from facezoo.testing import FACES


def test_unknown_task_names_the_closest_match_and_the_choices():
    with pytest.raises(facezoo.UnknownNameError, match=r"unknown task 'beuty'\. Did you mean 'beauty'\? Valid: age-gender, beauty, .*list_tasks"):
        facezoo.load("beuty")


def test_unknown_model_names_the_closest_match():
    with pytest.raises(facezoo.UnknownNameError, match=r"unknown model 'glasses/mobilenetv3_small_100\.v2'\. Did you mean 'glasses/mobilenetv3_small_100\.v1'\?"):
        facezoo.load("glasses/mobilenetv3_small_100.v2")


def test_unknown_backbone_names_close_timm_models():
    with pytest.raises(facezoo.UnknownNameError, match=r"unknown backbone 'resnet181'\. Did you mean 'resnet18'\?.*timm"):
        facezoo.load("beauty", "resnet181", pretrained=False)


def test_unknown_head_argument_lists_the_valid_ones():
    with pytest.raises(facezoo.FacezooError, match=r"task 'beauty' has no head arguments \['binz'\]; valid: \['bins', 'dropout', 'mode'\]"):
        facezoo.load("beauty", "test_resnet", pretrained=False, binz=5)


def test_head_arguments_change_an_untrained_head():
    model = facezoo.load("beauty", "test_resnet", pretrained=False, bins=5)
    assert model.config.head["bins"] == 5 and len(model.predict(FACES[0], detect=False)[0].distribution) == 5


@pytest.fixture
def task_without_weights():
    """A task no plugin registers weights for (the five built-in tasks may get some)."""

    spec = facezoo.TaskSpec(name="no-weights", summary="test", build_head=build_head, build_loss=build_loss, postprocess=postprocess, labels=("a", "b"))
    facezoo.register_plugin(types.SimpleNamespace(facezoo_register_tasks=facezoo.hookimpl(lambda register: register(spec))), name="no-weights")
    yield "no-weights"
    facezoo.unregister_plugin("no-weights")


def test_pretrained_without_registered_weights_says_how_to_get_an_untrained_model(task_without_weights):
    with pytest.raises(facezoo.WeightsError, match=r"no pretrained weights are registered for task 'no-weights'.*facezoo\.load\('no-weights', pretrained=False\)"):
        facezoo.load(task_without_weights)
    with pytest.raises(facezoo.WeightsError, match=r"with backbone 'test_resnet'.*facezoo\.load\('no-weights', 'test_resnet', pretrained=False\)"):
        facezoo.load(task_without_weights, "test_resnet")
    model = facezoo.load(task_without_weights, "test_resnet", pretrained=False)
    assert model.config.trained is False and "UNTRAINED" in repr(model)


def test_list_models_filters_by_wildcard_substring_and_task():
    assert facezoo.list_models("glasses/*") == facezoo.list_models("mobilenetv3") == facezoo.list_models(task="glasses") == ["glasses/mobilenetv3_small_100.v1"]
    with pytest.raises(facezoo.UnknownNameError, match="Did you mean 'glasses'"):
        facezoo.list_models(task="glases")


def test_new_config_uses_the_task_defaults():
    config = facezoo.new_config("expression", "test_resnet")
    assert config.labels[:2] == ("angry", "disgust") and config.preprocess.grayscale and not config.trained
    assert facezoo.new_config("glasses").backbone == _plugins.registry().get("task", "glasses").default_backbone


@pytest.fixture
def saved(tmp_path):
    facezoo.load("glasses", "test_resnet", pretrained=False).save_pretrained(tmp_path)
    return tmp_path


def test_missing_weight_keys_are_listed(saved):
    state = load_file(saved / "model.safetensors")
    state.pop("head.mlp.0.weight")
    state["extra.weight"] = torch.zeros(1)
    save_file(state, saved / "model.safetensors")
    with pytest.raises(facezoo.WeightsError, match=r"missing keys \['head\.mlp\.0\.weight'\], unexpected keys \['extra\.weight'\]"):
        facezoo.load(str(saved))


def test_mismatched_shapes_are_listed(saved):
    config = json.loads((saved / "config.json").read_text())
    config["head"]["hidden"] = 64
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(facezoo.WeightsError, match=r"wrong shapes \['head\.mlp\.0\.bias', 'head\.mlp\.0\.weight', 'head\.mlp\.3\.weight'\]"):
        facezoo.load(str(saved))


def test_only_safetensors_are_loaded(saved):
    (saved / "model.safetensors").unlink()
    (saved / "pytorch_model.bin").write_bytes(b"a pickle facezoo must never load")
    with pytest.raises(facezoo.WeightsError, match=r"has no model\.safetensors \(found \['README\.md', 'config\.json', 'pytorch_model\.bin'\]\); facezoo loads safetensors only"):
        facezoo.load(str(saved))


def test_corrupt_weights_and_configs_are_weights_errors(saved):
    (saved / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(facezoo.WeightsError, match="not a readable safetensors file"):
        facezoo.load(str(saved))
    (saved / "config.json").write_text('{"task": "glasses", "backbone": "test_resnet", "colour": "bgr"}')
    with pytest.raises(facezoo.WeightsError, match=r"has keys that config schema \d+ does not define: \['colour'\]; remove them"):
        facezoo.load(str(saved))


def test_rewriting_a_model_directory_without_its_weights_keeps_them_byte_for_byte(tmp_path):
    model = facezoo.load("beauty", "test_resnet", pretrained=False)
    model.save_pretrained(tmp_path / "m")
    weights = (tmp_path / "m" / "model.safetensors").read_bytes()
    write_model_dir(tmp_path / "m", model.config.replace(tag="renamed"), None, "new card")
    assert (tmp_path / "m" / "model.safetensors").read_bytes() == weights
    assert (tmp_path / "m" / "README.md").read_text() == "new card"
    assert facezoo.load(tmp_path / "m").config.tag == "renamed"
    with pytest.raises(WeightsError, match="no model.safetensors to keep"):
        write_model_dir(tmp_path / "empty", model.config, None, "card")


def test_type_checkers_see_the_lazy_api_and_load_returns_a_face_model():
    """facezoo/__init__.py imports its heavy names on first use; the TYPE_CHECKING block names the
    same ones from the same modules, so IDEs and mypy see the whole API (PEP 561: py.typed)."""

    package = Path(facezoo.__file__).parent
    for module in (facezoo, facezoo.training):
        tree = ast.parse(Path(module.__file__).read_text())
        [block] = [node for node in tree.body if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"]
        mirrored = {alias.name: "." * imp.level + (imp.module or "") for imp in block.body for alias in imp.names}
        assert mirrored == module._LAZY, f"keep the TYPE_CHECKING imports of {module.__file__} in step with its _LAZY"
    assert (package / "py.typed").exists()
    assert inspect.signature(facezoo.load).return_annotation == "FaceModel"
    assert isinstance(facezoo.load("beauty", "test_resnet", pretrained=False), facezoo.FaceModel)


def test_bad_values_given_to_the_public_api_are_facezoo_errors():
    """Each is still a ValueError, as the bare ValueError it replaces, and names what was wrong."""

    with pytest.raises(facezoo.InputError, match=r"the source points are all identical"):
        estimate_similarity(np.zeros((5, 2)), np.ones((5, 2)))
    with pytest.raises(facezoo.InputError, match=r"empty box \(10, 10, 10, 30\)"):
        crop_box(np.zeros((40, 40, 3), np.uint8), (10, 10, 10, 30), (16, 16), square=False)
    with pytest.raises(facezoo.ConfigError, match=r"MTCNN\.detect needs min_face_size > 0.*got 0,"):
        MTCNN.from_pretrained().detect([np.zeros((20, 20, 3), np.uint8)], min_face_size=0)
    with pytest.raises(facezoo.InputError, match=r"expected an HxWx3 RGB image, got shape \(20, 20, 2\)"):
        MTCNN.from_pretrained().detect([np.zeros((20, 20, 2), np.uint8)])
