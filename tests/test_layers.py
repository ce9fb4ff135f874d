"""Layers that never point up: facezoo's modules, read with ``ast`` (nothing is imported), form no
import circle at module level, and the runtime layer never imports the factory or the top-level API,
not even inside a function (a hidden circle is still a circle)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "facezoo"

# The layers below the factory, as globs relative to facezoo/, each with why it sits there.
RUNTIME = {
    "_onnx.py": "ONNX Runtime sessions and OnnxNetwork: the factory and the detectors run on them",
    "_network.py": "the torch network a model runs on: the factory builds it",
    "detection/*.py": "detectors: the factory and predict call them to frame faces",
    "_preprocess.py": "the preprocessing contract of config.json: every runtime applies it",
    "_images.py": "image decoding: every input reaches a model through it",
    "results.py": "the typed results models and detectors return",
    "config.py": "the frozen config a model is built from",
    "errors.py": "the exceptions every layer raises",
}
# What the runtime layer may never import: the factory and the public API above it.
TOP = {"facezoo._factory", "facezoo"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def targets(name: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The facezoo modules ``node`` (in module ``name``) imports."""
    if isinstance(node, ast.Import):
        found = {alias.name for alias in node.names}
    else:
        if node.level:
            base = name.split(".") if is_package(name) else name.split(".")[:-1]
            base = base[: len(base) - node.level + 1]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        found = {f"{module}.{alias.name}" if f"{module}.{alias.name}" in MODULES else module for alias in node.names}
    return {t for t in found if t in MODULES}


def is_type_checking(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def module_level(body: list[ast.stmt]):
    """Import statements run when the module is imported: not in functions, classes' methods or
    ``if TYPE_CHECKING`` blocks."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or is_type_checking(node):
            continue
        else:
            for field in ("body", "orelse", "finalbody", "handlers"):
                yield from module_level([n for n in getattr(node, field, []) if isinstance(n, ast.stmt | ast.ExceptHandler)])


def imports(name: str, anywhere: bool) -> set[str]:
    tree = ast.parse(MODULES[name].read_text(), str(MODULES[name]))
    nodes = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)] if anywhere else module_level(tree.body)
    return set().union(set(), *(targets(name, n) for n in nodes)) - {name}


def test_no_import_cycle():
    graph = {name: imports(name, anywhere=False) for name in MODULES}
    state: dict[str, str] = {}
    cycles = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                cycles.append(" → ".join([*path[path.index(target) :], name, target]))  # an open module is on the path
            elif target not in state:
                visit(target, [*path, name])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert not cycles, "module-level import circles in facezoo:\n" + "\n".join(cycles)


RUNTIME_MODULES = sorted({module_name(p) for pattern in RUNTIME for p in PACKAGE.glob(pattern)})


@pytest.mark.parametrize("pattern", sorted(RUNTIME))
def test_runtime_layer_is_known(pattern):
    assert list(PACKAGE.glob(pattern)), f"{pattern} matches no module in facezoo/: update the layer list"


@pytest.mark.parametrize("name", RUNTIME_MODULES)
def test_runtime_layer_never_imports_the_top(name):
    upward = imports(name, anywhere=True) & TOP
    assert not upward, f"{name} imports {sorted(upward)}: the runtime layer must not call the factory or the public API; pass what it needs down instead"
