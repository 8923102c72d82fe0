"""Evaluation results: per-problem counts and the aggregates computed from them, as JSON.

A result file is the unit the plots and comparisons work on, so it keeps everything needed to
recompute them: each problem's ``n`` (samples that got a verdict) and ``c`` (verified), its
diversity under both definitions (:mod:`.diversity`: ``paper`` over all responses, ``verified``
over verified proofs), and how many verifications failed for system reasons (those are in
neither ``n`` nor ``c``: a crashed checker says nothing about the proof).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from trainer_client.evaluation.diversity import DIVERSITY_DEFINITIONS
from trainer_client.evaluation.metrics import bootstrap_se, pass_at_k, pass_at_k_matrix
from trainer_client.evaluation.transitions import BINS, difficulty_bin

__all__ = ["EvalResult", "ProblemResult", "report_ks"]

SCHEMA = "sieve.eval/1"


@dataclass
class ProblemResult:
    """One problem's outcome over its samples."""

    name: str
    n: int
    c: int
    errors: int = 0
    pass_at_k: dict[int, float] = field(default_factory=dict)
    #: The *verified* definition: over this problem's verified proofs (None without a verdict).
    diversity: dict[str, float] | None = None
    #: The *paper's* definition: over all this problem's responses, verified or not.
    paper_diversity: dict[str, float] | None = None

    @property
    def correct_fraction(self) -> float:
        return self.c / self.n if self.n else math.nan

    @property
    def difficulty(self) -> str | None:
        return difficulty_bin(self.correct_fraction) if self.n else None


