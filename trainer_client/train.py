"""``sieve-train``: build a run from its config and train it (or a sweep of α values).

    sieve-train --config configs/paper_alpha_dpg.yaml --verifier-url http://verifier:8000 \
        --alpha 0.25
    accelerate launch -m trainer_client.train --config configs/paper_alpha_dpg.yaml ...
    sieve-train --config configs/demo_cpu.yaml    # CPU demo: local verifier, sweep, plots

A config with ``run.alphas`` or ``run.baselines`` is a sweep, run by
:func:`trainer_client.demo_sweep.run_sweep`.

With no verifier URL (``verifier.url`` unset and no ``--verifier-url``) a local verifier is
started for the run: ``python -m verifier_service serve`` on a free loopback port with only the
checkers in ``verifier.local_checkers`` (``math`` by default), stopped when the run ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from trainer_client.config import ConfigError, TrainConfig, load_config

__all__ = [
    "build_trainer",
    "cli",
    "load_run_problems",
    "local_verifier",
    "main",
    "resolve_model_path",
    "run_training",
]

DEMO_SOURCE = "demo"
DEMO_FIT = "demo:fit"
RANDOM = "random"

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
    plan: Annotated[
        bool,
        typer.Option(
            "--plan", help="Print the per-GPU memory budget (no weights loaded) and exit."
        ),
    ] = False,
    gpus: Annotated[
        int | None,
        typer.Option(help="--plan: FSDP processes (default: WORLD_SIZE, else 1).", min=1),
    ] = None,
    gpu_memory_gib: Annotated[
        float, typer.Option(help="--plan: memory of one GPU, GiB.", min=1)
    ] = 80.0,
) -> None:
    """Train one run, or a sweep (``run.alphas``, ``run.baselines``) followed by its evaluation."""
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
    if plan:
        from trainer_client.plan import plan_memory

        try:
            budget = plan_memory(cfg, gpus=gpus, gpu_memory_gib=gpu_memory_gib)
        except ConfigError as exc:
            raise typer.BadParameter(str(exc), param_hint="--config/--set") from None
        typer.echo(budget.render())
        return
    _quiet_model_loading()
    if cfg.run.alphas or cfg.run.baselines:
        from trainer_client.demo_sweep import run_sweep

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
    from accelerate.utils import set_seed
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainer_client.checkpoint import latest_checkpoint
    from trainer_client.data import PromptRenderer
    from trainer_client.distributed import is_fsdp2, make_accelerator
    from trainer_client.loop import Trainer, sampling_seed
    from trainer_client.reference import ReferenceModel
    from trainer_client.tracking import Tracker

    accelerator = accelerator or make_accelerator(cfg.optim.mixed_precision)
    set_seed(cfg.run.seed)
    base = resolve_model_path(cfg, accelerator=accelerator)
    checkpoint = _resume_from(cfg, latest_checkpoint)
    load = {"trust_remote_code": cfg.model.trust_remote_code}
    tokenizer = AutoTokenizer.from_pretrained(str(cfg.model.tokenizer or base), **load)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # The policy keeps float32 master weights unless told otherwise (autocast does bf16/fp16).
    # The frozen reference has the policy's dtype: π and a are scored with the same code, dtype
    # and autocast, or the precision gap between them becomes gradient.
    policy_dtype = _torch_dtype(cfg.model.dtype)
    policy = AutoModelForCausalLM.from_pretrained(
        str(checkpoint or base), dtype=policy_dtype, **load
    )
    reference = None
    if cfg.needs_reference:
        reference = ReferenceModel.from_pretrained(
            str(cfg.model.reference or base),
            batch_size=cfg.optim.micro_batch_size,
            # Under FSDP2 the reference stays on the CPU until it is sharded: each GPU then
            # receives its shard only, never the whole model.
            device=None if is_fsdp2(accelerator) else accelerator.device,
            dtype=policy_dtype,
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
        from trainer_client.rollout import VLLMSampler

        s = cfg.sampling
        sampler = VLLMSampler(
            str(checkpoint or base) if cfg.objective.samples_policy else str(base),
            tokenizer,
            temperature=s.temperature,
            top_p=s.top_p,
            max_new_tokens=s.max_new_tokens,
            seed=sampling_seed(cfg, accelerator.process_index),
            max_prompt_tokens=s.max_prompt_tokens,
            gpu_memory_utilization=s.vllm_gpu_memory_utilization,
            max_model_len=s.max_prompt_tokens + s.max_new_tokens,
        )
    renderer = PromptRenderer(
        tokenizer, system=cfg.data.system_prompt, chat_template=cfg.data.chat_template
    )
    problems = _fitting_problems(cfg, tokenizer, renderer, main=accelerator.is_main_process)
    trainer = Trainer(
        cfg,
        model=policy,
        sampler=sampler,
        tokenizer=tokenizer,
        problems=problems,
        prompt_fn=renderer,
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


def _fitting_problems(cfg: TrainConfig, tokenizer: Any, render: Any, *, main: bool) -> list[Any]:
    """The training problems whose prompt fits ``sampling.max_prompt_tokens``.

    Longer ones are left out, as the paper's pipeline does, and counted: the main process says
    how many and lists them in ``<run dir>/prompts.json``.
    """
    from trainer_client.data import filter_long_prompts

    result = filter_long_prompts(
        load_run_problems(cfg), tokenizer, cfg.sampling.max_prompt_tokens, render=render
    )
    if main:
        if result.n_dropped:
            print(result.summary(), file=sys.stderr)
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        record = {
            "kept": len(result.kept),
            "too_long": result.n_dropped,
            "max_prompt_tokens": result.max_tokens,
            "too_long_names": result.dropped,
        }
        (cfg.run_dir / "prompts.json").write_text(json.dumps(record, indent=2))
    if not result.kept:
        raise ConfigError(
            f"sampling.max_prompt_tokens={result.max_tokens}: every prompt is longer; "
            "raise it or shorten the prompts"
        )
    return result.kept


def resolve_model_path(
    cfg: TrainConfig, *, base_dir: Path | None = None, accelerator: Any = None
) -> Path | str:
    """``model.name_or_path``; ``demo:fit`` fits the demo's base model first, ``random`` builds
    a randomly initialised one from ``model.architecture`` (both saved under ``<run dir>/base``;
    with several processes the main one writes it while the others wait)."""
    if cfg.model.name_or_path == RANDOM:
        out = (base_dir or cfg.run_dir) / "base"
        main = accelerator is None or accelerator.is_main_process
        if main and not (out / "config.json").is_file():
            build_random_base(cfg, out)
        if accelerator is not None:
            accelerator.wait_for_everyone()
        return out
    if cfg.model.name_or_path != DEMO_FIT:
        return cfg.model.name_or_path
    from trainer_client.demo import fit_demo_base

    out = (base_dir or cfg.run_dir) / "base"
    if (out / "config.json").is_file():
        return out
    return fit_demo_base(out, steps=cfg.model.demo_fit_steps, seed=cfg.run.seed)


def build_random_base(cfg: TrainConfig, out: Path) -> Path:
    """Save a model of shape ``model.architecture`` with random weights (seeded by ``run.seed``)
    and its tokenizer (``model.tokenizer``, or the demo's character tokenizer) to ``out``.

    The vocabulary and special-token ids come from the tokenizer, so the two always agree. For
    smoke runs and benchmarks: nothing is downloaded.
    """
    from transformers import AutoTokenizer

    if cfg.model.architecture is None:
        raise ConfigError("model.name_or_path=random needs model.architecture (a config.json)")
    if cfg.model.tokenizer is None:
        from trainer_client.demo import char_tokenizer

        tokenizer = char_tokenizer()
    else:
        tokenizer = AutoTokenizer.from_pretrained(cfg.model.tokenizer)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
    model = random_model(cfg.model.architecture, tokenizer, seed=cfg.run.seed)
    tmp = out.with_name(out.name + ".tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(out)
    return out


def random_model(architecture: dict[str, Any], tokenizer: Any, *, seed: int) -> Any:
    """A causal LM of shape ``architecture`` (a ``config.json``'s fields, ``model_type`` picks
    the class) with random weights seeded by ``seed``; vocabulary and special-token ids are the
    tokenizer's."""
    import torch
    from transformers import AutoModelForCausalLM

    from trainer_client.plan import config_from_architecture

    config = config_from_architecture(
        {
            **architecture,
            "vocab_size": len(tokenizer),
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        }
    )
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config)


