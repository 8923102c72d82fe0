"""``sieve-train``: build a run from its config and train it (or a sweep of α values).

    sieve-train --config configs/paper_alpha_dpg.yaml --verifier-url http://verifier:8000 \
        --alpha 0.25
    accelerate launch -m trainer_client.train --config configs/paper_alpha_dpg.yaml ...
    sieve-train --config configs/demo_cpu.yaml    # CPU demo: local verifier, α sweep, plots

With no verifier URL (``verifier.url`` unset and no ``--verifier-url``) a local verifier is
started for the run: ``python -m verifier_service serve`` on a free loopback port with only the
checkers in ``verifier.local_checkers`` (``math`` by default), stopped when the run ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from trainer_client.config import ConfigError, TrainConfig, load_config

__all__ = [
    "build_trainer",
    "cli",
    "evaluate_checkpoint",
    "load_run_problems",
    "local_verifier",
    "main",
    "resolve_model_path",
    "run_sweep",
    "run_training",
]

DEMO_SOURCE = "demo"
DEMO_FIT = "demo:fit"

cli = typer.Typer(
    name="sieve-train",
    help="Fine-tune a prover toward its verifier-filtered base distribution (α-DPG).",
    add_completion=False,
    pretty_exceptions_enable=False,
)


@cli.command()
def train(
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML run config.")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a field: section.field=value (repeatable)."),
    ] = None,
    verifier_url: Annotated[
        str | None, typer.Option(help="Verifier base URL; none starts a local math verifier.")
    ] = None,
    alpha: Annotated[float | None, typer.Option(help="loss.alpha")] = None,
    output_dir: Annotated[str | None, typer.Option(help="run.output_dir")] = None,
    name: Annotated[str | None, typer.Option(help="run.name")] = None,
    max_steps: Annotated[int | None, typer.Option(help="run.max_steps")] = None,
    seed: Annotated[int | None, typer.Option(help="run.seed")] = None,
    resume: Annotated[
        str | None, typer.Option(help="'latest' or a checkpoint directory (run.resume).")
    ] = None,
    print_config: Annotated[
        bool, typer.Option("--print-config", help="Print the resolved config and exit.")
    ] = False,
) -> None:
    """Train one run, or every α of ``run.alphas`` followed by their evaluation."""
    try:
        cfg = load_config(
            config,
            set_ or [],
            verifier_url=verifier_url,
            alpha=alpha,
            output_dir=output_dir,
            name=name,
            max_steps=max_steps,
            seed=seed,
            resume=resume,
        )
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--config/--set") from None
    if print_config:
        typer.echo(cfg.to_yaml())
        return
    if cfg.run.alphas:
        run_sweep(cfg)
    else:
        run_training(cfg)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m trainer_client.train`` (what ``accelerate launch -m`` runs)."""
    cli(args=list(sys.argv[1:] if argv is None else argv), prog_name="sieve-train")


# --- one run ----------------------------------------------------------------------------------


def run_training(cfg: TrainConfig, *, verifier: Any = None) -> Path:
    """Train ``cfg`` to ``run.max_steps``; returns the last checkpoint directory."""
    from trainer_client.tracking import plot_metrics

    with contextlib.ExitStack() as stack:
        if verifier is None:
            verifier = stack.enter_context(_verifier_for(cfg))
        trainer = build_trainer(cfg, verifier)
        stack.callback(trainer.close)
        if trainer.step >= cfg.run.max_steps:
            _say(trainer, f"{cfg.run_dir}: already at step {trainer.step}, nothing to do")
        else:
            with _progress(trainer, cfg) as on_step:
                trainer.train(on_step=on_step)
        last = cfg.run_dir / f"step_{trainer.step}"
        if (
            trainer.is_main_process
            and cfg.logging.jsonl
            and (cfg.run_dir / "metrics.jsonl").exists()
        ):
            plot_metrics(cfg.run_dir, cfg.run_dir / "plots" / "training.png")
        return last


