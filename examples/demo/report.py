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
from trainer_client.evaluation.transitions import TransitionMatrix
from trainer_client.objectives import ALPHA_DPG, OBJECTIVES

__all__ = [
    "display_name",
    "file_name",
    "markdown_table",
    "plot_sweep",
    "print_sweep",
    "split_words",
]


def display_name(label: str) -> str:
    """How plots name a model: by its objective (``Dr. GRPO``, ``α-DPG α=0.25``, ``base``)."""
    if label.startswith("α="):
        return f"{ALPHA_DPG.title} {label}"
    objective = OBJECTIVES.get(label)
    return label if objective is None else objective.title


def file_name(label: str) -> str:
    return label.replace("=", "").replace("α", "alpha")


def split_words(split: str | None) -> str:
    return {"train": "training", "test": "held-out", "heldout": "held-out"}.get(
        split or "", split or ""
    )


def plot_sweep(summary: dict[str, Any], out_dir: Path, *, split: str) -> None:
    """Every figure of one split of the sweep (``heldout`` or ``train``), each model named by
    its objective."""
    out_dir.mkdir(parents=True, exist_ok=True)
    n = summary["eval_n"]
    ks = summary["ks"]
    models = {k: m[split] for k, m in summary["models"].items() if split in m}
    names = {label: display_name(label) for label in models}
    se = "± SE over seeds" if len(summary["seeds"]) > 1 else "± SE"
    targets = f"{len(summary['splits'][split]['targets'])} {split_words(split)} targets"
    plot_precision_coverage(
        {names[k]: (m["pass@1"], m[f"pass@{n}"]) for k, m in models.items()},
        out_dir / "precision_coverage.png",
        errors={names[k]: (m["pass@1_se"], m[f"pass@{n}_se"]) for k, m in models.items()},
        n=n,
        title=f"{targets}, {se}",
    )
    plot_precision_diversity(
        {
            names[k]: (m["pass@1"], m["distinct_correct"], m["pass@1_se"], m["distinct_correct_se"])
            for k, m in models.items()
        },
        out_dir / "precision_diversity.png",
        title=f"precision vs distinct correct answers ({targets}, {se})",
    )
    plot_pass_at_k(
        {
            names[k]: (ks, [m[f"pass@{x}"] for x in ks], [m[f"pass@{x}_se"] for x in ks])
            for k, m in models.items()
        },
        out_dir / "pass_at_k.png",
        title=f"pass@k on the {targets} ({se} band)",
    )
    pvalues = summary.get("pvalues", {}).get(split)
    if pvalues:
        rename = {
            key: {names[a]: {names[b]: p for b, p in row.items()} for a, row in matrix.items()}
            for key, matrix in pvalues.items()
        }
        plot_pvalues(
            rename["pass@1"], rename[f"pass@{n}"], out_dir / "pvalues.png", upper_name=f"pass@{n}"
        )
    transitions = summary.get("transitions", {}).get(split, {})
    matrices = {
        label: TransitionMatrix(counts=t["counts"], bins=tuple(t["bins"]))
        for label, t in transitions.items()
    }
    vmax = max((max(map(max, m.counts)) for m in matrices.values()), default=1)
    for label, matrix in matrices.items():
        plot_transitions(
            matrix,
            out_dir / f"transitions_{file_name(label)}.png",
            tuned=names[label],
            vmax=vmax,
        )


def print_sweep(summary: dict[str, Any], timings: dict[str, Any], root: Path) -> None:
    """One table per split: pass@k, distinct correct answers and the rare families' share."""
    n = summary["eval_n"]
    ks = summary["ks"]
    seeds = summary["seeds"]
    for split, info in summary["splits"].items():
        models = {k: m[split] for k, m in summary["models"].items() if split in m}
        if not models:
            continue
        frontier = set(summary.get("frontier", {}).get(split, []))
        table = Table(
            title=f"{split_words(split)} targets: {timings['total_s']:.0f} s wall, "
            f"{timings['cpu_s']:.0f} s CPU ({root})",
            caption=f"{len(info['targets'])} targets ({info['primes']} primes), {n} samples "
            f"each, {len(seeds)} seed(s); ± {summary['se']}; * on the pass@1–pass@{n} frontier",
        )
        columns = ["model", *(f"pass@{k}" for k in ks), "distinct correct", "rare families"]
        for column in columns:
            table.add_column(column, justify="left" if column == "model" else "right")
        for label, m in models.items():
            share = m["correct_family_share"]
            rare = 1.0 - share.get("product", 0.0) if sum(share.values()) else 0.0
            table.add_row(
                label + (" *" if label in frontier else ""),
                *(f"{m[f'pass@{k}']:.3f} ± {m[f'pass@{k}_se']:.3f}" for k in ks),
                f"{m['distinct_correct']:.2f} ± {m['distinct_correct_se']:.2f}",
                f"{rare:.3f}",
            )
        Console().print(table)


def markdown_table(summary: dict[str, Any], split: str = "heldout") -> str:
    """README's table of one split: pass@1, pass@16, pass@n and distinct correct answers per
    model, each ± its standard error (what ``summary["se"]`` says it is over)."""
    n = summary["eval_n"]
    ks = sorted({k for k in (1, 16, n) if k in summary["ks"]})
    lines = [
        "| model | " + " | ".join(f"pass@{k}" for k in ks) + " | distinct correct answers |",
        "| --- | " + " | ".join("---" for _ in ks) + " | --- |",
    ]
    for label, model in summary["models"].items():
        m = model.get(split)
        if m is None:
            continue
        name = label.replace("=", " = ") if label.startswith("α=") else display_name(label)
        cells = [f"{m[f'pass@{k}']:.3f} ± {m[f'pass@{k}_se']:.3f}" for k in ks]
        cells.append(f"{m['distinct_correct']:.2f} ± {m['distinct_correct_se']:.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
