"""Building a run from its config: models, reference, problems, resume, and the run itself.

:func:`build_trainer` turns a :class:`~trainer_client.config.TrainConfig` and a verifier into a
:class:`~trainer_client.loop.Trainer` (tokenizer, policy, frozen reference, sampler, problems
that fit the prompt budget, tracker, and the checkpoint to resume from); :func:`run_training`
trains it to ``run.max_steps``. The CLI (:mod:`trainer_client.train`) and the examples call
these; nothing here parses arguments.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from trainer_client.checkpoint import latest_checkpoint, load_trainer_state
from trainer_client.config import ConfigError, TrainConfig
from trainer_client.data import Problem, PromptRenderer, filter_long_prompts, load_problems
from trainer_client.distributed import is_fsdp2, make_accelerator
from trainer_client.local_verifier import verifier_for
from trainer_client.loop import Trainer, sampling_seed
from trainer_client.plan import config_from_architecture
from trainer_client.reference import ReferenceModel
from trainer_client.rollout.vllm import VLLMSampler
from trainer_client.tracking import Tracker, plot_metrics
from trainer_client.wire import Verifier
from verifier_service.vendored import data_file

__all__ = [
    "build_random_base",
    "build_trainer",
    "load_run_problems",
    "random_model",
    "resolve_model_path",
    "run_training",
]

#: Called after every step with the step number and its metrics (a progress bar).
StepCallback = Callable[[int, dict[str, float]], None]


def run_training(
    cfg: TrainConfig,
    *,
    verifier: Verifier | None = None,
    problems: Sequence[Problem] | None = None,
) -> Path:
    """Train ``cfg`` to ``run.max_steps``; returns the last checkpoint directory.

    Without ``verifier`` the run opens its own (:func:`~trainer_client.local_verifier.
    verifier_for`); without ``problems`` it reads ``data.path``.
    """
    with contextlib.ExitStack() as stack:
        if verifier is None:
            verifier = stack.enter_context(verifier_for(cfg))
        trainer = build_trainer(cfg, verifier, problems=problems)
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


def build_trainer(
    cfg: TrainConfig,
    verifier: Verifier,
    *,
    accelerator: Accelerator | None = None,
    problems: Sequence[Problem] | None = None,
) -> Trainer:
    """Load tokenizer, policy, reference and problems; resume if asked; return a Trainer.

    ``problems`` replaces ``data.path`` (a caller with problems of its own, such as the CPU
    demo); either way those whose prompt exceeds ``sampling.max_prompt_tokens`` are left out.
    """
    accelerator = accelerator or make_accelerator(cfg.optim.mixed_precision)
    set_seed(cfg.run.seed)
    base = resolve_model_path(cfg, accelerator=accelerator)
    checkpoint = _resume_from(cfg)
    load = {"trust_remote_code": cfg.model.trust_remote_code}
    tokenizer = _load_tokenizer(str(cfg.model.tokenizer or base), **load)
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
    if problems is None:
        problems = load_run_problems(cfg)
    kept = _fitting_problems(cfg, problems, tokenizer, renderer, main=accelerator.is_main_process)
    trainer = Trainer(
        cfg,
        model=policy,
        sampler=sampler,
        tokenizer=tokenizer,
        problems=kept,
        prompt_fn=renderer,
        verifier=verifier,
        reference=reference,
        accelerator=accelerator,
        tracker=tracker,
    )
    if checkpoint is not None:
        trainer.load(checkpoint, weights=False)
    return trainer


def load_run_problems(cfg: TrainConfig) -> list[Problem]:
    """The training problems of ``data.path`` (``data.split``, ``data.limit``)."""
    if cfg.data.path is None:
        raise ConfigError(
            "data.path: required (a problems file), unless the caller passes problems"
        )
    return load_problems(_data_path(cfg.data.path), split=cfg.data.split, limit=cfg.data.limit)


def _fitting_problems(
    cfg: TrainConfig,
    problems: Sequence[Problem],
    tokenizer: PreTrainedTokenizerBase,
    render: PromptRenderer,
    *,
    main: bool,
) -> list[Problem]:
    """The training problems whose prompt fits ``sampling.max_prompt_tokens``.

    Longer ones are left out, as the paper's pipeline does, and counted: the main process says
    how many and lists them in ``<run dir>/prompts.json``.
    """
    result = filter_long_prompts(
        list(problems), tokenizer, cfg.sampling.max_prompt_tokens, render=render
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
    cfg: TrainConfig, *, base_dir: Path | None = None, accelerator: Accelerator | None = None
) -> Path | str:
    """``model.name_or_path``; with ``model.random_init`` a randomly initialised model of shape
    ``model.architecture``, saved once under ``<run dir>/base`` (or ``base_dir/base``; with
    several processes the main one writes it while the others wait)."""
    if not cfg.model.random_init:
        assert cfg.model.name_or_path is not None  # the config requires one without random_init
        return cfg.model.name_or_path
    out = (base_dir or cfg.run_dir) / "base"
    main = accelerator is None or accelerator.is_main_process
    if main and not (out / "config.json").is_file():
        build_random_base(cfg, out)
    if accelerator is not None:
        accelerator.wait_for_everyone()
    return out


def build_random_base(cfg: TrainConfig, out: Path) -> Path:
    """Save a model of shape ``model.architecture`` with random weights (seeded by ``run.seed``)
    and its tokenizer (``model.tokenizer``) to ``out``.

    The vocabulary and special-token ids come from the tokenizer, so the two always agree. For
    smoke runs and benchmarks: nothing is downloaded.
    """
    if cfg.model.architecture is None or cfg.model.tokenizer is None:
        raise ConfigError("model.random_init needs model.architecture and model.tokenizer")
    tokenizer = _load_tokenizer(cfg.model.tokenizer)
    model = random_model(cfg.model.architecture, tokenizer, seed=cfg.run.seed)
    tmp = out.with_name(out.name + ".tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(out)
    return out


def random_model(
    architecture: dict[str, Any], tokenizer: PreTrainedTokenizerBase, *, seed: int
) -> PreTrainedModel:
    """A causal LM of shape ``architecture`` (a ``config.json``'s fields, ``model_type`` picks
    the class) with random weights seeded by ``seed``; vocabulary and special-token ids are the
    tokenizer's."""
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
    model: PreTrainedModel = AutoModelForCausalLM.from_config(config)
    return model


