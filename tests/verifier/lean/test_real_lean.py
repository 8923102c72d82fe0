"""The checker against a real Lean REPL; runs only where ``SIEVE_LEAN_REPL`` is set.

Configure it like the service (``SIEVE_LEAN_REPL``, ``SIEVE_LEAN_CWD`` for a Mathlib project,
...). The header is ``SIEVE_LEAN_TEST_HEADER`` or ``import Mathlib``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from verifier_service.checkers.base import Policy
from verifier_service.checkers.lean import LeanChecker
from verifier_service.launcher import serve_subprocess
from verifier_service.selftest import run_selftest
from verifier_service.settings import VerifierSettings
from verifier_service.verdicts import Outcome, Verdict

pytestmark = [
    pytest.mark.lean,
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.environ.get("SIEVE_LEAN_REPL"),
        reason="needs a real Lean REPL: set SIEVE_LEAN_REPL (and SIEVE_LEAN_CWD for Mathlib)",
    ),
]

HEADER = os.environ.get("SIEVE_LEAN_TEST_HEADER", "import Mathlib")
STATEMENT = "theorem foo (a b : ℕ) : a + b = b + a := by\n"


@pytest.fixture
async def checker() -> AsyncIterator[LeanChecker]:
    settings = VerifierSettings(lean_workers=1, lean_prewarm_headers=[HEADER])
    checker = LeanChecker(settings)
    await checker.start()
    yield checker
    await checker.aclose()


async def check(
    checker: LeanChecker, code: str, statement: str | None = STATEMENT, **policy: object
) -> Outcome:
    job = checker.prepare(
        code=code,
        header=HEADER,
        statement=statement,
        answer=None,
        timeout_s=min(120.0, checker.settings.lean_max_timeout_s),
        policy=Policy(**policy),  # type: ignore[arg-type]
    )
    return await checker.check(job)


async def test_omega_proof_is_valid(checker):
    outcome = await check(checker, STATEMENT + "  omega")
    assert outcome.verdict is Verdict.VALID, outcome
    assert outcome.axioms is not None
    assert set(outcome.axioms) <= {"propext", "Classical.choice", "Quot.sound"}


async def test_sorry_is_invalid(checker):
    outcome = await check(checker, STATEMENT + "  sorry")
    assert outcome.verdict is Verdict.INVALID
    assert outcome.reasons == ["sorry"]


async def test_native_decide_is_a_forbidden_axiom(checker):
    statement = "theorem big : 2 ^ 20 % 7 = 4 := by\n"
    outcome = await check(checker, statement + "  native_decide", statement)
    assert outcome.verdict is Verdict.INVALID
    assert "forbidden_axiom:Lean.ofReduceBool" in outcome.reasons


async def test_true_trivial_is_a_changed_statement(checker):
    outcome = await check(checker, "theorem foo (a b : ℕ) : True := trivial")
    assert outcome.verdict is Verdict.INVALID
    assert outcome.reasons == ["statement_changed"]


async def test_wrong_proof_is_a_lean_error(checker):
    outcome = await check(checker, STATEMENT + "  rfl")
    assert outcome.verdict is Verdict.INVALID
    assert outcome.reasons == ["lean_error"]
    assert any(m["severity"] == "error" for m in outcome.messages)


async def test_namespaced_theorem_and_example_get_their_axioms(checker):
    namespaced = await check(checker, "namespace X\n" + STATEMENT + "  omega\nend X", None)
    assert namespaced.verdict is Verdict.VALID, namespaced
    example = await check(checker, "example : 2 ^ 20 % 7 = 4 := by native_decide", None)
    assert example.reasons == ["forbidden_axiom:Lean.ofReduceBool"]


def test_selftest_against_a_live_service_with_real_lean():
    """``sieve-verifier selftest`` against ``serve`` with this machine's Lean: every verdict of
    the bundled valid and hostile cases must be right."""
    env = {k: v for k, v in os.environ.items() if k.startswith("SIEVE_")}
    env.setdefault("SIEVE_LEAN_WORKERS", "2")
    env.setdefault("SIEVE_LEAN_PREWARM_HEADERS", HEADER)
    env.pop("SIEVE_API_KEYS", None)
    with serve_subprocess(env, ready_path="/health", startup_timeout_s=120) as url:
        report = run_selftest(url, ready_timeout_s=1800, timeout_s=300)
    assert report.ok, [r.to_dict() for r in report.wrong]
    assert report.hostile_accepted == []
