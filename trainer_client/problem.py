"""A problem: one theorem to prove or question to answer, as every loader produces it.

Its own module so that the loaders (:mod:`trainer_client.data`, :mod:`trainer_client.leandojo`)
and everything downstream share it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CHECKERS", "DEFAULT_HEADER", "Problem"]

#: The header a plain-Mathlib checker uses for problems that do not bring their own: the paper's
#: (``maxHeartbeats 0``, as in miniF2F's own rows; the service bounds time by its own timeout).
DEFAULT_HEADER = (
    "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 0\n\n"
    "open BigOperators Real Nat Topology Rat\n"
)
#: The checkers a problem can name.
CHECKERS = ("lean4", "math")


@dataclass(frozen=True)
class Problem:
    """One theorem to prove (``checker="lean4"``) or question to answer (``checker="math"``)."""

    name: str
    #: lean4: the formal statement, normally ending in ``:= by``; math: the question.
    statement: str
    checker: str = "lean4"
    header: str = DEFAULT_HEADER
    #: Natural-language statement; rendered as a ``/-- ... -/`` doc comment in the prompt.
    informal: str = ""
    #: math: the reference answer.
    answer: str | None = None
    split: str | None = None

    def __post_init__(self) -> None:
        if self.checker not in CHECKERS:
            raise ValueError(f"checker: expected one of {CHECKERS}, got {self.checker!r}")
        if not self.statement.strip():
            raise ValueError(f"statement: empty for problem {self.name!r}")
        if self.checker == "math" and self.answer is None:
            raise ValueError(f"answer: required for math problem {self.name!r}")
