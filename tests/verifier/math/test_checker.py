"""The math checker through its worker pool: verdicts, budgets and faults."""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from verifier_service.checkers.base import Checker, InvalidInput, Job, Policy
from verifier_service.checkers.math import STRICT_RULES, MathChecker, judge
from verifier_service.verdicts import Verdict

from . import helpers


def _job(checker: MathChecker, code: str, answer: str = "24", timeout_s: float = 30.0) -> Job:
    return checker.prepare(
        code=code, header=None, statement=None, answer=answer, timeout_s=timeout_s, policy=Policy()
    )


def test_identity(math_checker: MathChecker) -> None:
    assert isinstance(math_checker, Checker)
    assert math_checker.name == "math"
    # The strict rules' revision is part of the version: verdicts cached under other rules
    # (a cache key includes the version) are never served.
    assert math_checker.version == (
        f"math-verify {importlib.metadata.version('math-verify')}; strict {STRICT_RULES}"
    )
    assert math_checker.readiness() == {}


@pytest.mark.parametrize(
    ("answer", "code", "field"),
    [(None, "3*8", "answer"), ("  ", "3*8", "answer"), ("24", "", "code"), ("24", " \n", "code")],
)
def test_prepare_rejects_missing_input(
    math_checker: MathChecker, answer: str | None, code: str, field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        math_checker.prepare(
            code=code, header=None, statement=None, answer=answer, timeout_s=5, policy=Policy()
        )
    assert caught.value.field == field


@pytest.mark.parametrize(
    "answer", ["???", "not a number at all", "24 or 25", "\\boxed{24", "(1, 2", "\\frobnicate{3}"]
)
def test_prepare_rejects_a_reference_it_cannot_read(math_checker: MathChecker, answer: str) -> None:
    # The client's mistake, refused (HTTP 422 naming "answer") before any check runs; it used
    # to be an ``error`` verdict for every answer checked against it.
    with pytest.raises(InvalidInput) as caught:
        _job(math_checker, "24", answer)
    assert caught.value.field == "answer"
    assert "cannot read this reference answer" in caught.value.message


def test_prepare_rejects_a_non_positive_budget(math_checker: MathChecker) -> None:
    with pytest.raises(InvalidInput) as caught:
        _job(math_checker, "3*8", timeout_s=0)
    assert caught.value.field == "timeout_s"


def test_prepare_drops_what_does_not_matter_for_math(math_checker: MathChecker) -> None:
    plain = _job(math_checker, " 3*8 ", " 24")
    decorated = math_checker.prepare(
        code="3*8",
        header="import Mathlib",
        statement="theorem t : True",
        answer="24",
        timeout_s=30.0,
        policy=Policy(allow_sorry=True, axioms=("propext",)),
    )
    assert plain == decorated
    assert (plain.checker, plain.code, plain.answer, plain.header) == ("math", "3*8", "24", "")


@pytest.mark.parametrize(
    ("code", "answer", "verdict", "reasons"),
    [
        ("3*8", "24", Verdict.VALID, []),
        ("(2+4)*4", "24", Verdict.VALID, []),
        ("3*7", "24", Verdict.INVALID, ["wrong_answer"]),
        ("3*", "24", Verdict.INVALID, ["unparsable_answer"]),
        ("\\frac{1}{2}", "0.5", Verdict.VALID, []),
    ],
)
async def test_check_verdicts(
    math_checker: MathChecker, code: str, answer: str, verdict: Verdict, reasons: list[str]
) -> None:
    outcome = await math_checker.check(_job(math_checker, code, answer))
    assert outcome.verdict is verdict
    assert outcome.reasons == reasons
    assert outcome.time_s > 0


async def test_valid_echoes_what_was_compared(math_checker: MathChecker) -> None:
    outcome = await math_checker.check(_job(math_checker, "(2+4)*4"))
    texts = [message["data"] for message in outcome.messages]
    assert texts == ["answer parsed as (2 + 4)*4", "reference parsed as 24"]


async def test_a_batch_runs_concurrently_and_in_order(math_checker: MathChecker) -> None:
    codes = [f"{i}*2" for i in range(40)]
    outcomes = await asyncio.gather(*(math_checker.check(_job(math_checker, c)) for c in codes))
    verdicts = [outcome.verdict for outcome in outcomes]
    valid = [c for c, v in zip(codes, verdicts, strict=True) if v is Verdict.VALID]
    assert valid == ["12*2"]
    assert math_checker.stats()["busy"] == 0


async def test_budget_overrun_is_a_timeout_and_the_checker_recovers() -> None:
    checker = MathChecker(workers=1)
    try:
        outcome = await checker.check(_job(checker, "9^{9^{9^9}}", timeout_s=0.3))
        assert outcome.verdict is Verdict.TIMEOUT
        assert outcome.budget_s == 0.3
        # the interrupted worker is replaced; the next check is judged normally
        assert (await checker.check(_job(checker, "3*8"))).verdict is Verdict.VALID
        assert checker.stats()["pools_recycled"] == 1
    finally:
        await checker.aclose()


async def test_a_worker_stuck_past_the_timer_is_killed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("verifier_service.checkers.math.STUCK_GRACE_S", 0.5)
    checker = MathChecker(workers=1)
    await checker.start()  # warm-up must not eat the short deadline
    try:
        checker._work = helpers.hang
        pid_file = tmp_path / "pid"
        outcome = await checker.check(_job(checker, str(pid_file), timeout_s=0.5))
        assert outcome.verdict is Verdict.TIMEOUT
        assert outcome.budget_s == 0.5
        pid = int(pid_file.read_text())
        deadline = time.monotonic() + 10
        while not helpers.process_gone(pid):
            assert time.monotonic() < deadline, "the stuck worker was never killed"
            await asyncio.sleep(0.05)
        checker._work = judge
        assert (await checker.check(_job(checker, "3*8"))).verdict is Verdict.VALID
    finally:
        await checker.aclose()


async def test_a_dying_worker_is_an_error_not_invalid() -> None:
    checker = MathChecker(workers=1)
    try:
        checker._work = helpers.die
        outcome = await checker.check(_job(checker, "3*8"))
        assert outcome.verdict is Verdict.ERROR
        assert outcome.reasons[0].startswith("math_verify_failed: BrokenProcessPool")
        assert checker.stats()["pools_recycled"] == 2  # retried once on fresh workers
    finally:
        await checker.aclose()


async def test_an_internal_exception_is_an_error() -> None:
    checker = MathChecker(workers=1)
    try:
        checker._work = helpers.explode
        outcome = await checker.check(_job(checker, "3*8"))
        assert outcome.verdict is Verdict.ERROR
        assert outcome.reasons == ["math_verify_failed: RuntimeError: comparison blew up"]
    finally:
        await checker.aclose()


_DYING_SERVICE = """
import asyncio, os
from verifier_service.checkers.math import MathChecker

async def main():
    checker = MathChecker(workers=1)
    await checker.start()
    pid = await asyncio.get_running_loop().run_in_executor(checker._current_pool(), os.getpid)
    print(pid, flush=True)
    os.kill(os.getpid(), 9)

asyncio.run(main())
"""


def test_workers_exit_when_the_service_is_killed() -> None:
    service = subprocess.Popen([sys.executable, "-c", _DYING_SERVICE], stdout=subprocess.PIPE)
    assert service.stdout is not None
    worker_pid = int(service.stdout.readline())
    assert service.wait(timeout=60) == -signal.SIGKILL
    try:
        deadline = time.monotonic() + 10
        while not helpers.process_gone(worker_pid):
            assert time.monotonic() < deadline, "a worker outlived the service that started it"
            time.sleep(0.05)
    finally:
        if not helpers.process_gone(worker_pid):
            os.kill(worker_pid, signal.SIGKILL)
