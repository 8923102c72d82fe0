"""PNG figures: pass@k curves, the precision–coverage and precision–diversity planes, the
difficulty transitions.

Figures are drawn with matplotlib's object API (``Figure`` + the Agg canvas), never through
``pyplot``: no global state, no display needed, safe in worker processes and tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from trainer_client.evaluation.pareto import pareto_frontier
from trainer_client.evaluation.transitions import TransitionMatrix

__all__ = [
    "plot_pass_at_k",
    "plot_precision_coverage",
    "plot_precision_diversity",
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
    ax.set_ylim(0.0, 1.0)
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
) -> Path:
    """Runs in the (pass@1, pass@n) plane with their Pareto frontier (upper-right hull).

    ``points`` maps a label to ``(pass@1, pass@n)``; ``errors`` optionally to their SEs.
    """
    if not points:
        raise ValueError("points: nothing to plot")
    labels = list(points)
    xy = [(float(points[label][0]), float(points[label][1])) for label in labels]
    fig = Figure(figsize=(5.6, 4.8), layout="constrained")
    ax = fig.subplots()
    for number, (label, (x, y)) in enumerate(zip(labels, xy, strict=True)):
        xerr = yerr = None
        if errors and label in errors:
            xerr, yerr = errors[label]
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="o", capsize=2, label=label)
        # alternate above/below, so labels of nearby runs do not print over each other
        offset = (4, 4) if number % 2 == 0 else (4, -12)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=offset, fontsize="small")
    frontier = pareto_frontier(xy)
    if frontier:
        fx, fy = zip(*(xy[i] for i in frontier), strict=True)
        ax.plot(fx, fy, "k--", linewidth=1.0, label="Pareto frontier")
    ax.set_xlabel("precision (pass@1)")
    ax.set_ylabel(f"coverage (pass@{n})" if n else "coverage (pass@n)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    ax.set_title(title or "precision vs coverage")
    return _save(fig, path)


def plot_precision_diversity(
    points: Mapping[str, tuple[float, float, float | None]], path: str | Path
) -> Path:
    """pass@1 against the number of distinct correct answers kept per problem.

    ``points`` maps a run's label to ``(pass@1, distinct correct, pass@1 SE or None)``; the run
    labelled ``base`` is drawn as a square. Where pass@n saturates (the CPU demo's task), how many
    *different* correct answers a model still produces is where the coverage end of the α family
    shows.
    """
    if not points:
        raise ValueError("points: nothing to plot")
    fig = Figure(figsize=(5.6, 4.4), layout="constrained")
    ax = fig.subplots()
    for label, (x, y, xerr) in points.items():
        ax.errorbar(x, y, xerr=xerr, fmt="s" if label == "base" else "o", capsize=2, label=label)
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize="small")
    ax.set_xlabel("precision (pass@1)")
    ax.set_ylabel("distinct correct answers per problem")
    ax.grid(True, alpha=0.3)
    ax.set_title("α trades precision for diversity")
    return _save(fig, path)


def plot_transitions(
    matrix: TransitionMatrix, path: str | Path, *, base: str = "base", tuned: str = "tuned"
) -> Path:
    """Heat map of problem counts moving between difficulty bins."""
    counts = np.asarray(matrix.counts)
    fig = Figure(figsize=(4.8, 4.2), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(counts, cmap="Blues")
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            dark = counts[i, j] > counts.max() / 2
            ax.text(
                j,
                i,
                str(counts[i, j]),
                ha="center",
                va="center",
                color="white" if dark else "black",
            )
    ax.set_xticks(range(len(matrix.bins)), matrix.bins)
    ax.set_yticks(range(len(matrix.bins)), matrix.bins)
    ax.set_xlabel(tuned)
    ax.set_ylabel(base)
    fig.colorbar(image, ax=ax, shrink=0.8)
    ax.set_title("difficulty transitions")
    return _save(fig, path)


def _floats(values: Sequence[float | None]) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in values], dtype=float)


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path
