"""Comparing evaluated runs: same problems, and paired-bootstrap p-values between them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trainer_client.evaluation.results import EvalResult
from trainer_client.evaluation.significance import paired_bootstrap_pvalues

__all__ = ["DifferentProblems", "check_same_problems", "pvalue_matrices", "unique_label"]


class DifferentProblems(ValueError):
    """Results to be compared were scored on different problem sets."""


def check_same_problems(runs: Sequence[EvalResult], names: Sequence[str] | None = None) -> None:
    """Raise :class:`DifferentProblems` unless every run scored the same problems.

    Comparisons pair runs problem by problem (transitions, paired bootstrap); a silent
    intersection would compare means over different sets and hide the mismatch.
    """
    names = list(names or [r.label for r in runs])
    reference = runs[0].problem_names
    for run, name in zip(runs[1:], names[1:], strict=True):
        mine = run.problem_names
        if mine != reference:
            shared = len(mine & reference)
            only_first = sorted(reference - mine)[:3]
            only_mine = sorted(mine - reference)[:3]
            raise DifferentProblems(
                f"{names[0]} and {name} were scored on different problems: {len(reference)} vs "
                f"{len(mine)}, {shared} shared (only in the first: {only_first or '-'}; only in "
                f"the second: {only_mine or '-'}). Evaluate both on the same data (same --data, "
                "--split and --limit)."
            )


def pvalue_matrices(
    runs: Sequence[EvalResult], *, n_resamples: int = 10000, seed: int = 0
) -> dict[str, Any]:
    """Paired-bootstrap p-values of pass@1 and pass@n between runs, keyed ``pass@1``, ``pass@{n}``.

    ``n`` is the smallest n any run evaluated (coverage is compared at the same k for all); the
    problem order is the first run's. Runs must share their problems (:func:`check_same_problems`).
    """
    check_same_problems(runs)
    labels = [unique_label(r.label, i, runs) for i, r in enumerate(runs)]
    order = sorted(runs[0].problem_names)
    n = min(r.ks[-1] for r in runs)
    out: dict[str, object] = {}
    for k in (1, n):
        vectors = {}
        for label, r in zip(labels, runs, strict=True):
            values = r.per_problem(k)
            vectors[label] = [values[name] for name in order]
        out[f"pass@{k}"] = paired_bootstrap_pvalues(vectors, n_resamples=n_resamples, seed=seed)
    out["n"] = n
    out["problems"] = len(order)
    out["n_resamples"] = n_resamples
    return out


def unique_label(label: str, index: int, runs: Sequence[EvalResult]) -> str:
    """Disambiguate runs that share a label (legend entries and plot keys must differ)."""
    same = [i for i, r in enumerate(runs) if r.label == label]
    return label if len(same) == 1 else f"{label} ({same.index(index) + 1})"
