"""Several answers per worker round trip: every answer keeps its own timer and its own verdict,
whatever happens to the worker it shares."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from verifier_service.checkers.base import Job, Policy
from verifier_service.checkers.math import MathChecker
from verifier_service.service import ProofItem, VerificationService
from verifier_service.settings import VerifierSettings
from verifier_service.verdicts import Outcome, Verdict

from . import helpers

#: Answers to 24 with known verdicts, interleaved with the faulty ones in each batch.
RIGHT = ["3*8", "\\boxed{24}", "(2+4)*4", "48/2"]
WRONG = ["25", "\\boxed{23}", "3*9", "x"]


def _job(checker: MathChecker, code: str, timeout_s: float = 30.0) -> Job:
    return checker.prepare(
        code=code, header=None, statement=None, answer="24", timeout_s=timeout_s, policy=Policy()
    )


async def _check_all(checker: MathChecker, codes: list[str], timeout_s: float = 30.0):
    return await asyncio.gather(*(checker.check(_job(checker, c, timeout_s)) for c in codes))


def _assert_right_verdicts(codes: list[str], outcomes: list[Outcome]) -> None:
    for code, outcome in zip(codes, outcomes, strict=True):
        if code in RIGHT:
            assert outcome.verdict is Verdict.VALID, (code, outcome)
        elif code in WRONG:
            assert outcome.verdict is Verdict.INVALID, (code, outcome)


@pytest.fixture
async def scripted(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[MathChecker]:
    monkeypatch.setattr("verifier_service.checkers.math.STUCK_GRACE_S", 0.5)
    checker = MathChecker(workers=2)
    await checker.start()  # warm-up must not eat the short deadlines
    checker._work = helpers.scripted
    try:
        yield checker
    finally:
        await checker.aclose()


async def test_a_batch_takes_fewer_round_trips_than_answers() -> None:
    checker = MathChecker(workers=2)
    try:
        await checker.start()
        codes = [*RIGHT, *WRONG] * 4
        outcomes = await _check_all(checker, codes)
        _assert_right_verdicts(codes, outcomes)
        assert checker._round_trips <= len(codes) // 2
        assert checker.stats()["busy"] == 0
    finally:
        await checker.aclose()


async def test_a_lone_answer_goes_alone_and_at_once() -> None:
    checker = MathChecker(workers=2)
    try:
        outcome = await checker.check(_job(checker, "3*8"))
        assert outcome.verdict is Verdict.VALID
        assert checker._round_trips == 1
    finally:
        await checker.aclose()


async def test_an_answer_that_kills_its_worker_twice_is_an_error_and_alone(
    scripted: MathChecker,
) -> None:
    codes = [*RIGHT[:2], "die", *WRONG[:2], *RIGHT[2:], *WRONG[2:]]
    outcomes = await _check_all(scripted, codes)
    _assert_right_verdicts(codes, outcomes)
    killer = outcomes[codes.index("die")]
    assert killer.verdict is Verdict.ERROR
    assert killer.reasons[0].startswith("math_verify_failed: BrokenProcessPool")
    # it broke the pool once among others, then once alone
    assert scripted.stats()["pools_recycled"] == 2


async def test_an_answer_that_killed_its_worker_once_gets_its_own_verdict(
    scripted: MathChecker, tmp_path: Path
) -> None:
    codes = [*WRONG, f"die-once:{tmp_path / 'died'}", *RIGHT]
    outcomes = await _check_all(scripted, codes)
    _assert_right_verdicts(codes, outcomes)
    assert (tmp_path / "died").exists()  # it did kill a worker
    assert outcomes[len(WRONG)].verdict is Verdict.VALID  # its own answer, 3*8, on retry


async def test_an_answer_stuck_past_its_timer_is_a_timeout_and_the_rest_are_judged(
    scripted: MathChecker,
) -> None:
    codes = [*RIGHT, "hang", *WRONG]
    outcomes = await _check_all(scripted, codes, timeout_s=0.5)
    _assert_right_verdicts(codes, outcomes)
    stuck = outcomes[codes.index("hang")]
    assert stuck.verdict is Verdict.TIMEOUT
    assert stuck.budget_s == 0.5


async def test_an_answer_whose_timer_fires_is_a_timeout_and_the_rest_are_judged() -> None:
    checker = MathChecker(workers=1)
    try:
        await checker.start()
        budgets = {"9^{9^{9^9}}": 0.3}
        codes = [*RIGHT, "9^{9^{9^9}}", *WRONG]
        outcomes = await asyncio.gather(
            *(checker.check(_job(checker, c, budgets.get(c, 30.0))) for c in codes)
        )
        _assert_right_verdicts(codes, outcomes)
        assert outcomes[len(RIGHT)].verdict is Verdict.TIMEOUT
        assert checker.stats()["pools_recycled"] == 1  # the interrupted worker is replaced
    finally:
        await checker.aclose()


async def test_an_exception_on_one_answer_is_that_answer_s_error_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checker = MathChecker(workers=1)
    try:
        await checker.start()
        checker._work = helpers.explode_on_boom
        codes = [*RIGHT, "boom", *WRONG]
        outcomes = await _check_all(checker, codes)
        _assert_right_verdicts(codes, outcomes)
        assert outcomes[len(RIGHT)].reasons == ["math_verify_failed: RuntimeError: boom"]
    finally:
        await checker.aclose()


async def test_the_service_hands_a_request_s_answers_over_at_once() -> None:
    checker = MathChecker(workers=2)
    service = VerificationService(
        {"math": checker}, None, settings=VerifierSettings(checkers=["math"])
    )
    try:
        await checker.start()
        codes = [f"{i}*2" for i in range(32)]
        items = [
            ProofItem(id=str(i), code=c, checker="math", answer="24") for i, c in enumerate(codes)
        ]
        results = await service.verify(items)
        assert [r.outcome.verdict is Verdict.VALID for r in results] == [c == "12*2" for c in codes]
        # Four at a time (the service's limit for other checkers) would be 32 round trips.
        assert checker._round_trips <= 8
    finally:
        await service.aclose()
