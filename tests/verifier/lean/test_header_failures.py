"""The memory of headers that failed to elaborate: bounded by count and bytes, and it expires.

How the pool uses it is tested in ``tests/verifier/pool/test_churn.py``.
"""

from __future__ import annotations

import time

from verifier_service.lean.header_failures import HeaderFailures


def _message(text: str) -> dict:
    return {"severity": "error", "pos": {"line": 1, "column": 0}, "data": text}


def test_failure_memory_defaults_are_the_ones_the_readme_states() -> None:
    # docs/sandbox-and-docker.md, "The pool": remembered for 30 s, at most 1,024 headers and 4 MiB
    memory = HeaderFailures()
    assert (memory.ttl_s, memory.max_entries, memory.max_bytes) == (30.0, 1024, 4 << 20)
    for i in range(1100):
        memory.put(f"import Bad{i}", [_message("unknown module")])
    assert len(memory) == 1024 and memory.bytes <= 4 << 20


def test_failure_memory_is_bounded_by_count() -> None:
    memory = HeaderFailures(max_entries=3)
    for i in range(5):
        memory.put(f"import Bad{i}", [_message(f"unknown module Bad{i}")])
    assert len(memory) == 3
    assert memory.get("import Bad0") is None and memory.get("import Bad1") is None
    assert memory.get("import Bad4") == [_message("unknown module Bad4")]


def test_failure_memory_is_bounded_by_bytes_and_never_holds_the_header() -> None:
    memory = HeaderFailures(max_bytes=10_000, max_entry_bytes=2_000)
    huge_header = "import Bad\n" + "-- padding\n" * 20_000  # 220 kB: a client can send this
    for i in range(100):
        memory.put(f"{huge_header}{i}", [_message("x" * 50_000), _message("second")])
        assert memory.bytes <= 10_000
    kept = memory.get(f"{huge_header}99")
    assert kept is not None and len(kept) >= 1
    assert len(kept[0]["data"]) < 2_000 and kept[0]["data"].endswith("(truncated)")
    assert len(memory) < 100


def test_failure_memory_expires_and_is_released() -> None:
    memory = HeaderFailures(ttl_s=0.05)
    memory.put("import Bad", [_message("no")])
    assert memory.get("import Bad") is not None
    time.sleep(0.08)
    memory.prune()
    assert len(memory) == 0 and memory.bytes == 0
    assert memory.get("import Bad") is None