@dataclass
class EvalResult:
    """A model's evaluation: problems, the pass@k curve with bootstrap SEs, and summaries."""

    label: str
    problems: list[ProblemResult]
    ks: list[int]
    #: None where the estimate is not finite (JSON has no NaN).
    pass_at_k: list[float | None]
    pass_at_k_se: list[float | None]
    config: dict[str, Any] = field(default_factory=dict)
    #: ``{"paper": {...}, "verified": {...}}``: each figure's mean under both definitions.
    diversity: dict[str, dict[str, float]] = field(default_factory=dict)
    transitions: dict[str, Any] | None = None

    # ---------------------------------------------------------------- construction

    @classmethod
    def from_problems(
        cls,
        label: str,
        problems: Iterable[ProblemResult],
        *,
        n: int | None = None,
        config: dict[str, Any] | None = None,
        n_boot: int = 1000,
        seed: int = 0,
    ) -> EvalResult:
        """Fill in per-problem pass@k and every aggregate from the problems' ``n`` and ``c``.

        The curve runs over every k from 1 to ``n`` (default: the largest problem ``n``).
        Problems with no verdict at all (every verification failed) are kept in the list but
        left out of the aggregates.
        """
        problems = list(problems)
        scored = [p for p in problems if p.n > 0]
        top = n if n is not None else max((p.n for p in scored), default=0)
        ks = list(range(1, top + 1))
        if scored and ks:
            matrix = pass_at_k_matrix([p.n for p in scored], [p.c for p in scored], ks)
            # No NaN to skip: the matrix is NaN only where n = 0, and those are not scored.
            curve = matrix.mean(axis=0)
            se = np.atleast_1d(bootstrap_se(matrix, n_boot=n_boot, seed=seed))
        else:
            curve = se = np.full(len(ks), np.nan)
        for problem in scored:
            problem.pass_at_k = {
                k: pass_at_k(problem.n, problem.c, k) for k in report_ks(problem.n)
            }
        return cls(
            label=label,
            problems=problems,
            ks=ks,
            pass_at_k=[_finite_or_none(v) for v in curve],
            pass_at_k_se=[_finite_or_none(v) for v in se],
            config=dict(config or {}),
            diversity=_mean_diversity(scored),
        )

    def per_problem(self, k: int) -> dict[str, float]:
        """pass@k of every scored problem by name (k > n gives 1.0 when c ≥ 1, else 0.0)."""
        return {p.name: pass_at_k(p.n, p.c, k) for p in self.problems if p.n > 0}

    @property
    def problem_names(self) -> set[str]:
        """Names of the problems with at least one verdict (the ones the aggregates use)."""
        return {p.name for p in self.problems if p.n > 0}

    # ---------------------------------------------------------------- summaries

    def at(self, k: int) -> tuple[float, float]:
        """(mean pass@k, bootstrap SE) over problems."""
        if k not in self.ks:
            raise ValueError(
                f"k: {k} is outside this result's curve (1..{max(self.ks, default=0)})"
            )
        i = self.ks.index(k)
        mean, se = self.pass_at_k[i], self.pass_at_k_se[i]
        return (math.nan if mean is None else mean, math.nan if se is None else se)

    @property
    def precision(self) -> tuple[float, float]:
        """pass@1 with its SE."""
        return self.at(1)

    @property
    def coverage(self) -> tuple[float, float]:
        """pass@n (the largest k evaluated) with its SE."""
        return self.at(self.ks[-1])

    @property
    def errors(self) -> int:
        return sum(p.errors for p in self.problems)

    def correct_fractions(self) -> dict[str, float]:
        return {p.name: p.correct_fraction for p in self.problems if p.n > 0}

    def difficulty_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(BINS, 0)
        for p in self.problems:
            if p.n > 0:
                counts[difficulty_bin(p.correct_fraction)] += 1
        return counts

    def summary(self) -> dict[str, Any]:
        p1, p1_se = self.precision
        pn, pn_se = self.coverage
        return {
            "label": self.label,
            "problems": len(self.problems),
            "problems_scored": sum(p.n > 0 for p in self.problems),
            "samples_with_error": self.errors,
            "pass@1": p1,
            "pass@1_se": p1_se,
            f"pass@{self.ks[-1] if self.ks else 0}": pn,
            f"pass@{self.ks[-1] if self.ks else 0}_se": pn_se,
            "difficulty": self.difficulty_counts(),
            "diversity": self.diversity,
            "diversity_definitions": {k: DIVERSITY_DEFINITIONS[k] for k in self.diversity},
        }

    # ---------------------------------------------------------------- JSON

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data = {"schema": SCHEMA, "summary": _jsonable(self.summary()), **data}
        for problem in data["problems"]:
            problem["pass_at_k"] = {str(k): v for k, v in problem["pass_at_k"].items()}
        return _jsonable(data)

    def to_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n")
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalResult:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"schema: expected {SCHEMA!r}, got {data.get('schema')!r}")
        problems = [
            ProblemResult(
                name=p["name"],
                n=int(p["n"]),
                c=int(p["c"]),
                errors=int(p.get("errors", 0)),
                pass_at_k={int(k): float(v) for k, v in p.get("pass_at_k", {}).items()},
                diversity=p.get("diversity"),
                paper_diversity=p.get("paper_diversity"),
            )
            for p in data["problems"]
        ]
        return cls(
            label=data["label"],
            problems=problems,
            ks=[int(k) for k in data["ks"]],
            pass_at_k=list(data["pass_at_k"]),
            pass_at_k_se=list(data["pass_at_k_se"]),
            config=data.get("config", {}),
            diversity=_nested_diversity(data.get("diversity") or {}),
            transitions=data.get("transitions"),
        )

    @classmethod
    def from_json(cls, path: str | Path) -> EvalResult:
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not a JSON evaluation result ({exc})") from exc
        return cls.from_dict(data)


def report_ks(n: int) -> list[int]:
    """The k stored per problem: powers of two below ``n``, and ``n`` itself."""
    ks, k = [], 1
    while k < n:
        ks.append(k)
        k *= 2
    return [*ks, n] if n >= 1 else []


def _mean_diversity(problems: Sequence[ProblemResult]) -> dict[str, dict[str, float]]:
    """Both definitions' means: ``paper`` over every scored problem's responses (a problem
    whose responses hold no tactic counts as zero diversity, as in the paper), ``verified`` over
    problems with at least one verified proof."""
    out: dict[str, dict[str, float]] = {}
    paper = [p.paper_diversity for p in problems if p.paper_diversity is not None]
    verified = [p.diversity for p in problems if p.diversity and p.diversity.get("proofs", 0) > 0]
    for name, rows in (("paper", paper), ("verified", verified)):
        if rows:
            keys = [k for k in rows[0] if k != "proofs"]
            out[name] = {k: float(np.mean([row[k] for row in rows])) for k in keys}
    return out


def _nested_diversity(data: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Read both layouts: ``{"paper": …, "verified": …}``, or an older file's flat figures
    (which were the verified definition)."""
    if data and all(isinstance(v, int | float) for v in data.values()):
        return {"verified": dict(data)}
    return {k: dict(v) for k, v in data.items() if isinstance(v, dict)}


def _finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _jsonable(value: Any) -> Any:
    """NaN/inf become null so the file stays strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    return value
