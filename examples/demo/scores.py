"""What the demo measures of one model on one split, and how seeds and models are combined.

:class:`Scored` is one model's evaluation on one split for one seed: the
:class:`~trainer_client.evaluation.EvalResult` (pass@k per target from ``n`` samples, the unbiased
estimator), the distinct correct answers per target, and how often each answer family was drawn.
:func:`combine` turns the scores of every seed into the figures of ``sweep.json``: with one seed
each figure is the mean over targets ± its bootstrap standard error over targets; with several,
the mean over seeds ± the standard error over seeds (the per-seed values are kept beside it).
p-values, the frontier and the transition matrices always pair models target by target (each
target's figure averaged over seeds first): every statistic here comes from
:mod:`trainer_client.evaluation`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from examples.demo.task import FAMILIES, answer_family
from trainer_client.evaluation import (
    BINS,
    EvalResult,
    bootstrap_se,
    paired_bootstrap_pvalues,
    pareto_frontier,
    transition_matrix,
)

__all__ = ["Scored", "combine", "score_samples"]


@dataclass
class Scored:
    """One model on one split for one seed."""

    result: EvalResult
    #: Target name -> number of different verified completions.
    distinct: dict[str, int]
    #: Answer family -> samples drawn of it (``other`` too), and the verified ones alone.
    families: Counter[str] = field(default_factory=Counter)
    correct_families: Counter[str] = field(default_factory=Counter)

    @property
    def targets(self) -> list[str]:
        return sorted(self.result.problem_names)

    def per_target(self, k: int) -> np.ndarray:
        values = self.result.per_problem(k)
        return np.array([values[name] for name in self.targets])

    def distinct_per_target(self) -> np.ndarray:
        return np.array([float(self.distinct.get(name, 0)) for name in self.targets])

    def fractions(self) -> dict[str, float]:
        return {p.name: p.correct_fraction for p in self.result.problems if p.n > 0}


def score_samples(result: EvalResult, rows: Sequence[Mapping[str, Any]]) -> Scored:
    """A :class:`Scored` from an evaluation and its samples (``problem``, ``completion``,
    ``verdict`` per row, as :func:`~trainer_client.evaluation.runner.evaluate_problems` writes)."""
    seen: dict[str, set[str]] = {name: set() for name in result.problem_names}
    families: Counter[str] = Counter()
    correct: Counter[str] = Counter()
    for row in rows:
        text = str(row["completion"]).strip()
        family = answer_family(text)
        families[family] += 1
        if row["verdict"] == "valid":
            correct[family] += 1
            seen.setdefault(str(row["problem"]), set()).add(text)
    distinct = {name: len(texts) for name, texts in seen.items()}
    return Scored(result=result, distinct=distinct, families=families, correct_families=correct)


def combine(
    scores: Sequence[Mapping[str, Scored]], ks: Sequence[int], *, n_boot: int = 1000
) -> dict[str, Any]:
    """The figures of one split over every seed: ``scores[seed][model]``.

    Returns ``{"models": {model: figures}, "pvalues": …, "frontier": […], "transitions": …}``;
    see the module docstring for what the standard errors are over.
    """
    models = list(scores[0])
    targets = scores[0][models[0]].targets
    for seed in scores:
        for label, scored in seed.items():
            if scored.targets != targets:
                raise ValueError(f"{label}: evaluated on other targets than {models[0]}")
    n = max(ks)
    many = len(scores) > 1
    figures: dict[str, Any] = {}
    averaged: dict[str, dict[str, np.ndarray]] = {}
    for label in models:
        per_seed = {
            **{f"pass@{k}": [s[label].per_target(k) for s in scores] for k in ks},
            "distinct_correct": [s[label].distinct_per_target() for s in scores],
        }
        out: dict[str, Any] = {}
        averaged[label] = {}
        for name, vectors in per_seed.items():
            stacked = np.stack(vectors)  # [seeds, targets]
            averaged[label][name] = stacked.mean(axis=0)
            means = stacked.mean(axis=1)
            out[name] = float(means.mean())
            if many:
                out[f"{name}_se"] = float(means.std(ddof=1) / math.sqrt(len(means)))
                out[f"{name}_seeds"] = [float(m) for m in means]
            else:
                out[f"{name}_se"] = float(bootstrap_se(stacked[0], n_boot=n_boot))
        out["family_share"] = _shares(sum((s[label].families for s in scores), Counter()))
        out["correct_family_share"] = _shares(
            sum((s[label].correct_families for s in scores), Counter())
        )
        figures[label] = out
    summary: dict[str, Any] = {"models": figures}
    if len(models) >= 2:
        summary["pvalues"] = {
            key: paired_bootstrap_pvalues(
                {label: averaged[label][key].tolist() for label in models}
            )
            for key in ("pass@1", f"pass@{n}")
        }
    points = [(figures[m]["pass@1"], figures[m][f"pass@{n}"]) for m in models]
    summary["frontier"] = [models[i] for i in pareto_frontier(points)]
    if "base" in models:
        summary["transitions"] = {
            label: _transitions([s["base"] for s in scores], [s[label] for s in scores])
            for label in models
            if label != "base"
        }
    return summary


def _shares(counts: Counter[str]) -> dict[str, float]:
    total = sum(counts.values())
    names = [*FAMILIES, "other"]
    return {name: (counts[name] / total if total else 0.0) for name in names}


def _transitions(base: Sequence[Scored], tuned: Sequence[Scored]) -> dict[str, Any]:
    """The base → tuned difficulty matrix, counts summed over seeds (each seed's base against
    that seed's run)."""
    total = [[0] * len(BINS) for _ in BINS]
    for b, t in zip(base, tuned, strict=True):
        matrix = transition_matrix(b.fractions(), t.fractions())
        for i, row in enumerate(matrix.counts):
            for j, count in enumerate(row):
                total[i][j] += count
    return {"bins": list(BINS), "counts": total}
