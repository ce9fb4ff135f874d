"""The facezoo command line: list, predict, info, push; python -m facezoo; errors exit 2 without a traceback."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import torch

import facezoo
from facezoo.cli import main
from facezoo.testing import FACES


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_tasks(capsys):
    code, out, _ = run(capsys, "list", "tasks")
    assert code == 0 and "glasses            Glasses or no glasses (example third-party plugin)  [plugin: glasses]" in out
    code, out, _ = run(capsys, "list", "tasks", "--json")
    rows = json.loads(out)
    assert [r["task"] for r in rows] == facezoo.list_tasks() and {r["plugin"] for r in rows if r["task"] == "beauty"} == {"beauty"}


def test_list_models(capsys):
    code, out, _ = run(capsys, "list", "models", "--filter", "glasses/*")
    assert (code, out) == (0, "glasses/mobilenetv3_small_100.v1  (default)\n")
    _, out, _ = run(capsys, "list", "models", "--json", "--filter", "glasses")
    assert json.loads(out) == [{"model": "glasses/mobilenetv3_small_100.v1", "default": True, "source": "hf-hub:facezoo-examples/glasses-mobilenetv3@v1"}]
    _, out, _ = run(capsys, "list", "models", "--filter", "no-such-model")
    assert out == "no pretrained models are registered matching 'no-such-model'\n"


def test_list_plugins(capsys):
    _, out, _ = run(capsys, "list", "plugins")
    assert "glasses      facezoo-glasses 0.1.0  hooks: facezoo_register_backbones, facezoo_register_commands, facezoo_register_datasets, facezoo_register_detectors" in out
    _, out, _ = run(capsys, "list", "plugins", "--json")
    assert {p["name"]: p["distribution"] for p in json.loads(out)}["detectors"] == "facezoo"


def test_predict_untrained_json_is_labelled(capsys):
    images = [str(FACES[0]), str(FACES[4])]
    code, out, err = run(capsys, "predict", "age-gender", *images, "--untrained", "--no-detect", "--backbone", "test_resnet", "--json")
    assert code == 0 and "WARNING: age-gender/test_resnet is UNTRAINED (random weights)" in err
    # ... and how to get real answers: the shipped model, or a training command with the task's datasets
    assert "use the pretrained model (facezoo predict age-gender IMAGE, without --untrained; age-gender/" in err
    assert "facezoo train age-gender --dataset D --output runs/age-gender (age-gender's datasets: scut-gender, utkface)" in err
    rows = json.loads(out)
    assert [r["image"] for r in rows] == images
    for row in rows:
        [face] = row["faces"]
        assert (face["model"], face["trained"], face["face"]) == ("age-gender/test_resnet", False, None)
        assert face["gender"] in ("male", "female") and face["age"] >= 0


def test_predict_human_output_with_detection(capsys):
    code, out, err = run(capsys, "predict", "expression", str(FACES[3]), "--untrained", "--backbone", "test_efficientnet")
    assert code == 0 and "UNTRAINED" in err
    lines = out.splitlines()
    labels = facezoo.load("expression", "test_efficientnet", pretrained=False).config.labels
    assert len(lines) == 2 and lines[0].split(": ")[1].split("  (face at ")[0] in labels, "the caption is the expression label"


def test_predict_beauty_states_the_scale(capsys):
    code, out, _ = run(capsys, "predict", "beauty", str(FACES[0]), "--untrained", "--no-detect", "--backbone", "test_resnet")
    assert code == 0 and re.fullmatch(r".*portrait\.jpg: beauty [1-5]\.\d\d on 1-5\n", out), out


def test_info_of_a_model_directory(capsys, tmp_path):
    torch.manual_seed(0)
    facezoo.load("keypoints", "test_resnet", pretrained=False).save_pretrained(tmp_path)
    code, out, _ = run(capsys, "info", str(tmp_path))
    assert code == 0 and out.startswith("keypoints/test_resnet  (UNTRAINED, 0.") and "  preprocess: {'input_size': [112, 112]" in out
    _, out, _ = run(capsys, "info", str(tmp_path), "--json")
    info = json.loads(out)
    assert info["config"] == facezoo.ModelConfig.load(tmp_path / "config.json").to_dict() and info["parameters"] > 0


def test_push_then_load_by_tag(capsys, tmp_path, repo_id):
    torch.manual_seed(0)
    model = facezoo.load("beauty", "test_resnet", pretrained=False)
    model.save_pretrained(tmp_path)
    code, out, _ = run(capsys, "push", str(tmp_path), repo_id, "--tag", "v1")
    assert code == 0 and out.startswith(f"pushed {tmp_path} to {repo_id} at commit ") and out.endswith(", tagged v1\n")
    code, out, _ = run(capsys, "info", f"hf-hub:{repo_id}@v1", "--json")
    assert json.loads(out)["config"] == model.config.to_dict()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["predict", "beuty", "x.jpg", "--untrained"], "facezoo: error: unknown task 'beuty'. Did you mean 'beauty'?"),
        (["predict", "beauty", "missing.jpg", "--untrained", "--backbone", "test_resnet"], "facezoo: error: input 0 ('missing.jpg'): no such file."),
        (["info", "no-such-dir"], "facezoo: error: unknown task 'no-such-dir'."),
        (["predict", "beauty", "x.jpg", "--backbone", "resnet50"], (
            "facezoo: error: no pretrained weights are registered for task 'beauty' with backbone 'resnet50'. "
            "Try the task with random weights: facezoo predict beauty IMAGE --untrained --backbone resnet50; or train it: facezoo train beauty"
        )),
    ],
)
def test_errors_exit_2_with_a_message(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "") and err.strip().splitlines()[-1].startswith(message)


def test_python_dash_m_facezoo():
    done = subprocess.run([sys.executable, "-m", "facezoo", "--version"], capture_output=True, text=True, check=True)
    assert done.stdout == f"facezoo {facezoo.__version__}\n"
    done = subprocess.run([sys.executable, "-m", "facezoo", "predict", "beuty", str(FACES[0]), "--untrained"], capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("facezoo: error: unknown task 'beuty'. Did you mean 'beauty'?")
