"""How the demo's sweep is shown: model names, plots and the closing table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from trainer_client.evaluation.plots import (
    plot_pass_at_k,
    plot_precision_coverage,
    plot_precision_diversity,
    plot_pvalues,
    plot_transitions,
)
from trainer_client.evaluation.transitions import transition_matrix
from trainer_client.objectives import ALPHA_DPG, OBJECTIVES

__all__ = ["display_name", "file_name", "plot_sweep", "print_sweep", "split_words"]


def display_name(label: str) -> str:
    """How plots name a model: by its objective (``Dr. GRPO``, ``α-DPG α=0.25``, ``base``)."""
    if label.startswith("α="):
        return f"{ALPHA_DPG.title} {label}"
    objective = OBJECTIVES.get(label)
    return label if objective is None else objective.title


def file_name(label: str) -> str:
    return label.replace("=", "").replace("α", "alpha")


def split_words(split: str | None) -> str:
    return {"train": "training", "test": "held-out"}.get(split or "", split or "")


def plot_sweep(
    results: dict[str, Any], summary: dict[str, Any], out_dir: Path, *, n: int, split: str | None
) -> None:
    """Every figure of the sweep, each model named by its objective."""
    out_dir.mkdir(parents=True, exist_ok=True)
    models = summary["models"]
    names = {label: display_name(label) for label in results}
    targets = f"{summary['eval_problems']} {split_words(split)} targets"
    plot_precision_coverage(
        {names[k]: (m["pass@1"], m[f"pass@{n}"]) for k, m in models.items()},
        out_dir / "precision_coverage.png",
        errors={names[k]: (m["pass@1_se"], m[f"pass@{n}_se"]) for k, m in models.items()},
        n=n,
        title=f"precision vs coverage ({targets}, ± SE)",
    )
    plot_precision_diversity(
        {
            names[k]: (m["pass@1"], m["distinct_correct"], m["pass@1_se"], m["distinct_correct_se"])
            for k, m in models.items()
        },
        out_dir / "precision_diversity.png",
        title=f"precision vs distinct correct answers ({targets}, ± SE)",
    )
    plot_pass_at_k(
        {names[k]: (r.ks, r.pass_at_k, r.pass_at_k_se) for k, r in results.items()},
        out_dir / "pass_at_k.png",
        title=f"pass@k on the {targets} (± SE band)",
    )
    if "pvalues" in summary:
        pvalues = summary["pvalues"]
        rename = {
            key: {names[a]: {names[b]: p for b, p in row.items()} for a, row in matrix.items()}
            for key, matrix in pvalues.items()
        }
        plot_pvalues(
            rename["pass@1"], rename[f"pass@{n}"], out_dir / "pvalues.png", upper_name=f"pass@{n}"
        )
    base = results.get("base")
    if base is None:
        return
    matrices = {
        label: transition_matrix(base.correct_fractions(), result.correct_fractions())
        for label, result in results.items()
        if label != "base"
    }
    vmax = max((max(map(max, m.counts)) for m in matrices.values()), default=1)
    for label, matrix in matrices.items():
        plot_transitions(
            matrix,
            out_dir / f"transitions_{file_name(label)}.png",
            tuned=names[label],
            vmax=vmax,
        )


def print_sweep(summary: dict[str, Any], root: Path) -> None:
    models = summary.get("models", {})
    if not models:
        return
    n = summary["eval_n"]
    t = summary["timings"]
    table = Table(
        title=f"sweep: {t['total_s']:.0f} s wall, {t['cpu_s']:.0f} s CPU ({root})",
        caption=f"{summary['eval_problems']} {split_words(summary['eval_split'])} targets, "
        f"{n} samples each; ± bootstrap SE over targets",
    )
    for column in ("model", "pass@1", f"pass@{n}", "distinct correct / target"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for label, m in models.items():
        table.add_row(
            label,
            f"{m['pass@1']:.3f} ± {m['pass@1_se']:.3f}",
            f"{m[f'pass@{n}']:.3f} ± {m[f'pass@{n}_se']:.3f}",
            f"{m['distinct_correct']:.2f} ± {m['distinct_correct_se']:.2f}",
        )
    Console().print(table)
