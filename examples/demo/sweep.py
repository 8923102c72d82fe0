"""The CPU demo's sweep: one base model, an RL baseline and α-DPG at several α, evaluated alike.

    python -m examples.demo --config configs/demo_cpu.yaml [--seeds 3]

:func:`run_sweep` fits the demo's base model once (:mod:`examples.demo.base_model`, cached under
``<run dir>/base``), starts a local verifier, and for each seed trains every run of the sweep
from that base on the *training* targets (``demo.baselines``, e.g. ``dr_grpo``, then one α-DPG
run per ``demo.alphas``) and evaluates the base and every run with ``demo.eval_n`` (256)
samples per target on the *held-out* targets and, as a second table, on the training targets.
It writes, under the run directory:

* ``sweep.json``: per model (keys ``base``, ``dr_grpo``, ``α=0``, ``α=0.25``, …) and per split
  (``heldout``, ``train``): pass@k for every k of ``demo.eval_ks`` (the unbiased estimator),
  distinct correct answers per target, each with its standard error (bootstrap over targets
  with one seed, over seeds with several: :mod:`examples.demo.scores`), and the share of each
  answer family among all and among correct samples; per split the paired-bootstrap p-values
  ``pvalues[split]["pass@1" | "pass@256"][a][b]``, the models on the precision–coverage
  frontier (pass@1, pass@256) and each run's difficulty-transition matrix against the base.
  It holds nothing that depends on the machine's speed or folders: one seed gives the same
  file twice;
* ``table.md``: README's tables (held-out, then training targets);
* ``timings.json``: wall and CPU seconds of every phase, and how many verifications were asked;
* ``seed<s>/<run>/``: each run's checkpoints; ``seed<s>/eval/<split>/<model>.json`` (the
  :class:`~trainer_client.evaluation.EvalResult`) and ``….samples.jsonl`` (every sample and
  verdict);
* ``plots/`` (held-out targets) and ``plots/train/``: the precision–coverage plane with its
  frontier, precision against distinct correct answers, pass@k, the p-value matrix, and one
  difficulty-transition matrix per run (shared colour scale).

The sweep pins torch to one thread: on a shared 2-core machine one thread was 4–6× faster than
two. Nothing here tunes the evaluation to the result: every model is evaluated with the same
targets, samples and seed.
"""

from __future__ import annotations

import contextlib
import json
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
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
from examples.demo.report import (
    display_name,
    file_name,
    markdown_table,
    plot_sweep,
    print_sweep,
)
from examples.demo.scores import Scored, combine, score_samples
from examples.demo.task import DemoTask, demo_problems, is_prime
from trainer_client.build import resolve_model_path, run_training
from trainer_client.config import TrainConfig
from trainer_client.data import Problem
from trainer_client.evaluation import EvalResult
from trainer_client.evaluation.metrics import bootstrap_se
from trainer_client.evaluation.runner import EvalPlan, evaluate_problems
from trainer_client.local_verifier import verifier_for
from trainer_client.objectives import ALPHA_DPG
from trainer_client.rollout import HFSampler
from trainer_client.wire import ProofRequest, Verdict, Verifier

__all__ = [
    "SPLIT_KEYS",
    "SweepRun",
    "VerdictCache",
    "display_name",
    "distinct_correct",
    "evaluate_checkpoint",
    "evaluation_problems",
    "run_sweep",
    "sweep_runs",
    "training_problems",
]

#: Sequences per sampler call in evaluation: four targets of 256 samples.
EVAL_BATCH = 1024


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


def evaluation_problems(cfg: DemoConfig, split: str = "test") -> list[Problem]:
    """The evaluated problems of ``split``: its targets, each once (``demo.eval_limit`` of them
    at most), in an order fixed by ``run.seed``."""
    limit = cfg.demo.eval_limit or 256
    problems = demo_problems(limit, seed=cfg.train.run.seed, split=split)
    return _distinct_targets(problems)


#: How sweep.json names each split's table.
SPLIT_KEYS = {"test": "heldout", "train": "train"}


