"""pass@k against brute-force enumeration, exact big-integer binomials, and the bootstrap."""

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from trainer_client.evaluation import (
    bootstrap_se,
    pass_at_k,
    pass_at_k_curve,
    pass_at_k_matrix,
)


def brute_force(n: int, c: int, k: int) -> float:
    """Fraction of k-subsets of n samples (the first c correct) that hold a correct one."""
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(i < c for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 9))
def test_matches_enumeration_of_subsets(n):
    ks = list(range(1, n + 1))
    for c in range(n + 1):
        expected = [brute_force(n, c, k) for k in ks]
        got = [pass_at_k(n, c, k) for k in ks]
        assert got == pytest.approx(expected, abs=1e-12)
        assert pass_at_k_matrix([n], [c], ks)[0] == pytest.approx(expected, abs=1e-12)


def test_pass_at_one_is_the_verified_fraction():
    assert pass_at_k(256, 37, 1) == pytest.approx(37 / 256)


@pytest.mark.parametrize(
    ("n", "c", "k"), [(256, 1, 128), (256, 17, 64), (1024, 3, 500), (256, 128, 100)]
)
def test_stable_where_binomials_overflow_floats(n, c, k):
    exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
    assert math.comb(n, k) > 1e38  # far beyond float32, and for most cases float64 too
    assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-12, abs=1e-15)
    assert pass_at_k_matrix([n], [c], [k])[0, 0] == pytest.approx(float(exact), rel=1e-12)


def test_curve_is_the_mean_over_all_problems_k_beyond_n_included():
    ns, cs = [4, 4, 2, 2], [1, 0, 1, 0]
    curve = pass_at_k_curve(ns, cs, [1, 2, 3])
    assert curve[0] == pytest.approx((1 / 4 + 0 + 1 / 2 + 0) / 4)
    assert curve[1] == pytest.approx((brute_force(4, 1, 2) + 0 + 1 + 0) / 4)
    # k = 3 > n = 2: a problem with c >= 1 counts as solved (1.0), one with c = 0 as 0.0;
    # neither is dropped from the mean.
    assert curve[2] == pytest.approx((brute_force(4, 1, 3) + 0 + 1 + 0) / 4)
    assert pass_at_k_matrix(ns, cs, [3])[:, 0].tolist() == pytest.approx(
        [brute_force(4, 1, 3), 0.0, 1.0, 0.0]
    )
    assert pass_at_k(2, 1, 3) == 1.0
    assert pass_at_k(2, 0, 300) == 0.0
    # a problem with no verdict at all says nothing: NaN, left out
    assert np.isnan(pass_at_k_matrix([0], [0], [1])[0, 0])
    assert pass_at_k_curve([0, 4], [0, 2], [1])[0] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("args", "field"),
    [((0, 0, 1), "n"), ((4, 5, 1), "c"), ((4, 1, 0), "k"), ((4, 1, -1), "k"), ((4, 1.5, 1), "c")],
)
def test_bad_counts_name_the_field(args, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        pass_at_k(*args)


def test_bootstrap_se_matches_the_standard_error_of_the_mean():
    rng = np.random.default_rng(0)
    values = rng.random(200)
    analytic = values.std(ddof=0) / math.sqrt(values.size)  # the bootstrap's plug-in SE
    assert bootstrap_se(values, n_boot=20_000, seed=1) == pytest.approx(analytic, rel=0.03)
    assert bootstrap_se(np.full(50, 0.3), n_boot=200, seed=0) == pytest.approx(0.0, abs=1e-12)


def test_bootstrap_se_columns_share_resamples_and_seed():
    rng = np.random.default_rng(2)
    values = rng.random((40, 3))
    se = bootstrap_se(values, n_boot=300, seed=5)
    assert se.shape == (3,)
    for j in range(3):
        assert se[j] == pytest.approx(bootstrap_se(values[:, j], n_boot=300, seed=5))
    assert bootstrap_se(values[:, 0], n_boot=300, seed=5) == bootstrap_se(
        values[:, 0], n_boot=300, seed=5
    )
    assert bootstrap_se(values[:, 0], n_boot=300, seed=6) != bootstrap_se(
        values[:, 0], n_boot=300, seed=5
    )


def test_bootstrap_se_rejects_empty_input():
    with pytest.raises(ValueError, match="per_problem_values"):
        bootstrap_se([])
