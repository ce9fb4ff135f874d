"""The hostile-input list: every case ends in a facezoo error naming the input and the fix, or in
a correct answer with a warning that says what facezoo did, never in a raw traceback or a silently
wrong result."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import constants
from PIL import Image
from safetensors.torch import load_file, save_file

import facezoo
from facezoo import _detect, _plugins
from facezoo._model import check_finite
from facezoo.cli import main
from facezoo.testing import FACES


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return facezoo.load("beauty", "test_resnet", pretrained=False)


@pytest.fixture
def saved(model, tmp_path) -> Path:
    model.save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def no_traceback(error: BaseException) -> bool:
    return error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


# -- silent wrong answers ----------------------------------------------------------------------------
def test_predict_in_training_mode_is_refused_not_answered(model):
    model.network.train()
    try:
        with pytest.raises(facezoo.FacezooError, match=r"training mode .*call model\.network\.eval\(\)"):
            model.predict(FACES[0], detect=False)
    finally:
        model.network.eval()


def test_predict_from_threads_is_identical_and_leaves_the_module_alone(model):
    expected = model.predict(FACES[0], detect=False)[0].score
    scores, errors = [], []

    def work():
        try:
            scores.extend(r[0].score for r in [model.predict(FACES[0], detect=False) for _ in range(3)])
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and set(scores) == {expected} and not model.network.training


def test_config_without_preprocess_is_an_error(saved):
    config = json.loads((saved / "config.json").read_text())
    del config["preprocess"]
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(facezoo.WeightsError, match=r"config\.json lacks the required keys \['preprocess'\]"):
        facezoo.load(str(saved))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["preprocess"].update(std=[0, 0.5, 0.5]), r"std must be three numbers above 0"),
        (lambda c: c["preprocess"].update(mean=[0.5, 0.5]), r"mean must be a list of 3 numbers"),
        (lambda c: c["preprocess"].update(input_size=None), r"input_size must be \[height, width\]"),
        (lambda c: c["preprocess"].update(margin="0.2"), r"margin must be a number, got '0\.2'"),
        (lambda c: c["preprocess"].update(min_face_score=None), r"min_face_score must be a number"),
        (lambda c: c["preprocess"].pop("detect_padding"), r"preprocess .*lacks \['detect_padding'\]"),
        (lambda c: c.update(labels=None), r"labels must be a list of strings"),
        (lambda c: c.update(trained="yes"), r"trained must be true or false"),
        (lambda c: c.update(head={"mode": "distribution", "bins": "101", "dropout": 0.2}), r"head argument 'bins' is '101' \(str\); task 'beauty' expects int \(like 101\)"),
        (lambda c: c["preprocess"].update(input_size=[30000, 30000]), r"input_size must be \[height, width\], two integers from 8 to 1024, got \[30000, 30000\]"),
        (lambda c: c["preprocess"].update(input_size=[1e6, 1e6]), r"input_size must be .*, got \[1000000\.0, 1000000\.0\]"),
        (lambda c: c["preprocess"].update(detect_padding=1e308), r"detect_padding must be a finite number at least 0 and at most 1, got 1e\+308"),
        (lambda c: c["preprocess"].update(detect_padding=1000), r"detect_padding must be .* at most 1, got 1000"),
        (lambda c: c["preprocess"].update(scale=1e-300), r"scale must be a finite number at least 0\.1 and at most 10, got 1e-300"),
        (lambda c: c["preprocess"].update(margin=10**400), r"margin must be a finite number at least 0 and at most 4, got inf"),
        (lambda c: c["preprocess"].update(mean=[float("inf"), 0.5, 0.5]), r"mean\[0\] must be a finite number, got inf"),
    ],
)
def test_hand_edited_config_values_are_errors_naming_the_file(saved, edit, message):
    config = json.loads((saved / "config.json").read_text())
    edit(config)
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(facezoo.FacezooError, match=message) as info:
        facezoo.load(str(saved))
    assert no_traceback(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (lambda c: json.dumps({**c, "evaluation": {"padding": "x" * (1 << 20)}}), r"config\.json is larger than 1024 KiB; .*is it the right file\?"),
        (lambda c: "[" * 100_000 + "]" * 100_000, r"config\.json nests JSON too deeply to parse"),
        (lambda c: json.dumps(c).replace('"margin": 0.2', '"margin": 1' + "0" * 5000), r"config\.json cannot be parsed \(Exceeds the limit \(4300 digits\)"),
        (lambda c: json.dumps(c).replace('"beauty"', '"beaut\xff"'), r"config\.json cannot be parsed \('utf-8' codec can't decode byte 0xff"),
    ],
    ids=["over-1-MiB", "deeply-nested", "5000-digit-integer", "not-utf-8"],
)
def test_hostile_config_files_are_errors_naming_the_file(saved, text, message):
    config = json.loads((saved / "config.json").read_text())
    (saved / "config.json").write_text(text(config), encoding="latin-1")
    with pytest.raises(facezoo.ConfigError, match=message) as info:
        facezoo.load(str(saved))
    assert no_traceback(info.value)


def test_missing_labels_of_a_classification_task_are_an_error(tmp_path):
    facezoo.load("expression", "test_resnet", pretrained=False).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["labels"] = []
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(facezoo.WeightsError, match=r"config\.json lists 0 labels \[\]; task 'expression' needs 7"):
        facezoo.load(str(tmp_path))


@pytest.mark.parametrize("damage", ["nan", "int8"])
def test_damaged_weights_are_refused_at_load(saved, damage):
    state = load_file(str(saved / "model.safetensors"))
    name = next(k for k, v in state.items() if v.is_floating_point() and v.ndim > 1)
    state[name] = torch.full_like(state[name], float("nan")) if damage == "nan" else state[name].to(torch.int8)
    save_file(state, str(saved / "model.safetensors"))
    message = "NaN or infinite" if damage == "nan" else "dtype torch.int8"
    with pytest.raises(facezoo.WeightsError, match=message):
        facezoo.load(str(saved))


def test_non_finite_outputs_are_an_error_and_json_is_never_bare_nan(model):
    with pytest.raises(facezoo.FacezooError, match="produced NaN or infinite outputs"):
        check_finite(np.array([[float("nan")]]), "beauty/x")
    with pytest.raises(ValueError):
        json.dumps({"score": float("nan")}, allow_nan=False)  # what the CLI's --json uses


def test_backbone_with_a_model_id_or_directory_is_an_error(saved):
    with pytest.raises(facezoo.FacezooError, match="apply to a task name"):
        facezoo.load(str(saved), "resnet50")


def test_enroll_and_identify_check_their_arguments(tmp_path):
    identity = facezoo.load("identity", "test_resnet", pretrained=False)
    with pytest.raises(facezoo.InputError, match=r"enroll\(\) needs the person's name as a non-empty string, got None"):
        identity.enroll(None, [FACES[0]], detect=False)
    identity.enroll("someone", [FACES[0]], detect=False)
    with pytest.raises(facezoo.InputError, match=r"top_k must be a positive whole number, got -1"):
        identity.identify(FACES[0], top_k=-1, detect=False)
    with pytest.raises(facezoo.InputError, match=r"embed\(\) takes one image, got a list of 2"):
        identity.verify([FACES[0], FACES[1]], [FACES[2]], detect=False)


# -- raw tracebacks ---------------------------------------------------------------------------------
def test_load_takes_a_path_object_and_refuses_none(saved):
    assert facezoo.load(saved).config.task == "beauty"
    with pytest.raises(facezoo.FacezooError, match=r"load\(\) takes a task name, .* not NoneType None"):
        facezoo.load(None)


def test_a_missing_directory_or_config_is_named(tmp_path):
    with pytest.raises(facezoo.WeightsError, match=r"no such model directory"):
        facezoo.load(str(tmp_path / "nowhere" / "model"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(facezoo.WeightsError, match=r"has no config\.json \(found \['notes\.txt'\]\)"):
        facezoo.load(str(tmp_path / "empty"))


@pytest.mark.parametrize("source", ["hf-hub:", "hf-hub:a/b/c", "hf-hub:../.."])
def test_bad_hub_ids_are_hub_errors(source):
    with pytest.raises(facezoo.HubError, match="is not a Hub model id"):
        facezoo.load(source)


def test_push_while_offline_is_a_hub_error(saved, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(facezoo.HubError, match="HF_HUB_OFFLINE|offline|failed"):
        facezoo.push_directory(saved, "me/offline-test")


@pytest.mark.parametrize(("device", "message"), [("cuda:7", "no usable CUDA GPU|has \\d+ CUDA GPU"), ("banana", "is not a device name"), ("xla", "not supported|not a device")])
def test_devices_that_do_not_exist_are_named(device, message):
    with pytest.raises(facezoo.FacezooError, match=message):
        facezoo.load("beauty", "test_resnet", pretrained=False, device=device)


def test_save_pretrained_onto_a_file_or_an_unwritable_place(model, tmp_path):
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(facezoo.WeightsError, match="it is a file; pass a directory path"):
        model.save_pretrained(tmp_path / "a-file")
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(facezoo.WeightsError, match="permission denied"):
        model.save_pretrained(locked / "model")


def test_batch_size_of_the_wrong_type(model):
    for bad in ("8", 2.5, True, None):
        with pytest.raises(facezoo.InputError, match="batch_size must be a positive integer"):
            model.predict(FACES[0], detect=False, batch_size=bad)


@pytest.mark.parametrize("entry", ["x", None, {"box": [0, 0, 10, 10]}])
def test_faces_entries_that_are_not_faces_are_named(model, entry):
    with pytest.raises(facezoo.InputError, match=rf"faces\[0\]\[0\] is a {type(entry).__name__}, not a facezoo\.Face; pass the faces") as info:
        model.predict(FACES[0], faces=[[entry]])
    assert no_traceback(info.value)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_a_pil_image_whose_file_was_closed_is_named(model, tmp_path, suffix):
    path = tmp_path / f"face{suffix}"
    Image.open(FACES[0]).save(path)
    with Image.open(path) as lazy:  # Pillow reads the pixels on first use: after the block, never
        pass
    closed = Image.open(path)
    closed.close()
    loaded = Image.open(path)
    loaded.load()
    loaded.close()
    for image, message in ((lazy, "file was closed before its pixels were read"), (closed, "file was closed"), (loaded, "was it closed?")):
        with pytest.raises(facezoo.InputError, match=rf"input 0 \({type(image).__name__}\): .*{re.escape(message)}") as info:
            model.predict(image, detect=False)
        assert no_traceback(info.value)


def test_annotate_with_results_of_several_images_or_none(model):
    several = model.predict([FACES[0], FACES[1]], detect=False)
    with pytest.raises(facezoo.InputError, match=r"not the list of lists predict\(\) returns for several images"):
        facezoo.annotate(FACES[0], several)
    with pytest.raises(facezoo.InputError, match="not NoneType"):
        facezoo.annotate(FACES[0], None)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("target", "message"), [("missing-folder/out.jpg", "does not exist"), (".", "is a folder"), ("out.unknown", "unknown picture type")])
def test_cli_annotate_to_a_bad_place_still_prints_the_predictions(capsys, saved, tmp_path, monkeypatch, target, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "predict", str(saved), str(FACES[0]), "--annotate", target)
    assert code == 2 and message in err and "beauty " in out, "the predictions are printed before the error"


def test_cli_limits_must_be_positive(capsys, saved):
    for limit in ("-5", "0"):
        with pytest.raises(SystemExit) as exit_info:
            main(["eval", str(saved), "--dataset", "scut-fbp5500", "--limit", limit])
        assert exit_info.value.code == 2
        assert "must be at least 1" in capsys.readouterr().err


def test_cli_json_into_a_closed_pipe_exits_quietly(saved):
    command = f"{sys.executable} -m facezoo predict {saved} {FACES[0]} {FACES[1]} {FACES[2]} --no-detect --json | head -c 10"
    done = subprocess.run(command, shell=True, capture_output=True, text=True, check=False)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr


def test_cli_non_utf8_file_names_on_an_ascii_terminal(tmp_path, saved):
    name = os.fsencode(tmp_path) + b"/caf\xe9.jpg"
    with open(name, "wb") as handle:
        handle.write(FACES[0].read_bytes())
    env = {**os.environ, "PYTHONIOENCODING": "ascii:strict", "LC_ALL": "C"}
    done = subprocess.run([os.fsencode(sys.executable), b"-m", b"facezoo", b"predict", os.fsencode(saved), name, b"--no-detect"], capture_output=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert b"Traceback" not in done.stderr and b"caf" in done.stdout


# -- tell, don't guess ----------------------------------------------------------------------------
def test_an_animated_image_uses_the_first_frame_and_says_so(model, tmp_path):
    frames = [Image.open(FACES[0]).convert("RGB"), Image.new("RGB", (240, 300))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    with pytest.warns(UserWarning, match=r"an animated image of 2 frames; facezoo uses the first frame only"):
        model.predict(tmp_path / "anim.gif", detect=False)


def test_12_bit_data_in_a_16_bit_png_is_scaled_with_a_warning(model, tmp_path):
    gray = np.asarray(Image.open(FACES[4]).convert("L"), dtype=np.uint16) * 16  # 0..4080: 12-bit data
    Image.fromarray(gray).save(tmp_path / "12bit.png")
    with pytest.warns(UserWarning, match="treated as 12-bit data"):
        twelve = model.predict(tmp_path / "12bit.png", detect=False)[0].score
    eight = model.predict(Image.fromarray((gray // 16).astype(np.uint8)).convert("RGB"), detect=False)[0].score
    assert abs(twelve - eight) < 0.05, "the 12-bit image reads like the 8-bit one, not nearly black"


def test_threads_cold_starting_a_model_build_the_detector_once(monkeypatch):
    spec = _plugins.registry().get("detector", "yunet")
    builds = []

    def counting_build():
        builds.append(1)
        return spec.build()

    monkeypatch.setattr(_detect, "_detectors", {})
    registry = _plugins.registry()
    monkeypatch.setattr(registry, "get", lambda kind, name, hint="": type(spec)(name, counting_build) if kind == "detector" else type(registry).get(registry, kind, name, hint))
    model = facezoo.load("beauty", "test_resnet", pretrained=False)
    threads = [threading.Thread(target=model.predict, args=(FACES[0],)) for _ in range(4)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert builds == [1]
