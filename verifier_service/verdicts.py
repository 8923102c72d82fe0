"""What a check can conclude, independent of the checker that reached it.

A verdict separates *the proof is wrong* (``invalid``) from *the system failed* (``error``,
``timeout``): a client must never learn that a proof is wrong because a Lean process crashed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Verdict(str, Enum):
    VALID = "valid"
    INVALID = "invalid"
    TIMEOUT = "timeout"
    ERROR = "error"

    @property
    def cacheable(self) -> bool:
        """``error`` is never cached; ``timeout`` only together with its budget."""
        return self is not Verdict.ERROR


@dataclass
class Outcome:
    """The result of checking one proof, before the HTTP layer adds its id and cache flag."""

    verdict: Verdict
    reasons: list[str] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    axioms: list[str] | None = None
    time_s: float = 0.0
    #: For a ``timeout``: the budget (seconds) the proof had. A cached timeout only answers a
    #: later request whose budget is not larger.
    budget_s: float | None = None

    @classmethod
    def error(cls, reason: str, *, time_s: float = 0.0) -> Outcome:
        return cls(Verdict.ERROR, [reason], time_s=time_s)

    @classmethod
    def timeout(cls, budget_s: float, *, time_s: float = 0.0) -> Outcome:
        return cls(Verdict.TIMEOUT, ["timeout"], time_s=time_s, budget_s=budget_s)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "reasons": list(self.reasons),
            "messages": list(self.messages),
            "axioms": None if self.axioms is None else list(self.axioms),
            "time_s": self.time_s,
            "budget_s": self.budget_s,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outcome:
        return cls(
            verdict=Verdict(data["verdict"]),
            reasons=list(data.get("reasons", [])),
            messages=list(data.get("messages", [])),
            axioms=data.get("axioms"),
            time_s=float(data.get("time_s", 0.0)),
            budget_s=data.get("budget_s"),
        )
