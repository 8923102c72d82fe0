"""The trainer's structure: every module imports, no import cycles, one door to the verifier.

The import graph is read from the source with :mod:`ast` (every ``import``, at module level or
inside a function: a lazy import still ties two modules together), over ``trainer_client`` and
the ``examples`` built on it.
"""

from __future__ import annotations

import importlib
import re

import pytest

from tests.import_graph import cycles, graph, imports, modules

PACKAGES = ("trainer_client", "examples")
MODULES = modules(PACKAGES)
GRAPH = graph(MODULES)


def test_the_graph_sees_known_edges():
    # The check below is only as good as the graph: it must see module-level imports, one
    # inside a function (tracking imports matplotlib lazily) and package re-exports.
    assert "trainer_client.rollout.base" in GRAPH["trainer_client.rollout.hf"]
    assert "trainer_client.objectives" in GRAPH["trainer_client.config"]
    assert "trainer_client.rollout.hf" in GRAPH["trainer_client.rollout"]
    assert "matplotlib.pyplot" in imports("x", MODULES["trainer_client.tracking"])
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert cycles(GRAPH) == []


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
            m.split(".")[0] == "verifier_service" and not _shared(m) for m in imports(name, path)
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
