"""PNG figures: pass@k curves, the precision–coverage and precision–diversity planes, the
difficulty transitions and the paired-bootstrap p-value matrix.

Figures are drawn with matplotlib's object API (``Figure`` + the Agg canvas), never through
``pyplot``: no global state, no display needed, safe in worker processes and tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from trainer_client.evaluation.pareto import PARETO_RULES, pareto_by_rule
from trainer_client.evaluation.transitions import BIN_THRESHOLDS, TransitionMatrix

__all__ = [
    "plot_pass_at_k",
    "plot_precision_coverage",
    "plot_precision_diversity",
    "plot_pvalues",
    "plot_transitions",
]

Curve = tuple[Sequence[int], Sequence[float | None], Sequence[float | None] | None]


def plot_pass_at_k(curves: Mapping[str, Curve], path: str | Path, *, title: str = "") -> Path:
    """pass@k against k (log-x) for several runs, with a ±1 SE band where given.

    ``curves`` maps a run's label to ``(ks, means, ses)``; ``ses`` may be ``None``.
    """
    if not curves:
        raise ValueError("curves: nothing to plot")
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.subplots()
    for label, (ks, means, ses) in curves.items():
        k = np.asarray(ks, dtype=float)
        m = _floats(means)
        (line,) = ax.plot(k, m, label=label, linewidth=1.6)
        if ses is not None:
            s = _floats(ses)
            ax.fill_between(k, m - s, m + s, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k (samples)")
    ax.set_ylabel("pass@k")
    ax.set_ylim(0.0, 1.02)  # room for curves that reach 1, without a tick above it
    ax.set_yticks(np.linspace(0.0, 1.0, 6))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    ax.set_title(title or "pass@k")
    return _save(fig, path)


def plot_precision_coverage(
    points: Mapping[str, tuple[float, float]],
    path: str | Path,
    *,
    errors: Mapping[str, tuple[float, float]] | None = None,
    n: int | None = None,
    title: str = "",
    rule: str = "concave",
) -> Path:
    """Runs in the (pass@1, pass@n) plane with their Pareto frontier.

    ``points`` maps a label to ``(pass@1, pass@n)``; ``errors`` optionally to their SEs (drawn
    on both axes). ``rule`` picks the frontier (:mod:`.pareto`: ``"concave"`` or ``"paper"``)
    and the legend names it. A frontier of one point is drawn as a ring, not as an empty line.
    """
    if not points:
        raise ValueError("points: nothing to plot")
    labels = list(points)
    xy = [(float(points[label][0]), float(points[label][1])) for label in labels]
    fig = Figure(figsize=(7.4, 4.8), layout="constrained")
    ax = fig.subplots()
    for label, (x, y) in zip(labels, xy, strict=True):
        xerr = yerr = None
        if errors and label in errors:
            xerr, yerr = errors[label]
        marker = "s" if label == "base" else "o"
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt=marker, capsize=2, label=label)
    frontier = pareto_by_rule(xy, rule)
    legend = f"Pareto frontier ({PARETO_RULES[rule]})"
    if len(frontier) == 1:
        (fx, fy) = xy[frontier[0]]
        ax.plot([fx], [fy], "o", markersize=14, markerfacecolor="none", color="k", label=legend)
    elif frontier:
        xs, ys = zip(*(xy[i] for i in frontier), strict=True)
        ax.plot(xs, ys, "k--", linewidth=1.0, label=legend)
    ax.set_xlabel("precision (pass@1)")
    ax.set_ylabel(f"coverage (pass@{n})" if n else "coverage (pass@n)")
    _probability_axis(ax, "x", [x for x, _ in xy])
    _probability_axis(ax, "y", [y for _, y in xy])
    ax.grid(True, alpha=0.3)
    # outside the axes: points of a saturated task crowd the corner a legend would cover
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small")
    ax.set_title(title or "precision vs coverage")
    return _save(fig, path)


def plot_precision_diversity(
    points: Mapping[str, tuple[float, ...]], path: str | Path, *, title: str = ""
) -> Path:
    """pass@1 against the number of distinct correct answers kept per problem.

    ``points`` maps a run's label to ``(pass@1, distinct correct, pass@1 SE, distinct SE)``
    (the SEs may be ``None`` or left off); both error bars are drawn. The run labelled ``base``
    is drawn as a square. How many *different* correct answers a model still produces is where
    the coverage end of the α family shows even when pass@n saturates.
    """
    if not points:
        raise ValueError("points: nothing to plot")
    fig = Figure(figsize=(7.4, 4.4), layout="constrained")
    ax = fig.subplots()
    for label, (x, y, *ses) in points.items():
        xerr, yerr = ([*ses, None, None])[:2]
        ax.errorbar(
            x, y, xerr=xerr, yerr=yerr, fmt="s" if label == "base" else "o", capsize=2, label=label
        )
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small")
    ax.set_xlabel("precision (pass@1)")
    ax.set_ylabel("distinct correct answers per problem")
    ax.grid(True, alpha=0.3)
    _probability_axis(ax, "x", [v[0] for v in points.values()])
    ax.set_title(title or "precision vs distinct correct answers")
    return _save(fig, path)


def plot_transitions(
    matrix: TransitionMatrix,
    path: str | Path,
    *,
    base: str = "base",
    tuned: str = "tuned",
    vmax: float | None = None,
) -> Path:
    """Heat map of problem counts moving between difficulty bins.

    Tick labels carry each bin's threshold on the verified fraction (``easy (≥ 0.9)``, ...).
    Pass the same ``vmax`` to every matrix of a sweep so their colours compare.
    """
    counts = np.asarray(matrix.counts)
    top = float(vmax if vmax is not None else max(1, counts.max()))
    fig = Figure(figsize=(5.2, 4.4), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(counts, cmap="Blues", vmin=0, vmax=top)
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            dark = counts[i, j] > top / 2
            ax.text(
                j,
                i,
                str(counts[i, j]),
                ha="center",
                va="center",
                color="white" if dark else "black",
            )
    names = [f"{b}\n({BIN_THRESHOLDS[b]})" if b in BIN_THRESHOLDS else b for b in matrix.bins]
    ax.set_xticks(range(len(matrix.bins)), names, fontsize="small")
    ax.set_yticks(range(len(matrix.bins)), names, fontsize="small")
    ax.set_xlabel(f"{tuned} (verified fraction)")
    ax.set_ylabel(f"{base} (verified fraction)")
    fig.colorbar(image, ax=ax, shrink=0.8, label="problems")
    ax.set_title(f"difficulty transitions: {base} → {tuned}")
    return _save(fig, path)


def plot_pvalues(
    lower: Mapping[str, Mapping[str, float]],
    upper: Mapping[str, Mapping[str, float]],
    path: str | Path,
    *,
    lower_name: str = "pass@1",
    upper_name: str = "pass@n",
    title: str = "",
) -> Path:
    """The paper's p-value matrix: ``lower`` (pass@1) below the diagonal, ``upper`` above.

    Both are ``{a: {b: p}}`` from :func:`~trainer_client.evaluation.paired_bootstrap_pvalues`
    over the same runs; cell (row a, column b) shows ``lower[a][b]`` when a is below b's
    diagonal position and ``upper[a][b]`` above it. Cells with p < 0.05 are bold.
    """
    names = list(lower)
    if len(names) < 2 or set(names) != set(upper):
        raise ValueError("lower, upper: need the same two or more runs")
    size = len(names)
    grid = np.full((size, size), np.nan)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if i > j:
                grid[i, j] = lower[a][b]
            elif i < j:
                grid[i, j] = upper[a][b]
    fig = Figure(figsize=(1.2 * size + 2.4, 1.0 * size + 1.8), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(grid, cmap="viridis", vmin=0.0, vmax=1.0)  # small p: dark
    for i in range(size):
        for j in range(size):
            if i == j:
                continue
            p = grid[i, j]
            ax.text(
                j,
                i,
                "<0.001" if p < 0.001 else f"{p:.3f}",
                ha="center",
                va="center",
                fontsize="small",
                fontweight="bold" if p < 0.05 else "normal",
                color="white" if p < 0.6 else "black",
            )
    ax.set_xticks(range(size), names, rotation=30, ha="right")
    ax.set_yticks(range(size), names)
    fig.colorbar(image, ax=ax, shrink=0.8, label="p (paired bootstrap)")
    ax.set_title(title or f"p-values: {lower_name} below the diagonal, {upper_name} above")
    return _save(fig, path)


def _probability_axis(ax: Axes, axis: str, values: Sequence[float]) -> None:
    """Limits that frame the points with a margin, and no tick outside [0, 1]."""
    finite = [v for v in values if v is not None and np.isfinite(v)]
    if not finite:
        return
    lo, hi = min(finite), max(finite)
    pad = max(0.03, 0.08 * (hi - lo))
    limits = (max(-0.02, lo - pad), min(1.02, hi + pad))
    (ax.set_xlim if axis == "x" else ax.set_ylim)(*limits)
    getter = ax.get_xticks if axis == "x" else ax.get_yticks
    ticks = [t for t in getter() if -1e-9 <= t <= 1 + 1e-9 and limits[0] <= t <= limits[1]]
    (ax.set_xticks if axis == "x" else ax.set_yticks)(ticks)


def _floats(values: Sequence[float | None]) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in values], dtype=float)


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path
