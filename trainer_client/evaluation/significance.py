"""Paired bootstrap significance between runs evaluated on the same problems.

The paper's test (Kruszewski et al., and the authors' released notebook): resample the problems
with replacement, 10,000 times, with the *same* resampled problem indices for every run, and
look at the distribution of the difference of the two runs' means. The two-sided p-value is
``p = min(1, 2 · min(P(Δ ≤ 0), P(Δ ≥ 0)))``. Pairing (one resample shared by both runs) is
what makes the test sensitive: the per-problem difficulty, which dominates the variance of
each run's mean, cancels in the difference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["paired_bootstrap_pvalues"]

#: Resampled means are computed in chunks of about this many floats, so 10,000 resamples of
#: thousands of problems never build one huge index array.
_CHUNK_FLOATS = 4_000_000


def paired_bootstrap_pvalues(
    per_problem: Mapping[str, Sequence[float]], n_resamples: int = 10000, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Two-sided paired-bootstrap p-values between every pair of runs.

    ``per_problem`` maps a run's name to one value per problem (pass@1, say), every vector in
    the same problem order. Each of the ``n_resamples`` resamples draws problem indices
    uniformly with replacement (``numpy.random.default_rng(seed)``) and is shared by all runs;
    for runs ``a`` and ``b`` the statistic is ``Δ = mean_a − mean_b`` over the resample, and

        ``p[a][b] = min(1, 2 · min(P(Δ ≤ 0), P(Δ ≥ 0)))``

    (symmetric: ``p[a][b] == p[b][a]``). The result is ``{a: {b: p}}`` for every ordered pair of
    different runs; a run is not compared with itself. Identical vectors give ``p = 1``.
    """
    names = list(per_problem)
    if len(names) < 2:
        raise ValueError(f"per_problem: need at least two runs to compare, got {len(names)}")
    if isinstance(n_resamples, bool) or int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples: expected a positive integer, got {n_resamples!r}")
    vectors = []
    for name in names:
        vector = np.asarray(per_problem[name], dtype=np.float64)
        if vector.ndim != 1:
            raise ValueError(f"per_problem[{name!r}]: expected one value per problem")
        if not np.isfinite(vector).all():
            raise ValueError(f"per_problem[{name!r}]: values must be finite (no NaN)")
        vectors.append(vector)
    lengths = {name: v.size for name, v in zip(names, vectors, strict=True)}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"per_problem: every run needs one value per problem, got {lengths}")
    problems = vectors[0].size
    if problems == 0:
        raise ValueError("per_problem: no problems")
    values = np.stack(vectors)  # [runs, problems]

    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_FLOATS // (problems * len(names)))
    means = np.empty((int(n_resamples), len(names)))
    for start in range(0, int(n_resamples), chunk):
        stop = min(start + chunk, int(n_resamples))
        index = rng.integers(0, problems, size=(stop - start, problems))
        means[start:stop] = values[:, index].mean(axis=2).T

    out: dict[str, dict[str, float]] = {name: {} for name in names}
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            b = names[j]
            delta = means[:, i] - means[:, j]
            p = min(1.0, 2.0 * min(float(np.mean(delta <= 0)), float(np.mean(delta >= 0))))
            out[a][b] = out[b][a] = p
    return out
