"""The CPU demo's sweep: one base model, an RL baseline and α-DPG at several α, evaluated alike.

    python -m examples.demo --config configs/demo_cpu.yaml

:func:`run_sweep` fits the demo's base model (:mod:`examples.demo.base_model`), starts a local
verifier, trains every run of the sweep from that base against it (``demo.baselines``, e.g.
``dr_grpo``, then one α-DPG run per ``demo.alphas``), and evaluates the base and every run with
``demo.eval_n`` samples per problem. It writes, under the run directory:

* ``sweep.json``: per model (keys ``base``, ``dr_grpo``, ``α=0``, ``α=0.25``, …) pass@1,
  pass@n and the number of distinct correct answers per problem, each with its bootstrap
  standard error; the paired-bootstrap p-values ``{"pass@1": {a: {b: p}}, "pass@{n}": …}``;
  timings (wall and CPU seconds of every phase);
* ``eval/<name>.json`` (the :class:`~trainer_client.evaluation.EvalResult`) and
  ``eval/<name>.samples.jsonl`` (every sample and verdict) per model;
* ``plots/``: the precision–coverage plane, precision against distinct correct answers, pass@k,
  the p-value matrix, and one difficulty-transition matrix per run (shared colour scale).

The sweep pins torch to one thread: on a shared 2-core machine one thread was 4–6× faster than
two. Nothing here tunes the evaluation to the result: every model is evaluated with the same
problems, samples and seed.
"""

from __future__ import annotations

import contextlib
import json
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from transformers.utils import logging as hf_logging

from examples.demo.base_model import fit_demo_base
from examples.demo.config import DemoConfig
from examples.demo.report import display_name, file_name, plot_sweep, print_sweep, split_words
from examples.demo.task import demo_problems
from trainer_client.build import resolve_model_path, run_training
from trainer_client.config import TrainConfig
from trainer_client.data import Problem
from trainer_client.evaluation import EvalResult
from trainer_client.evaluation.comparison import pvalue_matrices
from trainer_client.evaluation.metrics import bootstrap_se
from trainer_client.evaluation.runner import EvalPlan, evaluate_problems
from trainer_client.local_verifier import verifier_for
from trainer_client.objectives import ALPHA_DPG
from trainer_client.rollout import HFSampler
from trainer_client.wire import Verifier

__all__ = [
    "SweepRun",
    "display_name",
    "distinct_correct",
    "evaluate_checkpoint",
    "evaluation_problems",
    "run_sweep",
    "sweep_runs",
    "training_problems",
]


@dataclass(frozen=True)
class SweepRun:
    """One fine-tuning run of the sweep: its key in ``sweep.json`` and how to train it."""

    label: str  # an objective's name, or "α=0.25"
    objective: str
    alpha: float | None
    directory: str  # the same name, or "alpha0.25"


def sweep_runs(cfg: DemoConfig) -> list[SweepRun]:
    """The runs of ``cfg``'s sweep, baselines first, then α in the order given."""
    runs = [SweepRun(name, name, None, name) for name in cfg.demo.baselines]
    runs += [
        SweepRun(f"α={alpha:g}", ALPHA_DPG.name, alpha, f"alpha{alpha:g}")
        for alpha in cfg.demo.alphas
    ]
    return runs


def training_problems(cfg: DemoConfig) -> list[Problem]:
    """The demo task's training problems (``data.split``, default ``train``; ``data.limit``,
    default 256), in an order fixed by ``run.seed``."""
    train = cfg.train
    split = train.data.split or "train"
    return demo_problems(train.data.limit or 256, seed=train.run.seed, split=split)


def evaluation_problems(cfg: DemoConfig) -> list[Problem]:
    """The evaluated problems: ``demo.eval_split``'s targets, each once."""
    limit = cfg.demo.eval_limit or 256
    problems = demo_problems(limit, seed=cfg.train.run.seed, split=cfg.demo.eval_split)
    return _distinct_targets(problems)