def build_trainer(cfg: TrainConfig, verifier: Any, *, accelerator: Any = None) -> Any:
    """Load tokenizer, policy, reference and problems; resume if asked; return a Trainer."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainer_client.checkpoint import latest_checkpoint
    from trainer_client.loop import Trainer
    from trainer_client.reference import ReferenceModel
    from trainer_client.tracking import Tracker

    accelerator = accelerator or Accelerator(mixed_precision=cfg.optim.mixed_precision)
    set_seed(cfg.run.seed)
    base = resolve_model_path(cfg)
    checkpoint = _resume_from(cfg, latest_checkpoint)
    load = {"trust_remote_code": cfg.model.trust_remote_code}
    tokenizer = AutoTokenizer.from_pretrained(str(cfg.model.tokenizer or base), **load)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # The policy keeps float32 master weights unless told otherwise (autocast does bf16/fp16);
    # the frozen reference may as well use the checkpoint's own dtype.
    policy_dtype = _torch_dtype(cfg.model.dtype)
    policy = AutoModelForCausalLM.from_pretrained(
        str(checkpoint or base), dtype=policy_dtype, **load
    )
    reference = None
    if cfg.loss.objective in ("alpha_dpg", "rft") or cfg.loss.kl_coef > 0:
        reference = ReferenceModel.from_pretrained(
            str(cfg.model.reference or base),
            batch_size=cfg.optim.micro_batch_size,
            device=accelerator.device,
            dtype="auto" if cfg.model.dtype == "auto" else policy_dtype,
            **load,
        )
    tracker = Tracker(
        cfg.run_dir,
        jsonl=cfg.logging.jsonl,
        tensorboard=cfg.logging.tensorboard,
        wandb_project=cfg.logging.wandb_project,
        wandb_entity=cfg.logging.wandb_entity,
        run_name=cfg.run.name,
        config=cfg.to_dict(),
        resume_step=_checkpoint_step(checkpoint),
        enabled=accelerator.is_main_process,
    )
    if accelerator.is_main_process:
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        (cfg.run_dir / "config.yaml").write_text(cfg.to_yaml())
    sampler = None
    if cfg.sampling.backend == "vllm":
        from trainer_client.sampler import VLLMSampler

        s = cfg.sampling
        sampler = VLLMSampler(
            str(checkpoint or base) if cfg.loss.objective != "rft" else str(base),
            tokenizer,
            temperature=s.temperature,
            top_p=s.top_p,
            max_new_tokens=s.max_new_tokens,
            seed=cfg.run.seed + 7919 * accelerator.process_index,
            max_prompt_tokens=s.max_prompt_tokens,
        )
    trainer = Trainer(
        cfg,
        model=policy,
        sampler=sampler,
        tokenizer=tokenizer,
        problems=load_run_problems(cfg),
        verifier=verifier,
        reference=reference,
        accelerator=accelerator,
        tracker=tracker,
    )
    if checkpoint is not None:
        trainer.load(checkpoint, weights=False)
    return trainer


def load_run_problems(cfg: TrainConfig, *, evaluation: bool = False) -> list[Any]:
    """Training (or held-out) problems: a data file, or the CPU demo's task (``demo``)."""
    from trainer_client.data import load_problems

    path = cfg.data.eval_path if evaluation else cfg.data.path
    split = cfg.data.eval_split if evaluation else cfg.data.split
    limit = cfg.data.eval_limit if evaluation else cfg.data.limit
    if path is None:
        return []
    if path == DEMO_SOURCE:
        from trainer_client.demo import demo_problems

        default_split = "test" if evaluation else "train"
        return demo_problems(limit or 256, seed=cfg.run.seed, split=split or default_split)
    return load_problems(_data_path(path), split=split, limit=limit)


def resolve_model_path(cfg: TrainConfig, *, base_dir: Path | None = None) -> Path | str:
    """``model.name_or_path``, fitting the demo's base model first when it says ``demo:fit``."""
    if cfg.model.name_or_path != DEMO_FIT:
        return cfg.model.name_or_path
    from trainer_client.demo import fit_demo_base

    out = (base_dir or cfg.run_dir) / "base"
    if (out / "config.json").is_file():
        return out
    return fit_demo_base(out, steps=cfg.model.demo_fit_steps, seed=cfg.run.seed)


# --- the α sweep (the CPU demo) ---------------------------------------------------------------