def run_sweep(demo: DemoConfig) -> dict[str, Any]:
    """Fit the base, then per seed train every run and evaluate them all; see the module
    docstring. Returns what ``sweep.json`` holds."""
    cfg = demo.train
    torch.set_num_threads(1)
    hf_logging.set_verbosity_error()  # the sweep reports its own progress
    root = cfg.run_dir
    root.mkdir(parents=True, exist_ok=True)
    clock = _Clock()
    base = _demo_base(demo, root)
    clock.lap("fit")
    settings = demo.demo
    seeds = [cfg.run.seed + i for i in range(settings.seeds)]
    n, ks = settings.eval_n, [k for k in settings.eval_ks if k <= settings.eval_n]
    if n not in ks:
        ks.append(n)
    splits = {SPLIT_KEYS[s]: evaluation_problems(demo, s) for s in settings.eval_splits}
    per_seed: list[dict[str, dict[str, Scored]]] = []
    with contextlib.ExitStack() as stack:
        if cfg.verifier.url is None:
            _say(f"starting the local verifier ({', '.join(cfg.verifier.local_checkers)} checker)")
        verifier = VerdictCache(stack.enter_context(verifier_for(cfg)))
        _say("verifier ready")
        clock.lap("verifier_start")
        for seed in seeds:
            per_seed.append(_one_seed(demo, seed, base, splits, verifier, clock))
    summary: dict[str, Any] = {
        "eval_n": n,
        "ks": ks,
        "seeds": seeds,
        "se": "over seeds" if len(seeds) > 1 else "bootstrap over targets",
        "splits": {
            key: {
                "targets": sorted(int(p.answer or 0) for p in problems),
                "primes": sum(is_prime(int(p.answer or 0)) for p in problems),
            }
            for key, problems in splits.items()
        },
        "models": {},
    }
    labels = ["base", *(r.label for r in sweep_runs(demo))]
    for label in labels:
        objective = "base" if label == "base" else _objective_of(label, sweep_runs(demo))
        summary["models"][label] = {"objective": objective}
    for key in splits:
        if not splits[key]:
            continue
        combined = combine([seed[key] for seed in per_seed], ks)
        for label, figures in combined["models"].items():
            summary["models"][label][key] = figures
        for what in ("pvalues", "frontier", "transitions"):
            if what in combined:
                summary.setdefault(what, {})[key] = combined[what]
    if "heldout" in summary.get("splits", {}) and splits.get("heldout"):
        plot_sweep(summary, root / "plots", split="heldout")
    if splits.get("train"):
        plot_sweep(summary, root / "plots" / "train", split="train")
    clock.lap("report")
    timings = clock.report()
    timings["verifications"] = verifier.asked
    timings["verdicts_reused"] = verifier.reused
    (root / "sweep.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    (root / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    (root / "table.md").write_text(
        "".join(markdown_table(summary, key) for key in splits if splits[key])
    )
    print_sweep(summary, timings, root)
    return summary


def _one_seed(
    demo: DemoConfig,
    seed: int,
    base: Path | str,
    splits: dict[str, list[Problem]],
    verifier: Verifier,
    clock: _Clock,
) -> dict[str, dict[str, Scored]]:
    """Train every run of the sweep with ``seed`` and evaluate base and runs on every split."""
    cfg = demo.train.model_copy(deep=True)
    cfg.run.seed = seed
    out = demo.train.run_dir / f"seed{seed}"
    runs = sweep_runs(demo)
    train_problems = demo_problems(
        cfg.data.limit or 256, seed=seed, split=cfg.data.split or "train"
    )
    checkpoints: dict[str, Path | str] = {"base": base}
    for number, run in enumerate(runs, 1):
        _say(f"seed {seed}: training {display_name(run.label)} ({number}/{len(runs)})")
        sub = cfg.model_copy(deep=True)
        sub.model.name_or_path = str(base)
        sub.loss.objective = run.objective
        if run.alpha is not None:
            sub.loss.alpha = run.alpha
        sub.run.output_dir = str(out)
        sub.run.name = run.directory
        checkpoints[run.label] = run_training(sub, verifier=verifier, problems=train_problems)
    clock.lap(f"train_seed{seed}")
    n = demo.demo.eval_n
    scores: dict[str, dict[str, Scored]] = {key: {} for key in splits}
    for key, problems in splits.items():
        if not problems:
            continue
        _say(
            f"seed {seed}: evaluating {len(checkpoints)} models on {len(problems)} {key} "
            f"targets × {n} samples"
        )
        for label, path in checkpoints.items():
            samples_file = out / "eval" / key / f"{file_name(label)}.samples.jsonl"
            result = evaluate_checkpoint(
                path, problems, verifier, n=n, cfg=cfg, label=label, samples_file=samples_file
            )
            result.config = {"checkpoint": _relative(path, demo.train.run_dir)}
            result.to_json(samples_file.with_name(f"{file_name(label)}.json"))
            rows = [json.loads(line) for line in samples_file.read_text().splitlines()]
            scored = score_samples(result, rows)
            scores[key][label] = scored
            p1, pn = scored.per_target(1).mean(), scored.per_target(n).mean()
            _say(f"  {key} {label}: pass@1 {p1:.3f}  pass@{n} {pn:.3f}")
    clock.lap(f"eval_seed{seed}")
    return scores


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
    # Several targets share a sampler call: 256 samples of one target are a small batch for
    # even a tiny model, and every call has a fixed cost.
    plan = EvalPlan(n=n, batch_size=max(n, EVAL_BATCH))
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
    steps = demo.demo.fit_steps
    if _fitted_as_asked(out, steps, demo.demo.fit_seed):
        _say(f"base model: {out} (already fitted)")
        return out
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

        path = fit_demo_base(out, steps=steps, seed=demo.demo.fit_seed, on_step=on_step)
    _say(f"base model fitted: {path}")
    return path


