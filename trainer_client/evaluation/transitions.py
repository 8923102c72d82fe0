"""Difficulty bins and the base → tuned transition matrix.

Binning each problem by its verified fraction under the base model and again under the tuned
one shows *where* training moved the needle: a method can raise average pass@1 by making easy
problems easier while losing hard ones (the coverage collapse the method notes warn about).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "BINS",
    "BIN_THRESHOLDS",
    "TransitionMatrix",
    "difficulty_bin",
    "difficulty_bins",
    "transition_matrix",
]

BINS: tuple[str, ...] = ("easy", "medium", "hard", "unsolved")
# The lower bounds of easy and medium on the verified fraction c/n: difficulty_bin applies
# them and BIN_THRESHOLDS prints them, so the labels cannot drift from the rule.
_EASY_AT, _MEDIUM_AT = 0.9, 0.3
#: Each bin's rule on the verified fraction c/n, as plots print it.
BIN_THRESHOLDS: dict[str, str] = {
    "easy": f"≥ {_EASY_AT:g}",
    "medium": f"≥ {_MEDIUM_AT:g}",
    "hard": "> 0",
    "unsolved": "= 0",
}


def difficulty_bin(correct_fraction: float) -> str:
    """``easy`` ≥ 0.9, ``medium`` ≥ 0.3, ``hard`` > 0, ``unsolved`` = 0."""
    if not 0.0 <= correct_fraction <= 1.0:
        raise ValueError(f"correct_fraction: expected a value in [0, 1], got {correct_fraction!r}")
    if correct_fraction >= _EASY_AT:
        return "easy"
    if correct_fraction >= _MEDIUM_AT:
        return "medium"
    if correct_fraction > 0.0:
        return "hard"
    return "unsolved"


def difficulty_bins(correct_fractions: Sequence[float]) -> list[str]:
    """:func:`difficulty_bin` of every problem."""
    return [difficulty_bin(f) for f in correct_fractions]


@dataclass(frozen=True)
class TransitionMatrix:
    """``counts[i][j]``: problems in bin ``BINS[i]`` under the base and ``BINS[j]`` after tuning."""

    counts: list[list[int]]
    bins: tuple[str, ...] = BINS
    missing: int = 0  # problems present in only one of the two runs

    @property
    def problems(self) -> int:
        return sum(map(sum, self.counts))

    def row_fractions(self) -> list[list[float]]:
        """Each row normalised: where the base's easy/medium/... problems ended up."""
        return [[c / sum(row) if sum(row) else 0.0 for c in row] for row in self.counts]

    def to_dict(self) -> dict:
        return {"bins": list(self.bins), "counts": self.counts, "missing": self.missing}


def transition_matrix(base: Mapping[str, float], tuned: Mapping[str, float]) -> TransitionMatrix:
    """Cross-tabulate problem difficulty before and after tuning (problems matched by name).

    ``base`` and ``tuned`` map a problem's name to its verified fraction ``c / n``.
    """
    shared = sorted(set(base) & set(tuned))
    index = {name: i for i, name in enumerate(BINS)}
    counts = [[0] * len(BINS) for _ in BINS]
    for name in shared:
        counts[index[difficulty_bin(base[name])]][index[difficulty_bin(tuned[name])]] += 1
    missing = len(set(base) ^ set(tuned))
    return TransitionMatrix(counts=counts, missing=missing)
