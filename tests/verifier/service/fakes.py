"""Small stand-ins for checkers and caches, so service and API tests control every outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from verifier_service.checkers.base import Checker, InvalidInput, Job, Policy
from verifier_service.settings import VerifierSettings
from verifier_service.verdicts import Outcome, Verdict


class FakeChecker(Checker):
    """Decides by the code's text: ``boom`` raises, ``sorry`` is invalid, ``loop`` times out.

    Counts every ``check`` call per code, so tests can tell a cache hit or a de-duplicated
    proof from a second check.
    """

    name = "fake"

    def __init__(
        self,
        settings: VerifierSettings | None = None,
        *,
        name: str = "fake",
        delay: float = 0.0,
        version: str = "fake-1",
    ) -> None:
        self.settings = settings
        self.name = name
        self.delay = delay
        self._version = version
        self.calls: list[str] = []
        self.prepared = 0
        self.running = 0
        self.max_running = 0
        self.ready = True
        self.started = False
        self.closed = False
        self.release: asyncio.Event | None = None

    @property
    def version(self) -> str:
        return self._version

    async def start(self) -> None:
        self.started = True

    async def aclose(self) -> None:
        self.closed = True

    def readiness(self) -> dict[str, str]:
        return {} if self.ready else {"pool": "warming up"}

    def stats(self) -> dict[str, float]:
        return {"pool_size": 2, "busy_workers": self.running}

    def prepare(
        self,
        *,
        code: str,
        header: str | None,
        statement: str | None,
        answer: str | None,
        timeout_s: float,
        policy: Policy,
    ) -> Job:
        self.prepared += 1
        if not code.strip():
            raise InvalidInput("code", "code is empty")
        if statement is not None and not code.startswith(statement):
            raise InvalidInput("statement", "code does not begin with the statement")
        return Job(
            checker=self.name,
            code=code,
            header=(header or "").strip(),
            statement=statement,
            answer=answer,
            timeout_s=timeout_s,
            policy=policy,
        )

    async def check(self, job: Job) -> Outcome:
        self.calls.append(job.code)
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            if self.release is not None:
                await self.release.wait()
            if self.delay:
                await asyncio.sleep(self.delay)
            if "boom" in job.code:
                raise RuntimeError("worker crashed")
            if "loop" in job.code:
                return Outcome.timeout(job.timeout_s)
            if "sorry" in job.code and not job.policy.allow_sorry:
                return Outcome(
                    Verdict.INVALID,
                    ["sorry"],
                    [{"severity": "warning", "pos": {"line": 1, "column": 8}, "data": "sorry"}],
                    axioms=["sorryAx"],
                )
            if "wrong" in job.code:
                return Outcome(
                    Verdict.INVALID,
                    ["lean_error"],
                    [{"severity": "error", "pos": {"line": 1, "column": 0}, "data": "nope"}],
                )
            if "cheat" in job.code:
                return Outcome(Verdict.INVALID, ["forbidden_axiom:cheat"], [], axioms=["cheat"])
            if "flaky" in job.code:
                return Outcome.error("worker_died")
            return Outcome(Verdict.VALID, [], [], axioms=["propext"])
        finally:
            self.running -= 1


class BrokenCache:
    """A cache whose every call raises, as a misbehaving backend might."""

    backend = "broken"
    healthy = False

    async def get_many(self, keys: Sequence[str]) -> list[Outcome | None]:
        raise ConnectionError("cache down")

    async def set_many(self, items: Sequence[tuple[str, Outcome]]) -> None:
        raise ConnectionError("cache down")

    def readiness(self) -> dict[str, str]:
        return {"cache": "down"}

    async def aclose(self) -> None:
        return None
