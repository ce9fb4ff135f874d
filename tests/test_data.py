"""Dataset adapters on the shared bundle, and the generic folder / manifest formats."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from facezoo_identity.verification import best_threshold
from PIL import Image

import facezoo
from facezoo.data import image_folder, list_datasets, load_dataset, manifest

DATA = Path(os.environ.get("FACEZOO_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"shared data not found at {DATA}")


@needs_data
@pytest.mark.parametrize(
    ("name", "split", "count", "task"),
    [
        ("scut-fbp5500", "train", 3300, "beauty"),
        ("scut-fbp5500", "test", 2200, "beauty"),
        ("scut-fbp5500", "fold3-test", 1100, "beauty"),
        ("fer2013", "test", 3589, "expression"),
        ("utkface", "test", 4742, "age-gender"),
        ("p1-keypoints", "test", 770, "keypoints"),
        ("celeba", "train", 5400, "identity"),
        ("celeba", "val", 600, "identity"),
        ("bollywood", "train", 930, "identity"),
        ("fewshot-five", "val", 25, "identity"),
    ],
)
def test_bundle_splits_have_the_documented_sizes(name, split, count, task):
    dataset = load_dataset(name, split, DATA)
    assert (len(dataset), dataset.task) == (count, task)
    assert dataset.samples[0].path.exists() and dataset.license


@needs_data
def test_targets_and_groups_are_parsed():
    scut = load_dataset("scut-fbp5500", "test", DATA)
    assert {s.group for s in scut.samples} == {"asian-female", "asian-male", "caucasian-female", "caucasian-male"}
    assert all(1.0 <= s.target <= 5.0 for s in scut.samples)
    utk = load_dataset("utkface", "val", DATA)
    age, gender = utk.samples[0].target
    assert 0 < age < 120 and gender in (0.0, 1.0) and utk.samples[0].group.endswith(("male", "female"))
    fer = load_dataset("fer2013", "val", DATA)
    assert fer.labels == ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
    assert np.bincount([s.target for s in fer.samples]).tolist() == [467, 56, 496, 895, 607, 653, 415]
    p1 = load_dataset("p1-keypoints", "test", DATA)
    assert p1.samples[0].target.shape == (68, 2)


@needs_data
def test_lfw_pairs_follow_view2():
    lfw = load_dataset("lfw", "view2", DATA)
    pairs = lfw.extra["pairs"]
    assert len(pairs) == 6000 and sum(p[2] for p in pairs) == 3000
    assert sorted({p[3] for p in pairs}) == list(range(10))
    assert all(0 <= a < len(lfw) and 0 <= b < len(lfw) for a, b, _, _ in pairs)


@needs_data
def test_lfw_verification_scores_a_subset_of_pairs_fold_by_fold():
    model = facezoo.load("identity", "test_resnet", pretrained=False)
    report = facezoo.evaluate(model, "lfw", "view2", data_root=DATA, limit=20, detect=False)
    assert report.count == 20 and "subset of 20 pairs" in report.protocol
    assert 0.0 <= report.metrics["accuracy"] <= 1.0 and "tar_at_far_1e-3" in report.metrics


def test_every_built_in_task_has_a_dataset():
    tasks = {facezoo._plugins.registry().get("dataset", n).task for n in list_datasets()}
    assert {"beauty", "identity", "age-gender", "keypoints", "expression"} <= tasks


def test_missing_data_root_and_split_are_named(tmp_path):
    with pytest.raises(facezoo.DatasetError, match="FACEZOO_DATA"):
        load_dataset("scut-fbp5500", "test", tmp_path / "nowhere")
    with pytest.raises(facezoo.DatasetError, match="scut-fbp5500/Images"):
        load_dataset("scut-fbp5500", "test", tmp_path)
    with pytest.raises(facezoo.DatasetError, match="valid: train, test"):
        load_dataset("scut-fbp5500", "validation", tmp_path)


def test_the_data_root_defaults_to_the_shared_bundle_beside_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("FACEZOO_DATA", raising=False)
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path / "repo")
    with pytest.raises(facezoo.DatasetError, match=r"set FACEZOO_DATA .*nor is there a \.\./shared/data"):
        facezoo.data.data_root()
    (tmp_path / "shared" / "data").mkdir(parents=True)
    assert facezoo.data.data_root() == tmp_path / "shared" / "data"
    monkeypatch.setenv("FACEZOO_DATA", str(tmp_path))
    assert facezoo.data.data_root() == tmp_path


def _images(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"{i}.jpg"
        Image.new("RGB", (32, 32), (i * 40, 80, 120)).save(path)
        paths.append(path)
    return paths


def test_image_folder_classes_are_sorted_folder_names(tmp_path):
    _images(tmp_path / "people" / "bob", 2)
    _images(tmp_path / "people" / "alice", 3)
    dataset = image_folder(tmp_path / "people", task="identity")
    assert dataset.labels == ("alice", "bob")
    assert [s.target for s in dataset.samples] == [0, 0, 0, 1, 1]
    with pytest.raises(facezoo.DatasetError, match="<class name>"):
        image_folder(tmp_path / "empty-or-missing", task="identity")


def test_manifest_csv_and_jsonl(tmp_path):
    paths = _images(tmp_path / "img", 3)
    (tmp_path / "scores.csv").write_text("path,score\n" + "".join(f"img/{p.name},{2.5 + i}\n" for i, p in enumerate(paths)))
    scores = manifest(tmp_path / "scores.csv", task="beauty", label_column="score")
    assert [s.target for s in scores.samples] == [2.5, 3.5, 4.5] and scores.labels == ()
    rows = [{"path": f"img/{p.name}", "label": label} for p, label in zip(paths, ["happy", "sad", "happy"], strict=True)]
    (tmp_path / "moods.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    moods = manifest(tmp_path / "moods.jsonl", task="expression")
    assert moods.labels == ("happy", "sad") and [s.target for s in moods.samples] == [0, 1, 0]
    (tmp_path / "bad.csv").write_text("file,label\nimg/0.jpg,1\n")
    with pytest.raises(facezoo.DatasetError, match="no column 'path'"):
        manifest(tmp_path / "bad.csv", task="beauty")


def test_the_balanced_threshold_is_not_pulled_up_by_a_majority_of_different_people():
    rng = np.random.default_rng(0)
    same = np.concatenate([rng.normal(0.8, 0.05, 100), rng.normal(0.5, 0.1, 5000)])
    labels = np.arange(len(same)) < 100
    plain, balanced = best_threshold(same, labels), best_threshold(same, labels, balanced=True)
    def tar(threshold):
        return (same[labels] >= threshold).mean()

    assert balanced < plain and tar(balanced) > tar(plain)
    assert best_threshold(np.array([0.1, 0.2, 0.8, 0.9]), np.array([False, False, True, True])) == 0.5