# --- the verifier -----------------------------------------------------------------------------


@contextlib.contextmanager
def local_verifier(
    checkers: Sequence[str] = ("math",), *, startup_timeout_s: float = 60.0
) -> Iterator[str]:
    """Run ``python -m verifier_service serve`` on a free loopback port; yields its base URL."""
    from verifier_service.launcher import serve_subprocess

    env = {"SIEVE_CHECKERS": ",".join(checkers), "SIEVE_LOG_LEVEL": "warning"}
    with serve_subprocess(env, startup_timeout_s=startup_timeout_s) as url:
        yield url


@contextlib.contextmanager
def _verifier_for(cfg: TrainConfig) -> Iterator[Any]:
    from trainer_client.client import VerifierClient

    v = cfg.verifier
    with contextlib.ExitStack() as stack:
        url = v.url
        if url is None:
            url = stack.enter_context(_local_verifier_for_all(v.local_checkers))
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


@contextlib.contextmanager
def _local_verifier_for_all(checkers: Sequence[str]) -> Iterator[str]:
    """One local verifier per run: with several processes the main one starts it, the others
    receive its URL, and it stops only once every process is done with it."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        with local_verifier(checkers) as url:
            yield url
        return
    from trainer_client.distributed import process_state

    state = process_state()
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(local_verifier(checkers)) if state.is_main_process else None
        url = _broadcast(url)
        yield url
        state.wait_for_everyone()


def _broadcast(value: Any) -> Any:
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([value], from_process=0)[0]


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


def _quiet_model_loading() -> None:
    """The run has its own progress bar; transformers' per-load bars only clutter it."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def _say(trainer: Any, message: str) -> None:
    if trainer.is_main_process:
        print(message, file=sys.stderr)


if __name__ == "__main__":
    main()
