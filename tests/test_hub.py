"""Hub round trips with the real huggingface_hub client against the loopback Hub server (minihub)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import torch
from huggingface_hub import HfApi

import facezoo
from facezoo.testing import FACES

pytestmark = pytest.mark.usefixtures("hub_url")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return facezoo.load("beauty", "test_resnet", pretrained=False)


def outputs(model) -> list[dict]:
    return [r.to_dict() for r in model.predict(FACES[0], detect=False)]


def test_push_tag_then_pull_by_tag_and_by_sha(model, repo_id):
    sha = model.push_to_hub(repo_id, tag="v1")
    assert re.fullmatch(r"[0-9a-f]{40}", sha)
    api = HfApi()
    assert [(t.name, t.target_commit) for t in api.list_repo_refs(repo_id).tags] == [("v1", sha)]
    assert sorted(api.list_repo_files(repo_id)) == [".gitattributes", "README.md", "config.json", "model.safetensors"]
    expected = outputs(model)
    for source, revision in ((f"hf-hub:{repo_id}@v1", None), (f"hf-hub:{repo_id}@{sha}", None), (f"hf-hub:{repo_id}", sha), (f"hf-hub:{repo_id}", None)):
        loaded = facezoo.load(source, revision=revision)
        assert loaded.config == model.config and outputs(loaded) == expected, (source, revision)

    torch.manual_seed(1)
    newer = facezoo.load("beauty", "test_resnet", pretrained=False)
    newer.push_to_hub(repo_id)
    assert outputs(facezoo.load(f"hf-hub:{repo_id}")) == outputs(newer) != expected
    assert outputs(facezoo.load(f"hf-hub:{repo_id}@v1")) == expected, "a tag pins the old weights"


def test_push_a_directory_to_a_branch(model, repo_id, tmp_path):
    model.save_pretrained(tmp_path)
    facezoo.push_directory(tmp_path, repo_id, branch="dev", commit_message="candidate")
    assert outputs(facezoo.load(f"hf-hub:{repo_id}@dev")) == outputs(model)
    with pytest.raises(facezoo.HubError, match=rf"hf-hub:{repo_id} is not a facezoo model: it needs config\.json and model\.safetensors"):
        facezoo.load(f"hf-hub:{repo_id}")  # main holds only the .gitattributes of a new repo


def test_missing_revision_or_repository_is_a_hub_error(model, repo_id):
    model.push_to_hub(repo_id)
    with pytest.raises(facezoo.HubError, match=rf"hf-hub:{repo_id}@v9: revision 'v9' does not exist\. Use a branch, a tag or a full commit sha"):
        facezoo.load(f"hf-hub:{repo_id}@v9")
    with pytest.raises(facezoo.HubError, match="revision '0{40}' does not exist"):
        facezoo.load(f"hf-hub:{repo_id}", revision="0" * 40)
    with pytest.raises(facezoo.HubError, match=r"hf-hub:tester/no-such-model: no such repository on http://127\.0\.0\.1:\d+"):
        facezoo.load("hf-hub:tester/no-such-model")


def test_offline_after_a_first_download(model, repo_id):
    model.push_to_hub(repo_id, tag="v1")
    expected = outputs(facezoo.load(f"hf-hub:{repo_id}@v1"))  # the first download fills HF_HUB_CACHE
    script = f"""
import json, facezoo
model = facezoo.load("hf-hub:{repo_id}@v1")
print(json.dumps([r.to_dict() for r in model.predict({str(FACES[0])!r}, detect=False)]))
try:
    facezoo.load("hf-hub:{repo_id}-never-downloaded")
except facezoo.HubError as exc:
    print(exc)
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}  # nothing listens on port 9
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded, error = done.stdout.splitlines()
    assert json.loads(loaded) == expected
    assert "is not in the local cache and the Hub cannot be reached (offline: HF_HUB_OFFLINE is set" in error


def test_the_example_plugins_registered_model_loads_once_published():
    assert facezoo.list_models("glasses/*", pretrained=True) == []
    with pytest.raises(facezoo.HubError, match="facezoo-examples/glasses-mobilenetv3@v1: no such repository"):
        facezoo.load("glasses")
    torch.manual_seed(0)
    model = facezoo.load("glasses", "mobilenetv3_small_100", pretrained=False)
    model.push_to_hub("facezoo-examples/glasses-mobilenetv3", tag="v1")
    for name in ("glasses/mobilenetv3_small_100.v1", "glasses"):
        loaded = facezoo.load(name)
        assert loaded.config == model.config and outputs(loaded) == outputs(model)
    assert facezoo.list_models("glasses/*", pretrained=True) == ["glasses/mobilenetv3_small_100.v1"]
