"""The checker registry: defaults, explicit lists, third-party checkers, clear errors."""

from __future__ import annotations

import pytest

from verifier_service.checkers import build_checkers, enabled_checker_names
from verifier_service.settings import VerifierSettings


def test_default_is_math_plus_lean_when_a_repl_is_configured():
    assert enabled_checker_names(VerifierSettings(checkers=[], lean_repl=None)) == ["math"]
    with_lean = VerifierSettings(checkers=[], lean_repl="lake env repl")
    assert enabled_checker_names(with_lean) == ["math", "lean4"]


def test_explicit_list_is_used_as_given_without_duplicates():
    settings = VerifierSettings(checkers="math,math", lean_repl="lake env repl")
    assert enabled_checker_names(settings) == ["math"]


def test_unknown_checker_is_a_clear_startup_error():
    with pytest.raises(ValueError, match=r"unknown checker 'lean3'.*known: lean4, math"):
        build_checkers(VerifierSettings(checkers=["lean3"]))


def test_third_party_checker_by_import_path():
    settings = VerifierSettings(checkers=["tests.verifier.service.fakes:FakeChecker"])
    checkers = build_checkers(settings)
    assert list(checkers) == ["fake"]


def test_import_path_that_is_not_a_checker_is_refused():
    with pytest.raises(ValueError, match="not a Checker subclass"):
        build_checkers(VerifierSettings(checkers=["tests.verifier.service.fakes:BrokenCache"]))
    with pytest.raises(ValueError, match="cannot import"):
        build_checkers(VerifierSettings(checkers=["no_such_module_xyz:Thing"]))