def run_sweep(demo: DemoConfig) -> dict[str, Any]:
    """Fit the base, train every run of the sweep, evaluate them all; see the module docstring."""
    cfg = demo.train
    torch.set_num_threads(1)
    hf_logging.set_verbosity_error()  # the sweep reports its own progress
    root = cfg.run_dir
    root.mkdir(parents=True, exist_ok=True)
    clock = _Clock()
    base = _demo_base(demo, root)
    clock.lap("fit")
    runs = sweep_runs(demo)
    problems = evaluation_problems(demo)
    train_problems = training_problems(demo)
    n = demo.demo.eval_n
    split = demo.demo.eval_split
    summary: dict[str, Any] = {
        "eval_n": n,
        "eval_problems": len(problems),
        "eval_split": split,
        "models": {},
    }
    with contextlib.ExitStack() as stack:
        if cfg.verifier.url is None:
            _say(f"starting the local verifier ({', '.join(cfg.verifier.local_checkers)} checker)")
        verifier = stack.enter_context(verifier_for(cfg))
        _say("verifier ready")
        clock.lap("verifier_start")
        checkpoints: dict[str, Path | str] = {"base": base}
        for number, run in enumerate(runs, 1):
            _say(f"training {display_name(run.label)} ({number}/{len(runs)})")
            sub = cfg.model_copy(deep=True)
            sub.model.name_or_path = str(base)
            sub.loss.objective = run.objective
            if run.alpha is not None:
                sub.loss.alpha = run.alpha
            sub.run.output_dir = str(root)
            sub.run.name = run.directory
            checkpoints[run.label] = run_training(sub, verifier=verifier, problems=train_problems)
        clock.lap("train")
        _say(
            f"evaluating {len(checkpoints)} models on {len(problems)} "
            f"{split_words(split)} targets × {n} samples"
        )
        results = {}
        for label, path in checkpoints.items() if problems else ():
            name = file_name(label)
            samples_file = root / "eval" / f"{name}.samples.jsonl"
            result = evaluate_checkpoint(
                path, problems, verifier, n=n, cfg=cfg, label=label, samples_file=samples_file
            )
            result.to_json(root / "eval" / f"{name}.json")
            results[label] = result
            (p1, p1_se), (pn, pn_se) = result.precision, result.at(n)
            distinct, distinct_se = distinct_correct(samples_file, [p.name for p in problems])
            summary["models"][label] = {
                "objective": "base" if label == "base" else _objective_of(label, runs),
                "pass@1": p1,
                "pass@1_se": p1_se,
                f"pass@{n}": pn,
                f"pass@{n}_se": pn_se,
                "distinct_correct": distinct,
                "distinct_correct_se": distinct_se,
                # tactic/premise entropy under both labelled definitions (evaluation.diversity)
                "diversity": result.diversity,
                "checkpoint": str(path),
            }
            _say(f"  {label}: pass@1 {p1:.3f}  pass@{n} {pn:.3f}  distinct correct {distinct:.2f}")
        if len(results) >= 2:
            matrices = pvalue_matrices(list(results.values()))
            summary["pvalues"] = {"pass@1": matrices["pass@1"], f"pass@{n}": matrices[f"pass@{n}"]}
        if results:
            plot_sweep(results, summary, root / "plots", n=n, split=split)
        clock.lap("eval")
    summary["timings"] = clock.report()
    summary["total_s"] = summary["timings"]["total_s"]
    (root / "sweep.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    print_sweep(summary, root)
    return summary


def evaluate_checkpoint(
    path: Path | str,
    problems: Sequence[Problem],
    verifier: Verifier,
    *,
    n: int,
    cfg: TrainConfig,
    label: str | None = None,
    samples_file: Path | None = None,
) -> EvalResult:
    """Sample ``n`` completions per problem from a checkpoint, verify, and score them.

    Returns an :class:`~trainer_client.evaluation.EvalResult` (pass@k curve with bootstrap SEs,
    per-problem counts). With ``samples_file``, every sample and verdict is written there as JSONL.
    Every model is sampled with the same seed, temperature and top-p (the training config's).
    """
    sampler = HFSampler.from_pretrained(
        path,
        device="cpu",
        temperature=cfg.sampling.temperature,
        top_p=cfg.sampling.top_p,
        max_new_tokens=cfg.sampling.max_new_tokens,
        seed=cfg.run.seed + 1,
        max_prompt_tokens=cfg.sampling.max_prompt_tokens,
        return_logprobs=False,
    )
    plan = EvalPlan(n=n, batch_size=max(n, cfg.sampling.batch_size or 256))
    with contextlib.ExitStack() as stack:
        out = None
        if samples_file is not None:
            samples_file.parent.mkdir(parents=True, exist_ok=True)
            out = stack.enter_context(samples_file.open("w"))
        with torch.no_grad():
            return evaluate_problems(
                problems,
                sampler,
                verifier,
                plan=plan,
                label=label or str(path),
                config={"checkpoint": str(path)},
                samples_out=out,
            )


def distinct_correct(
    samples_file: Path, problem_names: Sequence[str] | None = None, *, n_boot: int = 1000
) -> tuple[float, float]:
    """Mean number of *different* verified completions per problem, with its bootstrap SE.

    Problems are the ones in ``problem_names`` (a problem with no verified sample counts 0), or
    every problem in the file.
    """
    seen: dict[str, set[str]] = {name: set() for name in problem_names or []}
    for line in samples_file.read_text().splitlines():
        row = json.loads(line)
        bucket = seen.setdefault(row["problem"], set())
        if row["verdict"] == "valid":
            bucket.add(row["completion"].strip())
    counts = [float(len(v)) for v in seen.values()]
    if not counts:
        return 0.0, 0.0
    mean = sum(counts) / len(counts)
    se = float(bootstrap_se(counts, n_boot=n_boot)) if len(counts) > 1 else 0.0
    return mean, se


# --------------------------------------------------------------------------------------------
# Helpers


def _demo_base(demo: DemoConfig, root: Path) -> Path | str:
    """The base model: fitted (with a progress bar) when ``demo.fit_base``; otherwise what
    training would use (:func:`~trainer_client.build.resolve_model_path`: a ``random_init``
    base is built once under ``root/base``, so every run and the base evaluation share one
    saved model)."""
    cfg = demo.train
    if not demo.demo.fit_base:
        return resolve_model_path(cfg, base_dir=root)
    out = root / "base"
    if (out / "config.json").is_file():
        _say(f"base model: {out} (already fitted)")
        return out
    steps = demo.demo.fit_steps
    columns = (
        TextColumn("[bold]fitting the base model"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("loss {task.fields[loss]}"),
    )
    with Progress(*columns, disable=not cfg.logging.progress) as progress:
        task = progress.add_task("fit", total=steps, loss="-")
        # Without a terminal (a log file, CI) the bar is not drawn: print a line every 10%.
        plain = cfg.logging.progress and not progress.console.is_terminal
        started = time.perf_counter()

        def on_step(step: int, loss: float) -> None:
            if step % 10 == 0 or step == steps:
                progress.update(task, completed=step, loss=f"{loss:.3f}")
            if plain and (step % max(1, steps // 10) == 0 or step == steps):
                elapsed = time.perf_counter() - started
                _say(
                    f"fitting the base model: step {step}/{steps}, loss {loss:.3f}, {elapsed:.0f} s"
                )

        path = fit_demo_base(out, steps=steps, seed=cfg.run.seed, on_step=on_step)
    _say(f"base model fitted: {path}")
    return path


def _distinct_targets(problems: Sequence[Problem]) -> list[Problem]:
    """Each target once: ``demo_problems`` repeats targets when asked for more than exist, and
    a repeated target would count as independent evidence in every SE and p-value."""
    seen: set[str] = set()
    out = []
    for problem in problems:
        key = problem.answer or problem.statement
        if key not in seen:
            seen.add(key)
            out.append(problem)
    return out


def _objective_of(label: str, runs: Sequence[SweepRun]) -> str:
    return next(r.objective for r in runs if r.label == label)


class _Clock:
    """Wall and CPU seconds per phase; CPU counts this process and its reaped children."""

    def __init__(self) -> None:
        self.started = self.last = time.perf_counter()
        self.cpu0 = _cpu_s()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[f"{name}_s"] = now - self.last
        self.last = now

    def report(self) -> dict[str, float]:
        own, children = _cpu_s()
        return {
            **self.laps,
            "total_s": time.perf_counter() - self.started,
            "cpu_s": own - self.cpu0[0] + children - self.cpu0[1],
            "cpu_main_s": own - self.cpu0[0],
            "cpu_verifier_s": children - self.cpu0[1],
        }


def _cpu_s() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def _say(message: str) -> None:
    print(f"[demo] {message}", file=sys.stderr, flush=True)
