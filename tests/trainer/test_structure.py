"""The trainer's structure: every module imports, no import cycles, one door to the verifier.

The import graph is read from the source with :mod:`ast` (every ``import``, at module level or
inside a function: a lazy import still ties two modules together), over ``trainer_client`` and
the ``examples`` built on it.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("trainer_client", "examples")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The modules ``name`` imports (any project module, at any depth of the file)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


GRAPH = {
    name: {m for m in _imports(name, path) if m in MODULES and m != name}
    for name, path in MODULES.items()
}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def test_the_graph_sees_known_edges():
    # The check below is only as good as the graph: it must see module-level imports, one
    # inside a function (tracking imports matplotlib lazily) and package re-exports.
    assert "trainer_client.rollout.base" in GRAPH["trainer_client.rollout.hf"]
    assert "trainer_client.objectives" in GRAPH["trainer_client.config"]
    assert "trainer_client.rollout.hf" in GRAPH["trainer_client.rollout"]
    assert "matplotlib.pyplot" in _imports("x", MODULES["trainer_client.tracking"])
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert _cycles(GRAPH) == []


def test_the_library_never_imports_the_examples():
    offenders = sorted(
        name
        for name, deps in GRAPH.items()
        if name.startswith("trainer_client") and any(d.startswith("examples") for d in deps)
    )
    assert offenders == []


#: What of ``verifier_service`` any trainer module may import: the distribution's one version
#: and where the vendored data lies. Both import nothing of the service.
SHARED_WITH_THE_VERIFIER = {"verifier_service", "verifier_service.__version__"}


def _shared(module: str) -> bool:
    return module in SHARED_WITH_THE_VERIFIER or module.startswith("verifier_service.vendored")


def test_one_module_imports_the_verifier_service():
    importers = sorted(
        name
        for name, path in MODULES.items()
        if name.startswith("trainer_client")
        and any(
            m.split(".")[0] == "verifier_service" and not _shared(m) for m in _imports(name, path)
        )
    )
    assert importers == ["trainer_client.local_verifier"]


def test_only_the_registry_names_objectives():
    from trainer_client.objectives import OBJECTIVES

    quoted = re.compile("|".join(rf"""["']{re.escape(name)}["']""" for name in OBJECTIVES))
    naming = sorted(
        name
        for name, path in MODULES.items()
        if name != "trainer_client.objectives" and quoted.search(path.read_text())
    )
    assert naming == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_imports(name):
    assert importlib.import_module(name).__name__ == name
