"""A proof as a client sends it, and the answer it gets back: the service's own wire types.

They are plain dataclasses, not the API's pydantic models, so that the library (the ``check``
command, the trainer's local verifier, benchmarks) needs no HTTP layer. The API's validated
model satisfies :class:`ProofLike` as it is, so a request is never copied field by field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from verifier_service.checkers.base import Policy
from verifier_service.verdicts import Outcome

__all__ = ["ProofItem", "ProofLike", "ProofResult", "policy_from"]


class ProofLike(Protocol):
    """Anything with a proof's fields: a :class:`ProofItem`, or the API's validated model."""

    @property
    def id(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def checker(self) -> str: ...
    @property
    def header(self) -> str | None: ...
    @property
    def statement(self) -> str | None: ...
    @property
    def answer(self) -> str | None: ...
    @property
    def timeout_s(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class ProofItem:
    """One proof as a client sent it, before its checker normalised it."""

    id: str
    code: str
    checker: str = "lean4"
    header: str | None = None
    statement: str | None = None
    answer: str | None = None
    #: ``None``: the deployment's default budget.
    timeout_s: float | None = None


@dataclass(slots=True)
class ProofResult:
    """The answer for one :class:`ProofItem`."""

    id: str
    outcome: Outcome
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The ``/verify`` wire form (``budget_s`` is an internal detail of the cache)."""
        o = self.outcome
        return {
            "id": self.id,
            "verdict": o.verdict.value,
            "reasons": o.reasons,
            "messages": o.messages,
            "axioms": o.axioms,
            "cached": self.cached,
            "time_s": o.time_s,
        }


def policy_from(allow_sorry: bool, axioms: Sequence[str] | None) -> Policy:
    """A :class:`Policy` from wire fields; ``None`` axioms means the default trusted set."""
    if axioms is None:
        return Policy(allow_sorry=allow_sorry)
    return Policy(allow_sorry=allow_sorry, axioms=tuple(axioms))
