"""Cache keys: one proof maps to one key; anything that decides its verdict changes the key."""

from __future__ import annotations

import dataclasses
import re

import pytest

from verifier_service.cache import cache_key
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