# --- helpers ----------------------------------------------------------------------------------


def _load_tokenizer(path: str, **load: Any) -> PreTrainedTokenizerBase:
    """A tokenizer with a pad token (EOS when it has none)."""
    tokenizer = AutoTokenizer.from_pretrained(path, **load)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


@contextlib.contextmanager
def _progress(trainer: Trainer, cfg: TrainConfig) -> Iterator[StepCallback | None]:
    if not (cfg.logging.progress and trainer.is_main_process):
        yield None
        return
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


def _resume_from(cfg: TrainConfig) -> Path | None:
    resume = cfg.run.resume
    if resume is None:
        return None
    if resume == "latest":
        return latest_checkpoint(cfg.run_dir)
    path = Path(resume)
    if not path.is_dir():
        raise ConfigError(f"run.resume: no checkpoint directory at {path}")
    return path


def _checkpoint_step(path: Path | None) -> int | None:
    if path is None:
        return None
    return int(load_trainer_state(path)["step"])


def _data_path(path: str) -> Path:
    """A data path as given, or else the vendored data set of that name (``data/``), so that a
    config's ``data/...`` works from any directory of a source checkout."""
    candidate = Path(path)
    if candidate.exists():
        return candidate
    vendored = data_file(candidate.name)
    return vendored if vendored.exists() else candidate


def _torch_dtype(name: str) -> torch.dtype:
    return {
        "auto": torch.float32,
        "float32": torch.float32,
        "bfloat16": torch.bfloat16,
        "float16": torch.float16,
    }[name]


def _say(trainer: Trainer, message: str) -> None:
    if trainer.is_main_process:
        print(message, file=sys.stderr)
