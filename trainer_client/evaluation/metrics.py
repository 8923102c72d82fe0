"""Unbiased pass@k and bootstrap standard errors over problems.

With ``c`` of ``n`` samples verified, the unbiased estimate of the chance that at least one of
``k`` fresh samples is correct is ``1 − C(n−c, k) / C(n, k)`` (Chen et al. 2021). Binomials of
n = 256 overflow floats long before they are useful, so it is computed as the product
``1 − Π_{i=n−c+1}^{n} (1 − k/i)``, every factor of which lies in [0, 1].

For ``k > n`` (a problem left with fewer samples than asked, when some verifications failed for
system reasons) the estimate is 1.0 as soon as one sample is verified (``c ≥ 1``: k draws would
include it) and 0.0 when none is: the problem stays in the mean, as in the paper, rather than
turning the mean into NaN or silently dropping a solved problem.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

__all__ = ["bootstrap_se", "pass_at_k", "pass_at_k_curve", "pass_at_k_matrix"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with ``c`` verified out of ``n`` samples.

    ``k > n`` gives 1.0 if ``c ≥ 1`` else 0.0 (see the module docstring).
    """
    _check_counts(n, c, k)
    if c == 0:
        return 0.0
    if n - c < k:  # every k-subset holds a verified sample (this includes k > n)
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=np.float64)))


def pass_at_k_matrix(ns: Sequence[int], cs: Sequence[int], ks: Sequence[int]) -> np.ndarray:
    """Per-problem pass@k, shape ``[problems, len(ks)]``.

    A problem can end up with fewer than the requested samples when some verifications fail
    for system reasons (those are dropped from ``n``, not counted wrong). For ``k > n`` its
    entry is 1.0 when ``c ≥ 1`` and 0.0 when ``c = 0``, so every problem stays in the mean.
    A problem with ``n = 0`` (no verdict at all) is NaN: it says nothing either way.
    """
    ns_arr, cs_arr, ks_arr = _as_counts(ns, cs, ks)
    out = np.full((ns_arr.size, ks_arr.size), np.nan)
    for row, (n, c) in enumerate(zip(ns_arr.tolist(), cs_arr.tolist(), strict=True)):
        if n == 0:
            continue
        if c == 0:
            out[row] = 0.0
            continue
        out[row, ks_arr > n] = 1.0
        valid = ks_arr <= n
        kv = ks_arr[valid].astype(np.float64)
        # log Π (1 − k/i) for every k at once; factors with i ≤ k make the product 0.
        i = np.arange(n - c + 1, n + 1, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            factors = 1.0 - kv[:, None] / i[None, :]
            product = np.where(kv > n - c, 0.0, np.prod(np.clip(factors, 0.0, 1.0), axis=1))
        out[row, valid] = 1.0 - product
    return out


def pass_at_k_curve(ns: Sequence[int], cs: Sequence[int], ks: Sequence[int]) -> np.ndarray:
    """Mean pass@k over problems per k, shape ``[len(ks)]`` (problems with ``n = 0`` left out)."""
    matrix = pass_at_k_matrix(ns, cs, ks)
    with np.errstate(invalid="ignore"):
        counts = np.sum(~np.isnan(matrix), axis=0)
        sums = np.nansum(matrix, axis=0)
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def bootstrap_se(
    per_problem_values: Sequence[float] | np.ndarray, n_boot: int = 1000, seed: int = 0
) -> float | np.ndarray:
    """Bootstrap standard error of the mean over problems (resampling problems with replacement).

    ``per_problem_values`` is ``[P]`` (returns a float) or ``[P, K]`` (returns ``[K]``, one SE
    per column from the *same* resamples, so a whole pass@k curve gets coherent error bars).
    NaN entries are left out of each resampled mean. Resamples are drawn as multinomial counts,
    so the cost is one ``[n_boot, P] @ [P, K]`` product however large K is.
    """
    values = np.asarray(per_problem_values, dtype=np.float64)
    if values.ndim not in (1, 2):
        raise ValueError(f"per_problem_values: expected 1-D or 2-D, got shape {values.shape}")
    if values.shape[0] == 0:
        raise ValueError("per_problem_values: no problems")
    if n_boot < 2:
        raise ValueError(f"n_boot: expected at least 2, got {n_boot}")
    flat = values.reshape(values.shape[0], -1)
    present = ~np.isnan(flat)
    filled = np.where(present, flat, 0.0)
    rng = np.random.default_rng(seed)
    problems = flat.shape[0]
    weights = rng.multinomial(problems, np.full(problems, 1.0 / problems), size=n_boot)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
        means = (weights @ filled) / (weights @ present)
        se = np.nanstd(means, axis=0, ddof=1)
    return float(se[0]) if values.ndim == 1 else se


def _check_counts(n: int, c: int, k: int) -> None:
    for name, value in (("n", n), ("c", c), ("k", k)):
        if isinstance(value, bool) or int(value) != value:
            raise ValueError(f"{name}: expected an integer, got {value!r}")
    if n < 1:
        raise ValueError(f"n: expected at least one sample, got {n}")
    if not 0 <= c <= n:
        raise ValueError(f"c: expected 0 <= c <= n = {n}, got {c}")
    if k < 1:
        raise ValueError(f"k: expected k >= 1, got {k}")


def _as_counts(
    ns: Sequence[int], cs: Sequence[int], ks: Sequence[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ns_arr = np.asarray(ns, dtype=np.int64).reshape(-1)
    cs_arr = np.asarray(cs, dtype=np.int64).reshape(-1)
    ks_arr = np.asarray(ks, dtype=np.int64).reshape(-1)
    if ns_arr.size != cs_arr.size:
        raise ValueError(f"ns, cs: lengths differ ({ns_arr.size} vs {cs_arr.size})")
    if (ns_arr < 0).any() or (cs_arr < 0).any() or (cs_arr > ns_arr).any():
        raise ValueError("cs: expected 0 <= c <= n for every problem")
    if (ks_arr < 1).any():
        raise ValueError("ks: expected every k >= 1")
    return ns_arr, cs_arr, ks_arr