def run_sweep(cfg: TrainConfig) -> dict[str, Any]:
    """Train one run per α of ``run.alphas`` from the same base, then evaluate base and runs.

    Writes ``<run dir>/sweep.json`` (pass@1, pass@n and distinct correct answers per model) and the
    evaluation plots under ``<run dir>/plots``.
    """
    root = cfg.run_dir
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    base = resolve_model_path(cfg, base_dir=root)
    with contextlib.ExitStack() as stack:
        verifier = stack.enter_context(_verifier_for(cfg))
        checkpoints: dict[str, Path | str] = {"base": base}
        for alpha in cfg.run.alphas or []:
            sub = cfg.model_copy(deep=True)
            sub.model.name_or_path = str(base)
            sub.loss.alpha = alpha
            sub.run.alphas = None
            sub.run.output_dir = str(root)
            sub.run.name = f"alpha{alpha:g}"
            checkpoints[f"α={alpha:g}"] = run_training(sub, verifier=verifier)
        train_s = time.perf_counter() - started
        problems = load_run_problems(cfg, evaluation=True)
        results: dict[str, Any] = {"train_s": train_s, "models": {}}
        if problems:
            for label, path in checkpoints.items():
                results["models"][label] = evaluate_checkpoint(
                    path, problems, verifier, n=cfg.run.eval_n, cfg=cfg
                )
            _plot_sweep(results["models"], root / "plots", n=cfg.run.eval_n)
    results["total_s"] = time.perf_counter() - started
    (root / "sweep.json").write_text(json.dumps(results, indent=2))
    _print_sweep(results, root)
    return results


def evaluate_checkpoint(
    path: Path | str, problems: Sequence[Any], verifier: Any, *, n: int, cfg: TrainConfig
) -> dict[str, Any]:
    """Sample ``n`` completions per problem, verify, and summarise precision and coverage.

    Returns pass@1 and pass@n (unbiased estimator), per-problem correct counts and the number of
    distinct verified completions per problem (how many different correct answers survive).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainer_client.data import build_prompt, proof_request
    from trainer_client.evaluation import pass_at_k
    from trainer_client.sampler import HFSampler

    model = AutoModelForCausalLM.from_pretrained(str(path))
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    sampler = HFSampler(
        model,
        tokenizer,
        temperature=cfg.sampling.temperature,
        top_p=cfg.sampling.top_p,
        max_new_tokens=cfg.sampling.max_new_tokens,
        batch_size=cfg.sampling.batch_size,
        seed=cfg.run.seed + 1,
        max_prompt_tokens=cfg.sampling.max_prompt_tokens,
        return_logprobs=False,
    )
    correct, distinct = [], []
    chunk = max(1, (cfg.sampling.batch_size or 256) // n)
    with torch.no_grad():
        for start in range(0, len(problems), chunk):
            part = list(problems[start : start + chunk])
            prompts = [build_prompt(p) for p in part]
            samples = sampler.sample(prompts, n)
            proofs = [
                proof_request(part[i // n], prompts[i // n], text, id=f"eval-{start}-{i}")
                for i, text in enumerate(samples.texts)
            ]
            results = verifier.verify(proofs)
            for j in range(len(part)):
                rows = results[j * n : (j + 1) * n]
                texts = samples.texts[j * n : (j + 1) * n]
                correct.append(sum(r.ok for r in rows))
                distinct.append(len({t.strip() for t, r in zip(texts, rows, strict=True) if r.ok}))
    return {
        "path": str(path),
        "pass@1": sum(pass_at_k(n, c, 1) for c in correct) / len(correct),
        f"pass@{n}": sum(pass_at_k(n, c, n) for c in correct) / len(correct),
        "distinct_correct": sum(distinct) / len(distinct),
        "correct": correct,
    }


def _plot_sweep(models: dict[str, dict[str, Any]], out_dir: Path, *, n: int) -> None:
    """Precision (pass@1) against coverage (pass@n) and distinct correct answers, per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    labels = list(models)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for label in labels:
        m = models[label]
        left.scatter(m[f"pass@{n}"], m["pass@1"], s=50, marker="s" if label == "base" else "o")
        left.annotate(
            label, (m[f"pass@{n}"], m["pass@1"]), textcoords="offset points", xytext=(5, 5)
        )
    left.set_xlabel(f"coverage (pass@{n})")
    left.set_ylabel("precision (pass@1)")
    left.set_title("precision–coverage plane")
    left.grid(alpha=0.3)
    right.bar(labels, [models[label]["distinct_correct"] for label in labels], color="tab:green")
    right.set_ylabel(f"distinct correct answers per problem (of {n} samples)")
    right.set_title("diversity of what passes")
    fig.tight_layout()
    fig.savefig(out_dir / "precision_coverage.png", dpi=120)
    plt.close(fig)


