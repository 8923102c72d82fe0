"""Cache keys: one proof maps to one key; anything that decides its verdict changes the key."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re

import pytest

from verifier_service.cache import cache_key
from verifier_service.cache.keys import canonical_json
from verifier_service.checkers.base import Job, Policy

VERSION = "lean4 v4.15.0 mathlib v4.15.0 repl v4.15.0"

BASE = Job(
    checker="lean4",
    header="import Mathlib",
    code="theorem t : 1 + 1 = 2 := by norm_num",
    statement="theorem t : 1 + 1 = 2",
    timeout_s=60.0,
    policy=Policy(allow_sorry=False, axioms=("propext", "Classical.choice", "Quot.sound")),
)


def test_key_has_namespace_and_sha256_digest() -> None:
    key = cache_key(BASE, VERSION, namespace="tenant-a")
    assert re.fullmatch(r"tenant-a:[0-9a-f]{64}", key), key
    assert cache_key(BASE, VERSION).startswith("sieve:")


def test_same_job_same_key_across_instances() -> None:
    twin = Job(**{f.name: getattr(BASE, f.name) for f in dataclasses.fields(Job)})
    assert twin is not BASE
    assert cache_key(twin, VERSION) == cache_key(BASE, VERSION)


@pytest.mark.parametrize(
    "change",
    [
        {"header": "import Mathlib\nimport Aesop"},
        {"code": "theorem t : 1 + 1 = 2 := by simp"},
        {"statement": "theorem t : 2 = 1 + 1"},
        {"answer": "2"},
        {"checker": "math"},
        {"policy": Policy(allow_sorry=True)},
        {"policy": Policy(axioms=("propext",))},
    ],
    ids=lambda change: next(iter(change)),
)
def test_anything_that_decides_the_verdict_changes_the_key(change: dict) -> None:
    assert cache_key(dataclasses.replace(BASE, **change), VERSION) != cache_key(BASE, VERSION)


def test_checker_version_and_namespace_change_the_key() -> None:
    assert cache_key(BASE, VERSION + "+1") != cache_key(BASE, VERSION)
    assert cache_key(BASE, VERSION, "a") != cache_key(BASE, VERSION, "b")


def test_time_budget_is_not_part_of_the_key() -> None:
    longer = dataclasses.replace(BASE, timeout_s=600.0)
    assert cache_key(longer, VERSION) == cache_key(BASE, VERSION)


def test_axiom_order_and_duplicates_do_not_matter() -> None:
    shuffled = dataclasses.replace(
        BASE, policy=Policy(axioms=("Quot.sound", "propext", "Classical.choice", "propext"))
    )
    assert cache_key(shuffled, VERSION) == cache_key(BASE, VERSION)


def test_unusual_text_still_hashes() -> None:
    odd = dataclasses.replace(BASE, code="theorem t : ∀ x : ℕ, x = x := fun _ => rfl -- \ud800")
    assert cache_key(odd, VERSION) != cache_key(BASE, VERSION)


@pytest.mark.parametrize(
    "material",
    [
        {"b": 1, "a": [True, None, "x"], "c": {"z": "∀ x : ℕ, x = x", "y": ""}},
        {"code": 'line\nnext\ttab "quoted" \\ back \x00 \x1f \x7f \u2028 😀 é'},
        {"policy": {"allow_sorry": False, "axioms": ["Classical.choice", "Quot.sound"]}},
    ],
)
def test_both_encoders_write_the_same_canonical_bytes(material: dict) -> None:
    orjson = pytest.importorskip("orjson", reason="orjson not installed; only one encoder here")
    standard = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert orjson.dumps(material, option=orjson.OPT_SORT_KEYS) == standard.encode()
    assert canonical_json(material) == standard.encode()


def test_key_of_a_real_job_matches_the_standard_library_encoding() -> None:
    material = {"checker_version": VERSION, **BASE.cache_material()}
    standard = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(standard.encode()).hexdigest()
    assert cache_key(BASE, VERSION) == f"sieve:{digest}"
