"""A proof whose replies are forged is ``error`` (``protocol_violation``): never valid, never
reused, counted. Forgeries come from the REPL double's markers, written from inside the proof's
command as code the proof ran would write them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

import pytest

from verifier_service.checkers.base import Policy
from verifier_service.checkers.lean import LeanChecker
from verifier_service.lean.pool import ReplPool
from verifier_service.settings import VerifierSettings
from verifier_service.testing import repl_double
from verifier_service.verdicts import Verdict

HEADER = "import Mathlib\nimport Aesop"
STATEMENT = "theorem foo (a b : ℕ) : a + b = b + a := by\n"

FORGERIES = [
    "-- double:forge",  # correctly numbered "no messages" reply, then the real one
    '-- double:forge {"env": $ENV, "messages": []}',
    "-- double:forge not a reply",
    "-- double:trailer",
    "-- double:envshift 1",
    "-- double:envshift 5",
]


@pytest.fixture
async def make_checker() -> AsyncIterator[Callable[[], LeanChecker]]:
    checkers: list[LeanChecker] = []

    def make() -> LeanChecker:
        pool = ReplPool(repl_double.command("--no-transcripts"), workers=1, header_timeout_s=30)
        settings = VerifierSettings(lean_repl=None, lean_acquire_timeout_s=30)
        checker = LeanChecker(settings, pool=pool)
        checkers.append(checker)
        return checker

    yield make
    for checker in checkers:
        await checker.aclose()


def _job(checker: LeanChecker, code: str):
    return checker.prepare(
        code=code,
        header=HEADER,
        statement=STATEMENT,
        answer=None,
        timeout_s=20,
        policy=Policy(),
    )


@pytest.mark.parametrize("marker", FORGERIES)
async def test_a_forged_reply_is_an_error_never_valid(make_checker, marker, caplog) -> None:
    checker = make_checker()
    await checker.start()
    code = f"{STATEMENT}  omega {marker}"
    with caplog.at_level(logging.ERROR, logger="verifier_service.checkers.lean"):
        outcome = await checker.check(_job(checker, code))
    assert outcome.verdict is Verdict.ERROR, outcome
    assert outcome.reasons == ["protocol_violation"]
    assert not outcome.verdict.cacheable
    logged = [r.getMessage() for r in caplog.records if "protocol violation" in r.getMessage()]
    assert logged and "proof " in logged[0]
    assert code not in logged[0]  # the digest names the proof, not its text
    assert checker.stats()["protocol_violations"] == 1
    again = await checker.check(_job(checker, f"{STATEMENT}  omega"))
    assert again.verdict is Verdict.VALID, again  # on a fresh worker
    assert checker.stats()["protocol_violations"] == 1


async def test_the_same_proof_without_a_forgery_is_valid(make_checker) -> None:
    """The markers above are the only difference: the proof itself passes."""
    checker = make_checker()
    outcome = await checker.check(_job(checker, f"{STATEMENT}  omega -- double:sleep 0"))
    assert outcome.verdict is Verdict.VALID, outcome
    assert checker.stats()["protocol_violations"] == 0


async def test_a_forged_reply_to_a_proof_without_a_target_is_an_error(make_checker) -> None:
    """No ``#print axioms`` follows such a proof: the lease's closing sync catches the forgery."""
    checker = make_checker()
    code = "def x : ℕ := 1 -- double:error a forgery hides this\ndef y : ℕ := 2 -- double:forge"
    outcome = await checker.check(
        checker.prepare(
            code=code, header=HEADER, statement=None, answer=None, timeout_s=20, policy=Policy()
        )
    )
    assert outcome.verdict is Verdict.ERROR, outcome
    assert outcome.reasons == ["protocol_violation"]
