"""The training loop: one step is the pipeline sample → verify → score → update.

Each stage has its own module under :mod:`trainer_client.stages`:

- :mod:`~trainer_client.stages.sample`: the step's prompts and their k completions;
- :mod:`~trainer_client.stages.verify`: proofs sent to the verifier; where verdicts arrive;
- :mod:`~trainer_client.stages.score`: ``log π``, ``log a``, the advantages and the metrics;
- :mod:`~trainer_client.stages.update`: the loss, backward, clipping and the optimiser step.

:class:`Trainer` builds the stages, wires one step through them, and owns the run's bookkeeping
(checkpoints, resuming, the tracker). While the verifier works, the step scores the samples under
the frozen reference, so the reference pass costs nothing when the verifier is the bottleneck.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from transformers import AutoModelForCausalLM

from trainer_client import distributed
from trainer_client.checkpoint import load_trainer_state, restore_rng, save_checkpoint
from trainer_client.config import TrainConfig
from trainer_client.data import Problem, RequestFn, build_prompt, proof_request
from trainer_client.reference import ReferenceModel
from trainer_client.rollout.base import TrainingSampler
from trainer_client.rollout.batch import Samples
from trainer_client.rollout.hf import HFSampler
from trainer_client.stages.precision import Precision
from trainer_client.stages.sample import PromptStream, SampledChunk, SampleStage
from trainer_client.stages.score import LogprobGap, ScoreStage, StepBatch
from trainer_client.stages.update import UpdateStage, build_optimizer, build_scheduler
from trainer_client.stages.verify import PendingVerdicts, Verdicts, VerifyStage
from trainer_client.tracking import Tracker
from trainer_client.wire import Verifier

__all__ = [
    "PromptStream",
    "StepBatch",
    "Trainer",
    "Verifier",
    "build_optimizer",
    "build_scheduler",
    "objective_samples_policy",
    "sampling_seed",
]


class Trainer:
    """Owns the policy, its optimiser and schedule, and runs steps.

    ``problems`` are :class:`~trainer_client.data.Problem`; ``prompt_fn`` and ``request_fn``
    default to :func:`~trainer_client.data.build_prompt` and
    :func:`~trainer_client.data.proof_request`. Pass ``accelerator`` for several devices or mixed
    precision; without one, a plain single-process CPU/GPU loop runs. ``sampler`` replaces the
    default ``generate`` sampler (e.g. a :class:`~trainer_client.rollout.VLLMSampler`); one with
    ``load_weights`` gets the policy's weights after every optimiser step.
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        model: torch.nn.Module,
        tokenizer: Any,
        problems: Sequence[Problem],
        verifier: Verifier,
        reference: ReferenceModel | None = None,
        accelerator: Accelerator | None = None,
        tracker: Tracker | None = None,
        prompt_fn: Callable[[Problem], str] | None = None,
        request_fn: RequestFn | None = None,
        sampler: TrainingSampler | None = None,
    ) -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.verifier = verifier
        self.tracker = tracker
        self.step = 0
        self.last_batch: StepBatch | None = None
        if accelerator is None:
            accelerator = distributed.make_accelerator(config.optim.mixed_precision)
        self.accelerator = accelerator

        distributed.check_layout(
            config.sampling.prompts_per_step, config.sampling.k, accelerator.num_processes
        )
        if config.needs_reference and reference is None:
            reference = ReferenceModel.frozen_copy(model, batch_size=config.optim.micro_batch_size)
        self.reference = reference
        if config.model.gradient_checkpointing:
            # Non-reentrant: the form FSDP2 and DDP both support.
            _enable_checkpointing(model)
        model.train()
        _disable_dropout(model)
        # Fused AdamW, except over FSDP2's sharded (DTensor) parameters.
        optimizer = build_optimizer(model, config, fused=not distributed.is_fsdp2(accelerator))
        self.model, self.optimizer = accelerator.prepare(model, optimizer)
        if reference is not None:
            reference.model = distributed.shard_reference(reference.model, accelerator)
        # Stepped by hand once per optimiser step (a prepared scheduler steps once per process).
        self.scheduler = build_scheduler(optimizer, config)

        sampling = config.sampling
        if config.objective.samples_policy:
            sampling_model = self.unwrapped_model
        else:
            assert reference is not None  # the objective needs one: made above
            sampling_model = reference.model
        self.sampler = sampler or HFSampler(
            sampling_model,
            tokenizer,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_new_tokens=sampling.max_new_tokens,
            batch_size=sampling.batch_size,
            seed=sampling_seed(config, accelerator.process_index),
            max_prompt_tokens=sampling.max_prompt_tokens,
            # log π comes from the training forward (one π for the pseudo-reward and gradient).
            return_logprobs=False,
            # Under FSDP2 each draw runs on gathered weights: ``generate``, as it always was.
            lean=not distributed.is_fsdp2(accelerator),
        )
        if hasattr(self.sampler, "stream"):  # its own sampler or a given one, the same rule
            self.sampler.stream = self.sampler.stream and distributed.may_stream_chunks(accelerator)
        if sampler is None and distributed.is_fsdp2(accelerator):
            self.sampler = distributed.FullWeightsSampler(self.sampler)

        self.sampling = SampleStage(
            self.sampler,
            problems,
            config,
            process_index=accelerator.process_index,
            num_processes=accelerator.num_processes,
            prompt_fn=prompt_fn or build_prompt,
        )
        self.verification = VerifyStage(
            verifier,
            config,
            request_fn=request_fn or proof_request,
            process_index=accelerator.process_index,
            workers=VERIFY_WORKERS,
        )
        self.precision = Precision(accelerator)
        self.scoring = ScoreStage(
            config, reference=reference, accelerator=accelerator, precision=self.precision
        )
        self.scoring.add_metric(distributed.world_size_metric(accelerator.num_processes))
        self.logprob_gap = LogprobGap()
        self.scoring.add_metric(self.logprob_gap.metric)
        self.updating = UpdateStage(
            config,
            model=self.model,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            accelerator=accelerator,
            precision=self.precision,
        )

    # --- public API -----------------------------------------------------------------------------

    @property
    def unwrapped_model(self) -> torch.nn.Module:
        return self.accelerator.unwrap_model(self.model)

    @property
    def is_main_process(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def problems(self) -> list[Any]:
        return self.sampling.problems

    @property
    def stream(self) -> PromptStream:
        return self.sampling.stream

    def train_step(self) -> dict[str, float]:
        """Run one optimiser step; returns its metrics (also sent to the tracker).

        The stages overlap: each chunk's proofs go to the verifier as soon as the chunk is
        generated, and its reference pass runs at once; after sampling, the policy's forward
        passes run while the last verdicts arrive, and each micro-batch's backward runs when its
        verdicts are in. The optimiser steps once, after every sample of the step was drawn, so
        the step is exactly on-policy.
        """
        score, update = self.scoring, self.updating
        t_start = time.perf_counter()

        # 1. sample, chunk by chunk; 2. send each chunk to the verifier; its reference pass.
        chunks: list[_ChunkState] = []
        sample_s = reference_s = 0.0
        parts = self.sampling.chunks(self.sampling.next_problems())
        while True:
            t = time.perf_counter()
            chunk = next(parts, None)
            sample_s += time.perf_counter() - t
            if chunk is None:
                break
            pending = self.verification.submit(chunk, self.step)
            batches = self._micro_batches(chunk.samples)
            t = time.perf_counter()
            ref_tokens = score.reference_tokens(chunk.samples, batches)
            reference_s += time.perf_counter() - t
            chunks.append(_ChunkState.start(chunk, pending, batches, ref_tokens))
        t_sampled = time.perf_counter()

        # 3. score and 4. update, micro-batch by micro-batch, as the verdicts arrive.
        step = _StepAccumulator(n_samples=sum(len(c.chunk) for c in chunks))
        micro = [(c, index, part) for c in chunks for index, part in c.micro_batches]
        held: deque[_Forward] = deque()
        for number, (state, index, part) in enumerate(micro):
            last = number == len(micro) - 1
            if last:  # the synchronising forward and backward come after all the others
                while held:
                    self._finish(held.popleft(), step, last=False)
            forward = self._forward(state, index, part, last=last)
            if last:
                self._finish(forward, step, last=True)
                break
            held.append(forward)
            while held and (held[0].state.pending.done() or len(held) > MAX_HELD_FORWARDS):
                self._finish(held.popleft(), step, last=False)

        grad_norm, lr = update.step(self.sampler if objective_samples_policy(self.config) else None)
        self.step += 1
        t_end = time.perf_counter()

        verdicts = Verdicts.concat([c.pending.result() for c in chunks])
        base = [c.base_logprobs for c in chunks if c.base_logprobs is not None]
        self.last_batch = StepBatch(
            samples=Samples.concat(
                [c.chunk.samples for c in chunks], pad_id=self.tokenizer.pad_token_id or 0
            ),
            verified=verdicts.verified,
            failed=verdicts.failed,
            policy_logprobs=torch.cat([c.policy_logprobs for c in chunks]),
            base_logprobs=torch.cat(base) if base else None,
            advantages=torch.cat([c.advantages for c in chunks]),
            objective_stats=score.average_stats(step.stats_sum),
            loss=float(step.loss),
            grad_norm=grad_norm,
            lr=lr,
            times={
                "time/sample_s": sample_s,
                "time/reference_s": reference_s,
                "time/verify_wait_s": sum(c.pending.wait_s for c in chunks),
                "time/update_s": t_end - t_sampled,
                "time/step_s": t_end - t_start,
            },
            verifier_latency_s=verdicts.latency_s,
            verifier_stats=_stats_of(self.verifier),
            alpha=score.alpha,
        )
        metrics = score.metrics(self.last_batch)
        if self.tracker is not None and self.is_main_process:
            self.tracker.log(metrics, self.step)
        return metrics

    def train(
        self,
        max_steps: int | None = None,
        *,
        on_step: Callable[[int, dict[str, float]], None] | None = None,
    ) -> list[dict[str, float]]:
        """Run until ``max_steps`` (default ``run.max_steps``), saving every ``run.save_every``."""
        cfg = self.config
        max_steps = cfg.run.max_steps if max_steps is None else max_steps
        history = []
        while self.step < max_steps:
            metrics = self.train_step()
            history.append(metrics)
            if on_step is not None:
                on_step(self.step, metrics)
            every = cfg.run.save_every
            if (every and self.step % every == 0) or self.step == max_steps:
                self.save()
        return history

    def save(self, path: str | Path | None = None) -> Path:
        """Write ``<run dir>/step_<N>`` (or ``path``); only the main process writes."""
        path = Path(path) if path is not None else self.config.run_dir / f"step_{self.step}"
        self.accelerator.wait_for_everyone()
        # Under FSDP2 every process takes part in gathering the full state.
        model_state = optimizer_state = None
        if distributed.is_fsdp2(self.accelerator):
            model_state, optimizer_state = distributed.full_state_dicts(
                self.model, self.optimizer, self.accelerator
            )
        if self.is_main_process:
            save_checkpoint(
                path,
                model=self.unwrapped_model,
                model_state=model_state,
                optimizer_state=optimizer_state,
                tokenizer=self.tokenizer,
                optimizer=self.optimizer,
                scheduler=self.scheduler,
                trainer_state={
                    "step": self.step,
                    "stream": self.stream.state_dict(),
                    "sampler": self.sampler.state_dict(),
                    "precision": self.precision.state_dict(),
                },
                config_yaml=self.config.to_yaml(),
            )
        self.accelerator.wait_for_everyone()
        return path

    def load(self, path: str | Path, *, weights: bool = True) -> None:
        """Continue from a checkpoint: the next step is the one the saved run would have taken.

        ``weights=False`` when the policy was already built from ``path``.
        """
        state = load_trainer_state(path)
        if weights:
            saved = AutoModelForCausalLM.from_pretrained(
                path, dtype=_dtype_of(self.unwrapped_model)
            )
            self.unwrapped_model.load_state_dict(saved.state_dict())
        distributed.load_full_optimizer_state(
            self.model, self.optimizer, state["optimizer"], self.accelerator
        )
        self.scheduler.load_state_dict(state["scheduler"])
        self.stream.load_state_dict(state["stream"])
        self.sampler.load_state_dict(state["sampler"])
        self.precision.load_state_dict(state.get("precision", {}))
        self.step = int(state["step"])
        restore_rng(state["rng"])

    def close(self) -> None:
        self.verification.close()
        if self.tracker is not None:
            self.tracker.close()

    # --- parts of a step ------------------------------------------------------------------------

    def _forward(
        self, state: _ChunkState, index: torch.Tensor, part: Samples, *, last: bool
    ) -> _Forward:
        """The policy's training forward on rows ``index`` of a chunk, ``part`` (its graph is
        kept)."""
        with self.updating.sync(last):
            tokens = self.scoring.policy_tokens(self.model, part, state.chunk.samples.prompt_width)
        if not self.config.sampling.tempered:  # the engine reports raw (T = 1, no top-p) ones
            self.logprob_gap.add(tokens, part)
        return _Forward(state=state, index=index, part=part, tokens=tokens)

    def _finish(self, forward: _Forward, step: _StepAccumulator, *, last: bool) -> None:
        """Wait for the micro-batch's verdicts, score it, and run its backward."""
        state, index = forward.state, forward.index
        verdicts = state.pending.result()
        score, update = self.scoring, self.updating
        base = state.base_logprobs
        with update.sync(last):
            sampled = score.sampled_logprobs(forward.tokens, state.chunk.samples, index, base)
            state.policy_logprobs[index] = sampled
            advantages = score.advantages(
                policy_logprobs=sampled,
                base_logprobs=None if base is None else base[index],
                verified=verdicts.verified[index],
                failed=verdicts.failed[index],
                group_ids=state.chunk.samples.group_ids[index],
                stats_sum=step.stats_sum,
            )
            state.advantages[index] = advantages
            loss = update.loss(
                forward.tokens,
                forward.part.response_mask,
                advantages,
                None if state.ref_tokens is None else state.ref_tokens[index],
                share=len(index) / step.n_samples,
            )
            step.loss += update.backward(loss)

    # --- helpers --------------------------------------------------------------------------------

    def _micro_batches(self, samples: Samples) -> list[tuple[torch.Tensor, Samples]]:
        """Micro-batches made of whole prompt groups: their row indices and their rows, moved
        to the training device once for the reference pass and the policy's forward."""
        k = self.config.sampling.k
        n = len(samples)
        size = self.config.optim.micro_batch_size or n
        per = max(1, size // k) * k
        device = self.accelerator.device
        indices = [torch.arange(start, min(start + per, n)) for start in range(0, n, per)]
        return [(index, samples.select(index).to(device)) for index in indices]


def _enable_checkpointing(model: torch.nn.Module) -> None:
    """Non-reentrant activation checkpointing: the form FSDP2 and DDP both support."""
    enable = getattr(model, "activation_checkpointing_enable", None)
    if enable is not None:  # transformers >= 5.24
        enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        hf_model: Any = model  # a transformers model
        hf_model.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs={"use_reentrant": False}
        )


#: Chunks being verified at once (each a request of the client, which has its own concurrency).
VERIFY_WORKERS = 4

#: Training forwards kept (with their graphs) while their verdicts are still on the way; past
#: this the oldest one waits for its verdicts. Bounds the activation memory the overlap costs.
MAX_HELD_FORWARDS = 2


@dataclass
class _ChunkState:
    """A sampled chunk on its way through the step."""

    chunk: SampledChunk
    pending: PendingVerdicts
    #: Its micro-batches (row indices, rows): the reference pass and the policy's share them.
    micro_batches: list[tuple[torch.Tensor, Samples]]
    ref_tokens: torch.Tensor | None
    base_logprobs: torch.Tensor | None
    policy_logprobs: torch.Tensor
    advantages: torch.Tensor

    @classmethod
    def start(
        cls,
        chunk: SampledChunk,
        pending: PendingVerdicts,
        micro_batches: list[tuple[torch.Tensor, Samples]],
        ref_tokens: torch.Tensor | None,
    ) -> _ChunkState:
        n = len(chunk)
        return cls(
            chunk=chunk,
            pending=pending,
            micro_batches=micro_batches,
            ref_tokens=ref_tokens,
            base_logprobs=None if ref_tokens is None else ref_tokens.sum(dim=1).float().cpu(),
            policy_logprobs=torch.empty(n),
            advantages=torch.zeros(n),
        )


@dataclass
class _Forward:
    """A micro-batch whose training forward ran; its backward waits for the verdicts."""

    state: _ChunkState
    index: torch.Tensor
    part: Samples
    tokens: torch.Tensor


@dataclass
class _StepAccumulator:
    n_samples: int
    #: The step's loss so far: a tensor on the model's device once a backward ran.
    loss: torch.Tensor | float = 0.0
    stats_sum: dict[str, float] = field(default_factory=dict)


def sampling_seed(config: TrainConfig, process_index: int) -> int:
    """The sampler's seed on process ``process_index``: each process draws its own stream."""
    return config.run.seed + 7919 * process_index


def objective_samples_policy(config: TrainConfig) -> bool:
    """Whether samples come from the policy (else from the base ``a``: its weights never
    change, so a sampler with its own copy gets no weight push)."""
    return config.objective.samples_policy


def _disable_dropout(model: torch.nn.Module) -> None:
    """Dropout off in the policy: its training forward gives the ``log π`` the objective uses,
    which must be the distribution the samples were drawn from (``generate`` runs in eval
    mode). Modules stay in train mode, so gradient checkpointing still applies."""
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


def _stats_of(verifier: Any) -> dict[str, Any]:
    stats = getattr(verifier, "stats", None)
    return dict(stats) if isinstance(stats, dict) else {}


def _dtype_of(model: torch.nn.Module) -> torch.dtype:
    return next(model.parameters()).dtype