def _print_sweep(results: dict[str, Any], root: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    models = results.get("models", {})
    if not models:
        return
    keys = [k for k in next(iter(models.values())) if k.startswith("pass@")]
    table = Table(title=f"α sweep ({results['total_s']:.0f} s) — {root}")
    table.add_column("model")
    for key in [*keys, "distinct_correct"]:
        table.add_column(key, justify="right")
    for label, m in models.items():
        table.add_row(label, *(f"{m[k]:.3f}" for k in [*keys, "distinct_correct"]))
    Console().print(table)


# --- the verifier -----------------------------------------------------------------------------


@contextlib.contextmanager
def local_verifier(
    checkers: Sequence[str] = ("math",), *, startup_timeout_s: float = 60.0
) -> Iterator[str]:
    """Run ``python -m verifier_service serve`` on a free loopback port; yields its base URL."""
    import httpx

    port = _free_port()
    env = {**os.environ, "SIEVE_CHECKERS": ",".join(checkers), "SIEVE_LOG_LEVEL": "warning"}
    env.pop("SIEVE_REDIS_URL", None)
    command = [
        sys.executable,
        "-m",
        "verifier_service",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"local verifier exited with status {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/ready", timeout=2.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"local verifier not ready after {startup_timeout_s:.0f} s")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def _verifier_for(cfg: TrainConfig) -> Iterator[Any]:
    from trainer_client.client import VerifierClient

    v = cfg.verifier
    with contextlib.ExitStack() as stack:
        url = v.url
        if url is None:
            url = stack.enter_context(local_verifier(v.local_checkers))
        client = VerifierClient(
            url,
            api_key=v.api_key or os.environ.get("SIEVE_API_KEY"),
            timeout_s=v.request_timeout_s,
            max_batch=v.max_batch,
            max_concurrency=v.max_concurrency,
            retries=v.retries,
        )
        stack.callback(client.close)
        yield client


# --- helpers ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _progress(trainer: Any, cfg: TrainConfig) -> Iterator[Any]:
    if not (cfg.logging.progress and trainer.is_main_process):
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
    )
    with Progress(*columns) as progress:
        task = progress.add_task(
            cfg.run.name, total=cfg.run.max_steps, completed=trainer.step, status=""
        )

        def on_step(step: int, metrics: dict[str, float]) -> None:
            status = (
                f"pass {metrics['pass_rate']:.2f}  loss {metrics['loss']:+.4f}  "
                f"{metrics['tokens_per_s']:.0f} tok/s  errors {metrics['verifier/errors']:.0f}"
            )
            progress.update(task, completed=step, status=status)

        yield on_step


def _resume_from(cfg: TrainConfig, latest: Any) -> Path | None:
    resume = cfg.run.resume
    if resume is None:
        return None
    if resume == "latest":
        return latest(cfg.run_dir)
    path = Path(resume)
    if not path.is_dir():
        raise ConfigError(f"run.resume: no checkpoint directory at {path}")
    return path


def _checkpoint_step(path: Path | None) -> int | None:
    if path is None:
        return None
    from trainer_client.checkpoint import load_trainer_state

    return int(load_trainer_state(path)["step"])


def _data_path(path: str) -> Path:
    """A data path as given, or relative to the shared data folder beside the repository."""
    candidate = Path(path)
    if candidate.exists():
        return candidate
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / candidate.name
    return shared if shared.exists() else candidate


def _torch_dtype(name: str) -> Any:
    import torch

    return {
        "auto": torch.float32,
        "float32": torch.float32,
        "bfloat16": torch.bfloat16,
        "float16": torch.float16,
    }[name]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _say(trainer: Any, message: str) -> None:
    if trainer.is_main_process:
        print(message, file=sys.stderr)


if __name__ == "__main__":
    main()
