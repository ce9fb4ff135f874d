"""The lean install (docs/deployment.md): every shipped model, ``analyze``, ``annotate``,
``verify``/``identify``, the CLI, ``serve`` (its in-browser files too), ``export-web`` and ``batch`` (local and on Ray) run on ONNX Runtime
without torch, timm or torchvision, and whatever needs them names the extra to install.

``.ci/run`` runs this directory in an environment built from docs/deployment.md's lean line, where
torch does not exist. In the full install (README's test command) every call runs in a
subprocess whose ``sitecustomize`` makes those packages unimportable, in the workers it starts
too: the same calls, the same assertions, in both installs. This file imports no torch itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from facezoo.testing import PHOTOS

GROUP, PORTRAIT = PHOTOS / "group.jpg", PHOTOS / "portrait.jpg"
TASKS = ("beauty", "identity", "age-gender", "keypoints", "expression")

# Installed as sitecustomize.py in the subprocesses: the lean install's view of the world. Every
# attempt to import a blocked package is recorded in $FACEZOO_TORCH_ATTEMPTS (one line each).
BLOCKER = '''
import importlib.abc, os, sys

class _Lean(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("torch", "torchvision", "timm"):
            with open(os.environ["FACEZOO_TORCH_ATTEMPTS"], "a") as log:
                log.write(name + "\\n")
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _Lean())
'''


@pytest.fixture
def lean(tmp_path):
    """``run(code)``: run Python ``code`` in a lean subprocess and return its stdout; the torch
    imports it attempted are checked to be none."""
    site = tmp_path / "lean-site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    attempts = tmp_path / "torch-attempts.txt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]), "FACEZOO_TORCH_ATTEMPTS": str(attempts)}

    def run(code: str, *, allow_attempts: bool = False) -> str:
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        if not allow_attempts:
            assert not attempts.exists(), f"tried to import {sorted(set(attempts.read_text().split()))}\n{done.stderr[-2000:]}"
        return done.stdout

    return run


def test_every_shipped_model_predicts_analyzes_and_annotates_without_torch(lean, tmp_path):
    out = lean(f"""
        import json, sys
        import facezoo
        models = [facezoo.load(task) for task in {TASKS!r}]
        per_task = {{m.config.task: [r.to_dict() for r in m.predict({str(GROUP)!r})] for m in models}}
        faces = facezoo.analyze({str(GROUP)!r}, models=models)
        facezoo.annotate({str(GROUP)!r}, faces).save({str(tmp_path / "annotated.jpg")!r})
        int8 = facezoo.load("beauty", quantize="int8").predict({str(PORTRAIT)!r})
        print(json.dumps({{
            "runtimes": sorted({{m.runtime for m in models}}), "per_task": per_task, "analyzed": [f.to_dict() for f in faces],
            "int8": int8[0].score, "loaded": sorted(n for n in ("torch", "torchvision", "timm") if n in sys.modules),
        }}))
    """)
    result = json.loads(out)
    assert result["runtimes"] == ["onnx"] and result["loaded"] == []
    assert all(len(results) == 2 for results in result["per_task"].values()), {t: len(r) for t, r in result["per_task"].items()}
    assert len(result["analyzed"]) == 2 and set(result["analyzed"][0]) == {"face", *TASKS}
    assert 1.0 <= result["int8"] <= 5.0 and (tmp_path / "annotated.jpg").stat().st_size > 10_000


def test_verify_and_identify_without_torch(lean):
    out = lean(f"""
        import json
        import facezoo
        model = facezoo.load("identity")
        same = model.verify({str(PORTRAIT)!r}, {str(PHOTOS / "portrait_same_person.jpg")!r})
        other = model.verify({str(PORTRAIT)!r}, {str(PHOTOS / "portrait_other_person.jpg")!r})
        model.enroll("first", [{str(PORTRAIT)!r}])
        model.enroll("second", [{str(PHOTOS / "portrait_other_person.jpg")!r}])
        [[match]] = model.identify({str(PHOTOS / "portrait_same_person.jpg")!r})
        print(json.dumps({{"same": same.same, "other": other.same, "match": match.name}}))
    """)
    assert json.loads(out) == {"same": True, "other": False, "match": "first"}


def test_the_cli_predicts_without_torch(lean):
    out = lean(f"""
        import sys
        from facezoo.cli import main
        sys.argv = ["facezoo", "predict", "expression", {str(GROUP)!r}, "--json"]
        main()
    """)
    [photo] = json.loads(out)
    assert len(photo["faces"]) == 2 and all(face["label"] for face in photo["faces"])


def test_serve_answers_without_torch(lean):
    out = lean(f"""
        import json
        from fastapi.testclient import TestClient
        from facezoo.serve import create_app
        with TestClient(create_app(["age-gender", "identity"])) as client:
            photo = open({str(GROUP)!r}, "rb").read()
            answer = client.post("/v1/analyze", files={{"image": ("group.jpg", photo, "image/jpeg")}})
            print(json.dumps({{"status": answer.status_code, "faces": len(answer.json()["faces"]), "page": client.get("/").status_code}}))
    """)
    assert json.loads(out) == {"status": 200, "faces": 2, "page": 200}


def test_export_web_and_the_page_files_without_torch(lean, tmp_path):
    out = lean(f"""
        import json, sys
        from fastapi.testclient import TestClient
        from facezoo.cli import main
        from facezoo.serve import create_app
        sys.argv = ["facezoo", "export-web", {str(tmp_path / "site")!r}, "--tasks", "age-gender,expression"]
        try:
            main()
        except SystemExit as done:
            assert not done.code, done.code
        with TestClient(create_app(["expression"])) as client:
            listed = client.get("/web/manifest.json").json()
            wasm = client.get("/web/vendor/ort-wasm-simd-threaded.wasm")
            print(json.dumps({{"served": [m["task"] for m in listed["models"]], "wasm": wasm.status_code, "runtime_missing": listed["runtime_missing"]}}))
    """)
    assert json.loads(out.splitlines()[-1]) == {"served": ["expression"], "wasm": 200, "runtime_missing": None}
    exported = json.loads((tmp_path / "site" / "web" / "manifest.json").read_text())
    assert [m["task"] for m in exported["models"]] == ["age-gender", "expression"]
    assert all((tmp_path / "site" / "web" / name).stat().st_size == f["bytes"] for name, f in exported["files"].items())


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_batch_runs_without_torch(lean, tmp_path, engine):
    output = tmp_path / f"{engine}.jsonl"
    lean(f"""
        import facezoo
        facezoo.batch(["beauty", "expression"], [{str(GROUP)!r}, {str(PORTRAIT)!r}], {str(output)!r}, engine={engine!r}, workers=1, progress=False)
    """)
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [row["status"] for row in rows].count("face") == 3 and all(row["beauty"] and row["expression"] for row in rows if row["status"] == "face")


def test_what_needs_torch_names_the_extra(lean):
    out = lean(
        """
        import json
        import facezoo
        messages = {}
        for name, call in {
            "runtime=torch": lambda: facezoo.load("beauty", runtime="torch"),
            "pretrained=False": lambda: facezoo.load("beauty", pretrained=False),
            "train": lambda: facezoo.train,
            "export": lambda: facezoo.export,
        }.items():
            try:
                call()
                messages[name] = None
            except facezoo.MissingExtraError as exc:
                messages[name] = str(exc)
        print(json.dumps(messages))
        """,
        allow_attempts=True,
    )
    messages = json.loads(out)
    assert "pip install 'facezoo[torch]'" in messages["runtime=torch"] and "runtime='torch'" in messages["runtime=torch"]
    assert "pip install 'facezoo[torch]'" in messages["pretrained=False"]
    assert "pip install 'facezoo[train]'" in messages["train"] and "pip install 'facezoo[train]'" in messages["export"]


def test_a_model_without_onnx_names_the_extra(lean, tmp_path):
    """A third party's model directory with safetensors only: building its ONNX file needs torch."""
    shipped = Path(json.loads(lean("import json, facezoo; print(json.dumps(str(facezoo.load('beauty').network.path.parent)))")))
    copy = tmp_path / "safetensors-only"
    copy.mkdir()
    for name in ("config.json", "model.safetensors", "README.md"):
        (copy / name).write_bytes((shipped / name).read_bytes())
    out = lean(
        f"""
        import facezoo
        try:
            facezoo.load({str(copy)!r})
        except facezoo.MissingExtraError as exc:
            print(exc)
        """,
        allow_attempts=True,
    )
    assert f"{copy}: it ships no model.onnx" in out and "pip install 'facezoo[torch]'" in out


def test_a_small_face_index_needs_neither_torch_nor_faiss(lean, tmp_path):
    """Below 20,000 faces an index searches exactly in numpy: the lean install builds, searches and serves one."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in PHOTOS.glob("portrait*.jpg"):
        (folder / photo.name).write_bytes(photo.read_bytes())
    out = lean(f"""
        import json, sys
        import importlib.abc
        class _NoFaiss(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] == "faiss":
                    raise ModuleNotFoundError("No module named 'faiss'", name=name)
        sys.meta_path.insert(0, _NoFaiss())
        from facezoo.index import build_index
        index = build_index({str(folder)!r}, {str(tmp_path / "lean.idx")!r}, progress=False)
        [matches] = index.search_photo({str(PHOTOS / "portrait_same_person.jpg")!r}, top=2)
        print(json.dumps({{"faces": len(index), "best": matches[0].metadata["image"], "faiss": "faiss" in sys.modules}}))
    """)
    assert json.loads(out) == {"faces": 3, "best": "portrait_same_person.jpg", "faiss": False}
