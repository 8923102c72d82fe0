"""The demo's figures: per-target scores combined over models and seeds with the library's
estimators (bootstrap SE over targets for one seed, SE over seeds for several)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from examples.demo.scores import combine, score_samples
from trainer_client.evaluation import EvalResult, ProblemResult, bootstrap_se, pass_at_k

N = 8
KS = [1, 4, 8]


def scored(label: str, counts: dict[str, int], rows=()):
    problems = [ProblemResult(name=name, n=N, c=c) for name, c in counts.items()]
    return score_samples(EvalResult.from_problems(label, problems, n=N), list(rows))


def test_one_seed_is_the_mean_over_targets_with_a_bootstrap_se():
    base = scored("base", {"a": 1, "b": 0, "c": 4})
    tuned = scored("tuned", {"a": 8, "b": 0, "c": 8})
    out = combine([{"base": base, "tuned": tuned}], KS)
    figures = out["models"]["base"]
    expected = [pass_at_k(N, c, 4) for c in (1, 0, 4)]
    assert figures["pass@4"] == pytest.approx(np.mean(expected))
    assert figures["pass@4_se"] == pytest.approx(bootstrap_se(expected))
    assert "pass@4_seeds" not in figures
    assert set(out["pvalues"]) == {"pass@1", "pass@8"}
    assert out["pvalues"]["pass@1"]["base"]["tuned"] == out["pvalues"]["pass@1"]["tuned"]["base"]
    assert out["frontier"] == ["tuned"]  # it dominates the base on both axes
    # a: hard -> easy, b: unsolved -> unsolved, c: medium -> easy
    counts = out["transitions"]["tuned"]["counts"]
    assert counts[2][0] == 1 and counts[3][3] == 1 and counts[1][0] == 1


def test_several_seeds_give_the_mean_and_se_over_seeds():
    seeds = [
        {"base": scored("base", {"a": 2, "b": 2}), "run": scored("run", {"a": 8, "b": 0})},
        {"base": scored("base", {"a": 4, "b": 4}), "run": scored("run", {"a": 8, "b": 8})},
    ]
    out = combine(seeds, KS)
    run = out["models"]["run"]
    assert run["pass@1_seeds"] == pytest.approx([0.5, 1.0])
    assert run["pass@1"] == pytest.approx(0.75)
    assert run["pass@1_se"] == pytest.approx(np.std([0.5, 1.0], ddof=1) / math.sqrt(2))
    # transitions: counts over every (seed, target)
    assert sum(map(sum, out["transitions"]["run"]["counts"])) == 4


def test_distinct_correct_and_family_shares():
    rows = [
        {"problem": "a", "completion": "3*8", "verdict": "valid"},
        {"problem": "a", "completion": " 3*8", "verdict": "valid"},
        {"problem": "a", "completion": "20+4", "verdict": "valid"},
        {"problem": "a", "completion": "5*5", "verdict": "invalid"},
        {"problem": "b", "completion": "x", "verdict": "invalid"},
    ]
    score = scored("m", {"a": 3, "b": 0}, rows)
    assert score.distinct == {"a": 2, "b": 0}
    out = combine([{"m": score}], KS)["models"]["m"]
    assert out["distinct_correct"] == pytest.approx(1.0)
    assert out["family_share"]["product"] == pytest.approx(3 / 5)
    assert out["family_share"]["other"] == pytest.approx(1 / 5)
    assert out["correct_family_share"] == pytest.approx(
        {"product": 2 / 3, "sum": 1 / 3, "difference": 0.0, "affine": 0.0, "other": 0.0}
    )


def test_models_scored_on_different_targets_are_refused():
    with pytest.raises(ValueError, match="other targets"):
        combine([{"a": scored("a", {"x": 1}), "b": scored("b", {"y": 1})}], KS)
