"""``sieve-eval``: evaluate a checkpoint against the verifier, or compare finished evaluations.

    sieve-eval --checkpoint runs/alpha0.25/step_200 \\
        --data data/mff-lwb-unseen-200.parquet --n 256
    sieve-eval --checkpoint ... --data ... --base-results eval/base/results.json \\
        --compare eval/grpo/results.json --compare eval/alpha0.5/results.json
    sieve-eval compare eval/*/results.json --out eval/compare

An evaluation writes ``results.json`` (per-problem n, c, pass@k and diversity under both
definitions; the pass@k curve with bootstrap SEs; precision, coverage, difficulty counts) and
``pass_at_k.png``; with ``--base-results`` also the difficulty transition matrix and
``transitions.png``; with ``--compare`` (or the ``compare`` command) ``precision_coverage.png``
with the Pareto frontier, and the paired-bootstrap p-values of pass@1 and pass@n
(``pvalues.json``, ``pvalues.png``: pass@1 below the diagonal, pass@n above, as the paper draws
them).

Mistakes get a message and a non-zero exit, never a traceback: an unreachable verifier (exit 1,
before any sampling), a run directory instead of a ``step_N`` checkpoint, a prompt longer than
the model's context, results on different problem sets (exit 2).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from trainer_client.evaluation.comparison import (
    DifferentProblems,
    check_same_problems,
    pvalue_matrices,
    unique_label,
)
from trainer_client.evaluation.diversity import DIVERSITY_DEFINITIONS
from trainer_client.evaluation.pareto import PARETO_RULES
from trainer_client.evaluation.plots import (
    plot_pass_at_k,
    plot_precision_coverage,
    plot_pvalues,
    plot_transitions,
)
from trainer_client.evaluation.results import EvalResult
from trainer_client.evaluation.transitions import transition_matrix

__all__ = [
    "DifferentProblems",
    "app",
    "check_same_problems",
    "cli",
    "pvalue_matrices",
    "write_comparison",
]

app = typer.Typer(
    name="sieve-eval",
    help="Evaluate a prover checkpoint with n verified samples per problem (pass@k, diversity).",
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)

DEFAULT_VERIFIER_URL = "http://localhost:8000"


@app.callback(invoke_without_command=True)
def evaluate(
    ctx: typer.Context,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="A save_pretrained directory (model + tokenizer).", file_okay=False),
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="Problems: .jsonl, .parquet or LeanDojo .json.")
    ] = None,
    n: Annotated[int, typer.Option(min=1, help="Samples per problem.")] = 256,
    temperature: Annotated[float, typer.Option(min=0.0)] = 1.0,
    top_p: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.99,
    max_new_tokens: Annotated[int, typer.Option(min=1)] = 1024,
    verifier_url: Annotated[
        str, typer.Option(envvar="SIEVE_VERIFIER_URL", help="Verifier base URL.")
    ] = DEFAULT_VERIFIER_URL,
    api_key: Annotated[
        str | None, typer.Option(envvar="SIEVE_API_KEY", help="Bearer token for the verifier.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output directory (default: eval/<run>-<step>).")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Evaluate the first N problems.")] = None,
    split: Annotated[str | None, typer.Option(help="Keep only problems of this split.")] = None,
    base_results: Annotated[
        Path | None, typer.Option(help="The base model's results.json, for the transition matrix.")
    ] = None,
    compare: Annotated[
        list[Path] | None,
        typer.Option(
            metavar="RESULTS_JSON",
            help="Other results.json to plot against (repeat the flag, or comma-separate).",
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Sequences per sampler call.")] = 64,
    timeout_s: Annotated[float, typer.Option(min=0.1, help="Verifier time per proof.")] = 120.0,
    label: Annotated[str | None, typer.Option(help="Run name in plots and tables.")] = None,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    device: Annotated[
        str | None, typer.Option(help="torch device (default: cuda if available, else cpu).")
    ] = None,
    save_samples: Annotated[
        bool, typer.Option(help="Also write every completion and verdict to samples.jsonl.")
    ] = False,
    pareto_rule: Annotated[
        str, typer.Option(help="Pareto frontier rule: concave (default) or paper.")
    ] = "concave",
) -> None:
    """Sample, verify and score a checkpoint (the default command)."""
    if ctx.invoked_subcommand is not None:
        return
    if checkpoint is None or data is None:
        missing = " and ".join(
            f"--{name}" for name, v in (("checkpoint", checkpoint), ("data", data)) if v is None
        )
        raise typer.BadParameter(f"{missing} required (or use `sieve-eval compare`)")
    _check_checkpoint(checkpoint)
    if not data.exists():
        raise typer.BadParameter(f"{data} does not exist", param_hint="--data")
    _check_rule(pareto_rule)
    base = _load(base_results, "--base-results") if base_results else None
    others = [_load(p, "--compare") for p in _split_paths(compare or [])]
    _require_reachable(verifier_url)

    label = label or _run_label(checkpoint)
    out = out or Path("eval") / label
    result = _run(
        checkpoint=checkpoint,
        data=data,
        n=n,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        verifier_url=verifier_url,
        api_key=api_key,
        out=out,
        limit=limit,
        split=split,
        batch_size=batch_size,
        timeout_s=timeout_s,
        label=label,
        seed=seed,
        device=device,
        save_samples=save_samples,
    )
    if result.errors and not any(p.n for p in result.problems):
        result.to_json(out / "results.json")
        console.print(
            f"[bold red]no sample got a verdict[/bold red] ({result.errors} verifier errors): is "
            f"the verifier at {verifier_url} up? Nothing was scored; {out}/results.json keeps "
            "the error counts."
        )
        raise typer.Exit(code=1)
    if base is not None:
        _same_problems_or_exit([base, result], ["--base-results", "this evaluation"])
        matrix = transition_matrix(base.correct_fractions(), result.correct_fractions())
        result.transitions = {"base": base.label, **matrix.to_dict()}
        plot_transitions(matrix, out / "transitions.png", base=base.label, tuned=result.label)
    if others:
        _same_problems_or_exit(
            [result, *others],
            ["this evaluation", *(f"--compare #{i + 1}" for i in range(len(others)))],
        )
    result.to_json(out / "results.json")
    runs = [r for r in (base, *others) if r is not None]
    write_comparison([result, *runs], out, pareto=bool(others), rule=pareto_rule)
    _print_summary([result, *runs])
    console.print(f"[bold]wrote[/bold] {out}/")


@app.command("compare")
def compare_command(
    results: Annotated[list[Path], typer.Argument(help="results.json files of finished runs.")],
    out: Annotated[Path, typer.Option(help="Where to write the plots.")] = Path("eval/compare"),
    pareto_rule: Annotated[
        str, typer.Option(help="Pareto frontier rule: concave (default) or paper.")
    ] = "concave",
    n_resamples: Annotated[
        int, typer.Option(min=1, help="Paired-bootstrap resamples for the p-values.")
    ] = 10000,
) -> None:
    """Plot pass@k, the precision–coverage frontier and the p-value matrices of finished runs."""
    _check_rule(pareto_rule)
    runs = [_load(p, "RESULTS") for p in results]
    _same_problems_or_exit(runs, [str(p) for p in results])
    write_comparison(runs, out, pareto=True, rule=pareto_rule, n_resamples=n_resamples)
    _print_summary(runs)
    console.print(f"[bold]wrote[/bold] {out}/")


def write_comparison(
    runs: Sequence[EvalResult],
    out: Path,
    *,
    pareto: bool = True,
    rule: str = "concave",
    n_resamples: int = 10000,
) -> list[Path]:
    """``pass_at_k.png`` for all runs; when ``pareto``, ``precision_coverage.png`` and, for two or
    more runs on the same problems, ``pvalues.json`` and ``pvalues.png``."""
    written = [
        plot_pass_at_k(
            {
                unique_label(r.label, i, runs): (r.ks, r.pass_at_k, r.pass_at_k_se)
                for i, r in enumerate(runs)
            },
            out / "pass_at_k.png",
        )
    ]
    if pareto:
        points, errors = {}, {}
        for i, r in enumerate(runs):
            name = unique_label(r.label, i, runs)
            (p1, p1_se), (pn, pn_se) = r.precision, r.coverage
            points[name], errors[name] = (p1, pn), (p1_se, pn_se)
        n = max(r.ks[-1] for r in runs)
        written.append(
            plot_precision_coverage(
                points, out / "precision_coverage.png", errors=errors, n=n, rule=rule
            )
        )
        if len(runs) >= 2:
            matrices = pvalue_matrices(runs, n_resamples=n_resamples)
            k = matrices["n"]
            (out / "pvalues.json").write_text(json.dumps(matrices, indent=1, ensure_ascii=False))
            written.append(out / "pvalues.json")
            written.append(
                plot_pvalues(
                    matrices["pass@1"],
                    matrices[f"pass@{k}"],
                    out / "pvalues.png",
                    upper_name=f"pass@{k}",
                )
            )
    return written


def cli() -> None:
    """Console-script entry point (``sieve-eval``)."""
    app()


# --------------------------------------------------------------------------------------------
# The evaluation itself


def _run(
    *,
    checkpoint: Path,
    data: Path,
    n: int,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    verifier_url: str,
    api_key: str | None,
    out: Path,
    limit: int | None,
    split: str | None,
    batch_size: int,
    timeout_s: float,
    label: str,
    seed: int,
    device: str | None,
    save_samples: bool,
) -> EvalResult:
    # Heavy imports here, so `sieve-eval compare` and `--help` stay fast.
    from trainer_client.client import VerifierClient
    from trainer_client.data import EVAL_SYSTEM_PROMPT, PromptRenderer, load_problems
    from trainer_client.evaluation.runner import (
        EvalPlan,
        PromptTooLong,
        check_prompt_lengths,
        evaluate_problems,
    )
    from trainer_client.rollout import HFSampler

    problems = load_problems(data, split=split, limit=limit)
    if not problems:
        raise typer.BadParameter(f"no problems in {data}", param_hint="--data")
    plan = EvalPlan(n=n, batch_size=batch_size, timeout_s=timeout_s)

    console.print(f"loading [bold]{checkpoint}[/bold]")
    sampler = HFSampler.from_pretrained(
        checkpoint,
        device=device,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        seed=seed,
        return_logprobs=False,
    )
    # The paper's evaluation prompt: the chat template (when the tokenizer has one) after its
    # system message.
    prompt_fn = PromptRenderer(tokenizer=sampler.tokenizer, system=EVAL_SYSTEM_PROMPT)
    try:
        check_prompt_lengths(
            problems,
            sampler.tokenizer,
            context=_context_length(sampler.model),
            max_new_tokens=max_new_tokens,
            prompts=[prompt_fn(p) for p in problems],
        )
    except PromptTooLong as exc:
        console.print(f"[bold red]prompt too long[/bold red]: {exc}")
        raise typer.Exit(code=2) from None
    config = {
        "checkpoint": str(checkpoint),
        "data": str(data),
        "split": split,
        "limit": limit,
        "n": n,
        "temperature": temperature,
        "top_p": top_p,
        "max_new_tokens": max_new_tokens,
        "seed": seed,
        "verifier_url": verifier_url,
        "timeout_s": timeout_s,
        "system_prompt": EVAL_SYSTEM_PROMPT,
        "command": " ".join(sys.argv),
    }
    out.mkdir(parents=True, exist_ok=True)
    total = len(problems) * n
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("verified {task.fields[verified]}  errors {task.fields[errors]}"),
        TimeElapsedColumn(),
        console=console,
    )
    with (
        VerifierClient(
            verifier_url, api_key=api_key, timeout_s=max(300.0, 2 * timeout_s)
        ) as verifier,
        progress,
        open(out / "samples.jsonl", "w") if save_samples else contextlib.nullcontext() as sink,
    ):
        task = progress.add_task(label, total=total, verified=0, errors=0)

        def on_progress(done: int, verified: int, errors: int) -> None:
            progress.update(task, completed=done, verified=verified, errors=errors)

        result = evaluate_problems(
            problems,
            sampler,
            verifier,
            plan=plan,
            label=label,
            config=config,
            on_progress=on_progress,
            samples_out=sink,
            prompt_fn=prompt_fn,
        )
    if result.errors:
        console.print(
            f"[yellow]{result.errors} samples got verdict `error` (system failure): left out of "
            "n and c of their problems[/yellow]"
        )
    return result


# --------------------------------------------------------------------------------------------
# Helpers


def _load(path: Path, flag: str) -> EvalResult:
    try:
        return EvalResult.from_json(path)
    except FileNotFoundError:
        raise typer.BadParameter(f"{path} does not exist", param_hint=flag) from None
    except (ValueError, KeyError) as exc:
        raise typer.BadParameter(f"{path}: {exc}", param_hint=flag) from None


def _check_checkpoint(checkpoint: Path) -> None:
    """A ``save_pretrained`` directory, or a message saying what was given instead."""
    if not checkpoint.is_dir():
        raise typer.BadParameter(f"{checkpoint} is not a directory", param_hint="--checkpoint")
    if (checkpoint / "config.json").is_file():
        return
    steps = sorted(
        (p for p in checkpoint.glob("step_*") if (p / "config.json").is_file()),
        key=lambda p: int(p.name.removeprefix("step_")) if p.name[5:].isdigit() else -1,
    )
    if steps:
        raise typer.BadParameter(
            f"{checkpoint} is a run directory, not a checkpoint; pass one of its checkpoints, "
            f"e.g. --checkpoint {steps[-1]} (found: {', '.join(p.name for p in steps[-4:])})",
            param_hint="--checkpoint",
        )
    raise typer.BadParameter(
        f"{checkpoint} holds no model (no config.json): pass a save_pretrained directory such as "
        "runs/<name>/step_<N>",
        param_hint="--checkpoint",
    )


def _check_rule(rule: str) -> None:
    if rule not in PARETO_RULES:
        raise typer.BadParameter(
            f"expected one of {', '.join(PARETO_RULES)}, got {rule!r}", param_hint="--pareto-rule"
        )


def _require_reachable(verifier_url: str, timeout_s: float = 5.0) -> None:
    """Exit 1 with a message unless some verifier URL answers ``GET /health``.

    Checked before the model loads: otherwise every sample would be retried for seconds and
    the run would end in an empty result.
    """
    import httpx

    urls = [u.strip().rstrip("/") for u in verifier_url.split(",") if u.strip()]
    problems = []
    for url in urls:
        try:
            response = httpx.get(f"{url}/health", timeout=timeout_s)
        except httpx.HTTPError as exc:
            problems.append(f"{url}: {type(exc).__name__}: {exc}")
            continue
        if response.status_code < 500:
            return
        problems.append(f"{url}: HTTP {response.status_code}")
    console.print(
        "[bold red]verifier unreachable[/bold red]: "
        + "; ".join(problems or ["no URL given"])
        + ". Start it (`docker compose up -d` or `sieve-verifier serve`) or pass --verifier-url."
    )
    raise typer.Exit(code=1)


def _same_problems_or_exit(runs: Sequence[EvalResult], names: Sequence[str]) -> None:
    try:
        check_same_problems(runs, names)
    except DifferentProblems as exc:
        console.print(f"[bold red]different problem sets[/bold red]: {exc}")
        raise typer.Exit(code=2) from None


def _context_length(model: object) -> int | None:
    config = getattr(model, "config", None)
    for name in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _split_paths(paths: Sequence[Path]) -> list[Path]:
    return [Path(part) for p in paths for part in str(p).split(",") if part]


def _run_label(checkpoint: Path) -> str:
    """``runs/alpha0.25/step_200`` -> ``alpha0.25-step_200``."""
    resolved = checkpoint.resolve()
    return f"{resolved.parent.name}-{resolved.name}" if resolved.parent.name else resolved.name


def _print_summary(runs: Sequence[EvalResult]) -> None:
    table = Table(
        title="precision and coverage (± bootstrap SE over problems)",
        caption="tactic H: Shannon entropy of tactics in bits; "
        + "; ".join(f"{k} = {v}" for k, v in DIVERSITY_DEFINITIONS.items()),
    )
    columns = ("run", "problems", "pass@1", "pass@n", "n", "errors")
    for column in (*columns, "tactic H (paper)", "tactic H (verified)"):
        table.add_column(column, justify="left" if column == "run" else "right")
    for r in runs:
        (p1, p1_se), (pn, pn_se) = r.precision, r.coverage
        entropies = [r.diversity.get(d, {}).get("tactic_shannon") for d in ("paper", "verified")]
        table.add_row(
            r.label,
            str(sum(p.n > 0 for p in r.problems)),
            f"{p1:.3f} ± {p1_se:.3f}",
            f"{pn:.3f} ± {pn_se:.3f}",
            str(r.ks[-1] if r.ks else 0),
            str(r.errors),
            *("-" if e is None else f"{e:.2f}" for e in entropies),
        )
    Console().print(table)


if __name__ == "__main__":
    cli()
