"""The checker interface: everything the service needs from one kind of checking.

A new checker is one module with one subclass of :class:`Checker`, registered in
:mod:`verifier_service.checkers`. The service owns caching, de-duplication, queueing, timing and
metrics; a checker only turns a :class:`Job` into an :class:`~verifier_service.verdicts.Outcome`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from verifier_service.verdicts import Outcome

if TYPE_CHECKING:
    from verifier_service.settings import VerifierSettings

DEFAULT_AXIOMS: tuple[str, ...] = ("propext", "Classical.choice", "Quot.sound")


@dataclass(frozen=True)
class Policy:
    """What counts as verified, beyond the checker's own acceptance."""

    allow_sorry: bool = False
    axioms: tuple[str, ...] = DEFAULT_AXIOMS

    def key(self) -> dict[str, Any]:
        """A canonical form for cache keys: axiom order does not matter."""
        return {"allow_sorry": self.allow_sorry, "axioms": sorted(set(self.axioms))}


@dataclass(frozen=True)
class Job:
    """One proof, normalised and ready to check.

    ``header`` is already normalised by the checker's :meth:`Checker.prepare` (for Lean: canonical
    imports/options/opens; leading ``import`` lines of the code moved into it), so two jobs with the
    same header share warm workers and cache entries.
    """

    checker: str
    code: str
    header: str = ""
    statement: str | None = None
    answer: str | None = None
    timeout_s: float = 60.0
    policy: Policy = field(default_factory=Policy)
    #: Lines removed from the top of the submitted code (a header block moved into ``header``):
    #: outcomes are computed, and cached, for ``code``; :meth:`Checker.present` adds these lines
    #: back to their positions. Not part of the cache key, so a proof posted as one file and as
    #: header + code shares one entry.
    line_offset: int = 0

    def cache_material(self) -> dict[str, Any]:
        """Everything that decides the verdict except the time budget."""
        return {
            "checker": self.checker,
            "header": self.header,
            "code": self.code,
            "statement": self.statement,
            "answer": self.answer,
            "policy": self.policy.key(),
        }


class InvalidInput(ValueError):
    """A proof the checker cannot accept at all; reported as HTTP 422 naming ``field``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class Checker(ABC):
    """One kind of checking (Lean 4, final-answer equivalence, ...)."""

    name: ClassVar[str]

    def __init__(self, settings: VerifierSettings) -> None:  # noqa: B027 - the contract only
        """The registry builds every checker as ``Class(settings)``
        (:func:`verifier_service.checkers.build_checker`), third-party ones included."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Acquire resources (processes, warm pools). Called once at service start-up."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release resources. Called once at shutdown."""

    @property
    @abstractmethod
    def version(self) -> str:
        """A string that changes whenever verdicts could change (toolchain, library revisions)."""

    def readiness(self) -> dict[str, str]:
        """What is missing before this checker can serve; empty when ready."""
        return {}

    def stats(self) -> dict[str, float]:
        """Gauges for ``/metrics`` (pool size, busy workers, ...)."""
        return {}

    def counters(self) -> dict[str, float]:
        """Monotonic counters for ``/metrics``, by full metric name without ``_total``:
        ``{"sieve_lean_parse_mismatch": 3.0}`` is ``sieve_lean_parse_mismatch_total 3.0``."""
        return {}

    @abstractmethod
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
        """Validate and normalise one request item; raise :class:`InvalidInput` if impossible."""

    @abstractmethod
    async def check(self, job: Job) -> Outcome:
        """Check one job. Must not raise for a bad proof; system faults become ``error``."""

    def present(self, job: Job, outcome: Outcome) -> Outcome:
        """``outcome`` (fresh or cached) as this job's client should see it; must not change
        ``outcome`` itself, which the cache may hold."""
        return outcome
