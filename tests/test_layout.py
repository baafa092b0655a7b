"""The code's layout as the design states it: who may import whom, no cycles, small files.

Every import counts, those inside functions and under TYPE_CHECKING included: a cycle
that only type checking sees is still two modules that cannot be read apart.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("curate", "model", "pipelines")
MAX_LINES = 400

# pipelines' parts, and the parts each may import (besides itself). Imports run one way.
ALLOWED = {
    "common": set(),
    "curation": {"common"},
    "selection": {"common"},
    "training": {"common", "selection"},
    "generation": {"common", "training"},
    "export": {"common", "selection"},
    "demo": {"common", "curation", "selection", "training", "generation", "cli"},
    "cli": {"common"},
}


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `path` imports, anywhere in it."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import mod` imports pkg.mod when that is a module
            names = [f"{node.module}.{a.name}" for a in node.names]
            names = [n if n in known else node.module for n in names]
        else:
            continue
        out |= {n for n in names if n.split(".")[0] in PACKAGES and n in known}
    return out


GRAPH = {name: imports(path, modules()) for name, path in modules().items()}


def test_there_is_no_import_cycle():
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(GRAPH):
        if node not in state:
            visit(node)


def test_the_libraries_import_neither_each_other_nor_pipelines():
    for name, targets in GRAPH.items():
        top = name.split(".")[0]
        if top == "curate":
            assert not {t for t in targets if not t.startswith("curate")}, name
        if top == "model":
            assert not {t for t in targets if not t.startswith("model")}, name


def _part(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if parts[0] == "pipelines" and len(parts) > 1 else None


def test_pipelines_parts_import_one_way():
    for name, targets in GRAPH.items():
        part = _part(name)
        if part is None:
            continue
        assert part in ALLOWED, f"{name}: pipelines/{part} is not a part the design names"
        for target in targets:
            other = _part(target)
            if other is None or other == part:
                continue
            assert other in ALLOWED[part], f"{name} imports {target}: {part} may not use {other}"


def test_only_pipelines_imports_ray():
    for name, path in modules().items():
        if name.startswith("pipelines"):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not any(a.name.split(".")[0] == "ray" for a in node.names), name
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module.split(".")[0] != "ray", name


def test_no_module_is_longer_than_the_limit():
    long = {n: len(p.read_text().splitlines()) for n, p in modules().items()}
    assert {n: k for n, k in long.items() if k > MAX_LINES} == {}


def test_each_part_of_pipelines_says_what_flows_in_and_out():
    for part in ALLOWED:
        init = ROOT / "pipelines" / part / "__init__.py"
        if part == "cli" or not init.parent.is_dir():
            continue
        assert ast.get_docstring(ast.parse(init.read_text())), f"{init} has no docstring"
