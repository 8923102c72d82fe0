"""The verifier's structure: every module imports, no import cycles, and the layers point down.

The layers, from the top: the HTTP API (``api``, ``app``) and the command line (``cli``) use the
service; the service uses the checkers and the cache; the checkers use the Lean pool and the
soundness rules. A lower layer importing a higher one is how a cycle starts, so it is refused
even where it would not yet close one.
"""

from __future__ import annotations

import importlib

import pytest

from tests.import_graph import cycles, graph, imports, modules

MODULES = modules(["verifier_service"])
GRAPH = graph(MODULES)

#: The layers above the service: nothing the service uses may import them.
ABOVE_THE_SERVICE = ("verifier_service.api", "verifier_service.app", "verifier_service.cli")
#: What the service is built on: none of it may import the service (or what is above it).
BELOW_THE_SERVICE = (
    "verifier_service.cache",
    "verifier_service.checkers",
    "verifier_service.lean",
    "verifier_service.soundness",
    "verifier_service.metrics",
    "verifier_service.settings",
    "verifier_service.verdicts",
)


def _in(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in prefixes)


def test_the_graph_sees_known_edges():
    # The checks below are only as good as the graph: it must see package re-exports, imports
    # between the service's parts, and one inside a function (the CLI imports lazily).
    assert "verifier_service.service.pipeline" in GRAPH["verifier_service.service"]
    assert "verifier_service.service.flights" in GRAPH["verifier_service.service.pipeline"]
    assert "verifier_service.lean.header_failures" in GRAPH["verifier_service.lean.pool"]
    assert "verifier_service.service" in GRAPH["verifier_service.cli"]
    assert "verifier_service.service" in GRAPH["verifier_service.api.errors"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert cycles(GRAPH) == []


def test_the_verifier_never_imports_the_trainer():
    offenders = sorted(
        name
        for name, path in MODULES.items()
        if any(m.split(".")[0] in {"trainer_client", "examples"} for m in imports(name, path))
    )
    assert offenders == []


def _layer(module: str) -> int:
    """0 below the service, 1 the service, 2 above it; -1 for what stands aside (``testing``)."""
    if _in(module, ABOVE_THE_SERVICE):
        return 2
    if _in(module, ("verifier_service.service",)):
        return 1
    if _in(module, BELOW_THE_SERVICE):
        return 0
    return -1


def test_the_layers_point_down():
    assert _layer("verifier_service.lean.pool") == 0
    assert _layer("verifier_service.service.memo") == 1
    assert _layer("verifier_service.api.errors") == 2
    upward = sorted(
        (name, dep)
        for name, deps in GRAPH.items()
        for dep in deps
        if _layer(name) >= 0 and _layer(dep) > _layer(name)
    )
    assert upward == []


def test_the_service_parts_do_not_use_the_pipeline():
    """The pipeline assembles the parts; a part reaching back to it (or to the package that
    re-exports it) would tie every part to every other."""
    parts = [n for n in MODULES if n.startswith("verifier_service.service.")]
    assert len(parts) >= 6
    reaching_back = sorted(
        (name, dep)
        for name in parts
        if name != "verifier_service.service.pipeline"
        for dep in GRAPH[name]
        if dep in {"verifier_service.service", "verifier_service.service.pipeline"}
    )
    assert reaching_back == []


def test_the_failed_header_memory_stands_alone():
    """The pool uses it; it knows nothing of the pool, so it can be tested and reused alone."""
    path = MODULES["verifier_service.lean.header_failures"]
    assert not any(m.startswith("verifier_service") for m in imports("", path))


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_imports(name):
    assert importlib.import_module(name).__name__ == name