def _fitted_as_asked(out: Path, steps: int, seed: int) -> bool:
    """Whether ``out`` holds a base fitted to today's task with these steps and seed: a base
    cached by another version of the task (or fit) must not be reused silently."""
    described = out / "base_distribution.json"
    if not (out / "config.json").is_file() or not described.is_file():
        return False
    saved = json.loads(described.read_text())
    return saved.get("task") == asdict(DemoTask()) and saved.get("fit") == {
        "steps": steps,
        "seed": seed,
    }


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


class VerdictCache:
    """A :class:`~trainer_client.wire.Verifier` that asks its verifier once per distinct proof.

    The math checker's verdict depends only on the checker, the completion and the answer, and
    the sweep draws the same short expressions thousands of times (256 samples per target,
    every model, every seed): each distinct one is sent once, the rest reuse its verdict.
    A system error (``error``) is never kept, so the next request asks again.
    """

    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier
        self.verdicts: dict[str, Verdict] = {}
        self.asked = 0
        self.reused = 0

    def verify(self, proofs: Sequence[ProofRequest]) -> list[Verdict]:
        keys = [_proof_key(proof) for proof in proofs]
        missing: dict[str, ProofRequest] = {}
        for key, proof in zip(keys, proofs, strict=True):
            if key not in self.verdicts and key not in missing:
                missing[key] = proof
        if missing:
            answers = self.verifier.verify(list(missing.values()))
            self.asked += len(missing)
            fresh = dict(zip(missing, answers, strict=True))
        else:
            fresh = {}
        for key, verdict in fresh.items():
            if not verdict.failed:
                self.verdicts[key] = verdict
        self.reused += len(proofs) - len(missing)
        return [fresh.get(key) or self.verdicts[key] for key in keys]


def _proof_key(proof: ProofRequest) -> str:
    return json.dumps({k: v for k, v in proof.items() if k != "id"}, sort_keys=True)


def _relative(path: Path | str, root: Path) -> str:
    """``path`` relative to the run directory when inside it: sweep.json names no machine's
    folders, so two runs of one seed give the same file."""
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _objective_of(label: str, runs: Sequence[SweepRun]) -> str:
    return next(r.objective for r in runs if r.label == label)


class _Clock:
    """Wall and CPU seconds per phase. The totals count this process and its reaped children
    (the local verifier, once stopped); a phase's CPU (``cpu_<phase>_s``) is this process's
    alone. On a busy machine wall time says how much of a core the demo got; CPU time is what
    it would take on idle cores."""

    def __init__(self) -> None:
        self.started = self.last = time.perf_counter()
        self.cpu0 = _cpu_s()
        self.cpu_last = self.cpu0[0]
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        cpu = _cpu_s()[0]
        self.laps[f"{name}_s"] = now - self.last
        self.laps[f"cpu_{name}_s"] = cpu - self.cpu_last
        self.last, self.cpu_last = now, cpu

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
