"""The paired bootstrap: exact small cases, pairing, symmetry and the shared resamples."""

import numpy as np
import pytest

import trainer_client.evaluation.significance as significance
from trainer_client.evaluation import paired_bootstrap_pvalues


def reference(per_problem, n_resamples, seed):
    """The definition written out: one index array for all runs, a loop over pairs."""
    names = list(per_problem)
    values = {k: np.asarray(v, dtype=float) for k, v in per_problem.items()}
    size = len(values[names[0]])
    index = np.random.default_rng(seed).integers(0, size, size=(n_resamples, size))
    means = {k: v[index].mean(axis=1) for k, v in values.items()}
    out = {a: {} for a in names}
    for a in names:
        for b in names:
            if a != b:
                delta = means[a] - means[b]
                out[a][b] = float(min(1.0, 2 * min(np.mean(delta <= 0), np.mean(delta >= 0))))
    return out


def test_two_problems_by_hand():
    # Δ = share of draws that picked problem 0; Δ <= 0 only when both draws miss it: P = 1/4.
    p = paired_bootstrap_pvalues({"a": [1.0, 0.0], "b": [0.0, 0.0]}, n_resamples=20000)
    assert p["a"]["b"] == pytest.approx(0.5, abs=0.02)
    assert p["b"]["a"] == p["a"]["b"]
    assert set(p) == {"a", "b"} and "a" not in p["a"]


def test_identical_runs_give_one_and_a_constant_shift_gives_zero():
    rng = np.random.default_rng(1)
    a = rng.random(30)
    p = paired_bootstrap_pvalues({"a": a, "same": a.copy(), "shifted": a + 0.01}, n_resamples=500)
    assert p["a"]["same"] == 1.0
    # paired: the shift survives every resample, so Δ > 0 always (an unpaired test would not
    # see a 0.01 shift against problem-to-problem spread of ~0.3)
    assert p["shifted"]["a"] == 0.0


def test_matches_the_definition_with_the_same_seed(monkeypatch):
    rng = np.random.default_rng(2)
    runs = {"x": rng.random(17), "y": rng.random(17) * 0.9, "z": rng.random(17)}
    expected = reference(runs, 3000, seed=7)
    assert paired_bootstrap_pvalues(runs, n_resamples=3000, seed=7) == expected
    # chunking the resamples (large problem sets) draws the very same indices
    monkeypatch.setattr(significance, "_CHUNK_FLOATS", 100)
    assert paired_bootstrap_pvalues(runs, n_resamples=3000, seed=7) == expected
    assert paired_bootstrap_pvalues(runs, n_resamples=3000, seed=8) != expected


@pytest.mark.parametrize(
    ("runs", "message"),
    [
        ({"a": [1.0]}, "at least two runs"),
        ({"a": [1.0, 0.0], "b": [1.0]}, "one value per problem"),
        ({"a": [], "b": []}, "no problems"),
        ({"a": [1.0, float("nan")], "b": [1.0, 0.0]}, "finite"),
    ],
)
def test_bad_input_names_the_problem(runs, message):
    with pytest.raises(ValueError, match=message):
        paired_bootstrap_pvalues(runs)
    with pytest.raises(ValueError, match="n_resamples"):
        paired_bootstrap_pvalues({"a": [1.0], "b": [0.0]}, n_resamples=0)
