"""The docs cannot rot: quoted excerpts match the example plugin's files, the Python examples run,
and every hook of facezoo.hookspecs is documented, implemented and exercised by a test."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import pytest
import tomllib

from facezoo import Preprocess, _plugins, hookspecs
from facezoo.testing import PHOTOS

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PLUGIN = DOCS / "example_plugin"
# An optional "<!-- not run: reason -->" line, then a fenced block.
FENCE = re.compile(r"^(?:<!-- not run: (?P<skip>[^>]+) -->\n)?```(?P<lang>\w+)\n(?P<body>.*?)\n```$", re.M | re.S)
FILE_MARK = "# file: "
HOOKS = sorted(name for name in vars(hookspecs) if name.startswith("facezoo_register_"))


def blocks(doc: str) -> list[re.Match]:
    return list(FENCE.finditer((DOCS / doc).read_text()))


EXCERPTS = [
    (m["body"].split("\n", 1)[0][len(FILE_MARK) :], m["body"].split("\n", 1)[1])
    for m in blocks("plugins.md")
    if m["body"].startswith(FILE_MARK)
]


@pytest.mark.parametrize(("path", "excerpt"), EXCERPTS, ids=[f"{p}:{i}" for i, (p, _) in enumerate(EXCERPTS)])
def test_plugin_guide_quotes_the_example_plugin_verbatim(path, excerpt):
    assert excerpt in (PLUGIN / path).read_text(), f"docs/plugins.md quotes {path} but the file says otherwise"


@pytest.mark.parametrize("doc", ["plugins.md", "usage.md", "serve.md", "index.md"])
def test_python_examples_run(doc, tmp_path, monkeypatch, hub_url):
    """Run a page's Python blocks in order, in one namespace, in a folder with the photos they name."""
    if doc == "serve.md":
        pytest.importorskip("fastapi", reason="docs/serve.md needs the serve extra: pip install -e '.[serve,test]'")
    for name, source in (("photo", "portrait"), ("photo2", "portrait_same_person"), ("other", "portrait_other_person"), ("group", "group")):
        shutil.copy(PHOTOS / f"{source}.jpg", tmp_path / f"{name}.jpg")
    monkeypatch.chdir(tmp_path)
    runnable = [m for m in blocks(doc) if m["lang"] == "python" and not m["skip"] and not m["body"].startswith(FILE_MARK)]
    assert runnable, f"docs/{doc} has no runnable example"
    namespace: dict = {}
    for number, block in enumerate(runnable):
        exec(compile(block["body"], f"docs/{doc} example {number}", "exec"), namespace)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_implemented_and_tested(hook):
    doc = getattr(hookspecs, hook).__doc__
    assert "Example:" in doc and ">>> @hookimpl" in doc, f"{hook} needs a docstring with an example"
    assert f"`{hook}" in (DOCS / "plugins.md").read_text(), f"docs/plugins.md does not explain {hook}"
    implementers = {impl.plugin_name for impl in getattr(_plugins.plugin_manager().hook, hook).get_hookimpls()}
    assert "glasses" in implementers, f"the example plugin does not show {hook}"
    tests = [p.name for p in (REPO / "tests").glob("test_*.py") if p.name != "test_docs.py" and f"def test_{hook}" in p.read_text()]
    assert tests, f"no test named test_{hook}_... exercises {hook}"


def _extras(text: str) -> set[str]:
    [extras] = re.findall(r'pip install (?:--quiet )?-e "\.\[([a-z,]+)\]"', text)
    return set(extras.split(","))


def _included(extras: dict[str, list[str]], name: str) -> set[str]:
    """``name`` and the extras it brings through ``facezoo[...]`` requirements, transitively."""
    names = {name}
    for requirement in extras[name]:
        for inner in re.findall(r"^facezoo\[([a-z,]+)\]", requirement):
            for other in inner.split(","):
                names |= _included(extras, other)
    return names


def test_readme_installs_what_ci_installs():
    """README's two commands run the tests .ci/run runs: both set up with setup.sh, which installs
    every extra a test needs, and both run the same test command."""
    readme, ci = (REPO / "README.md").read_text(), (REPO / ".ci" / "run").read_text()
    assert "bash setup.sh" in readme and "bash setup.sh" in ci
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert _extras((REPO / "setup.sh").read_text()) == {"all", "test"}
    assert _included(extras, "all") == set(extras) - {"test"}, "the all extra leaves some out"
    assert ci.rstrip().splitlines()[-1] == ".venv/bin/python -m pytest -q" and ".venv/bin/python -m pytest -q\n```" in readme


def test_ci_installs_the_lean_line_of_the_deployment_guide():
    """docs/deployment.md's lean line is one pip command that .ci/run runs as written, with no
    torch in it; the inference tests then run in that environment."""
    lines = [line for line in (DOCS / "deployment.md").read_text().splitlines() if line.startswith("pip install") and "# lean" in line]
    ci = (REPO / ".ci" / "run").read_text()
    assert len(lines) == 1 and "grep -m1 -E '^pip install .*# lean' docs/deployment.md" in ci
    [extras] = re.findall(r'pip install "\.\[([a-z,]+)\]"', lines[0])
    assert not {"all", "torch", "train", "onnx", "imagenet", "teachers"} & set(extras.split(","))
    assert "pytest -q -p no:cacheprovider tests/inference" in ci


def test_plugin_guide_lists_every_preprocess_field():
    guide = (DOCS / "plugins.md").read_text()
    assert [f.name for f in dataclasses.fields(Preprocess) if f"`{f.name}`" not in guide] == []
    rows = dict(re.findall(r"^\| `(\w+)` \| `([^`]+)` \|", guide, re.MULTILINE))
    for f in dataclasses.fields(Preprocess):
        if f.name in rows:  # the table states today's default
            assert rows[f.name] == (f'"{f.default}"' if isinstance(f.default, str) else repr(f.default)), f.name
