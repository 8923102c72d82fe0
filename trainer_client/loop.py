"""One α-DPG (or baseline) step, and the loop that repeats it with checkpoints and metrics.

A step, on every process for its shard of prompts:

1. draw k completions per prompt from the policy (:mod:`~trainer_client.sampler`);
2. send them to the verifier *and, while it works*, score them under the frozen reference ``a``
   (the two overlap: the reference pass costs nothing when the verifier is the bottleneck);
3. one forward+backward of the policy per micro-batch of whole prompt groups. At temperature 1
   and top-p 1 the sampling policy is the model itself, so ``log π(y)`` is read (detached) from
   this same forward pass instead of a separate scoring pass: the method is on-policy with one
   gradient step per batch, so the numbers are the same;
4. clip, step AdamW and the schedule, and log.

Samples whose verdict is ``error`` (a system fault after the client's retries, not a wrong proof)
are left out of the target: they get advantage 0 and do not enter Ẑ or any group baseline.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from trainer_client.checkpoint import load_trainer_state, restore_rng, save_checkpoint
from trainer_client.client import Verifier, verify_non_empty
from trainer_client.config import TrainConfig
from trainer_client.losses import compute_advantages, kl_penalty, reinforce_loss
from trainer_client.reference import ReferenceModel
from trainer_client.sampler import HFSampler, Samples, token_logprobs
from trainer_client.tracking import Tracker

__all__ = ["PromptStream", "StepBatch", "Trainer", "Verifier", "build_optimizer", "build_scheduler"]


class PromptStream:
    """Problems in a seeded order, epoch after epoch; its position is part of a checkpoint."""

    def __init__(self, size: int, *, seed: int = 0, shuffle: bool = True) -> None:
        if size < 1:
            raise ValueError("data: no problems to train on")
        self.size = size
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.position = 0
        self._order = self._permutation()

    def next(self, n: int) -> list[int]:
        """The indices of the next ``n`` problems."""
        picked: list[int] = []
        while len(picked) < n:
            if self.position == self.size:
                self.epoch += 1
                self.position = 0
                self._order = self._permutation()
            take = min(n - len(picked), self.size - self.position)
            picked.extend(self._order[self.position : self.position + take])
            self.position += take
        return picked

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self._order = self._permutation()

    def _permutation(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.size))
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return torch.randperm(self.size, generator=generator).tolist()


@dataclass
class StepBatch:
    """What the last step trained on, kept for inspection and debugging."""

    samples: Samples
    verified: torch.Tensor
    failed: torch.Tensor
    policy_logprobs: torch.Tensor
    base_logprobs: torch.Tensor | None
    advantages: torch.Tensor


@dataclass
class _Verification:
    verified: torch.Tensor
    failed: torch.Tensor
    latency_s: float
    wait_s: float


class Trainer:
    """Owns the policy, its optimiser and schedule, and runs steps.

    ``problems`` are :class:`~trainer_client.data.Problem`; ``prompt_fn`` and ``request_fn``
    default to :func:`~trainer_client.data.build_prompt` and
    :func:`~trainer_client.data.proof_request`. Pass ``accelerator`` for several devices or mixed
    precision; without one, a plain single-process CPU/GPU loop runs.
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        model: torch.nn.Module,
        tokenizer: Any,
        problems: Sequence[Any],
        verifier: Verifier,
        reference: ReferenceModel | None = None,
        accelerator: Any = None,
        tracker: Tracker | None = None,
        prompt_fn: Callable[[Any], str] | None = None,
        request_fn: Callable[..., dict] | None = None,
        sampler: Any = None,
    ) -> None:
        from trainer_client import data as data_module

        self.config = config
        self.tokenizer = tokenizer
        self.problems = list(problems)
        self.verifier = verifier
        self.tracker = tracker
        self.prompt_fn = prompt_fn or data_module.build_prompt
        self.request_fn = request_fn or data_module.proof_request
        self.step = 0
        self.last_batch: StepBatch | None = None
        if accelerator is None:
            from accelerate import Accelerator

            accelerator = Accelerator(mixed_precision=config.optim.mixed_precision)
        self.accelerator = accelerator

        objective = config.loss.objective
        needs_reference = objective in ("alpha_dpg", "rft") or config.loss.kl_coef > 0
        if needs_reference and reference is None:
            reference = ReferenceModel.frozen_copy(model, batch_size=config.optim.micro_batch_size)
        self.reference = reference
        if config.model.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        model.train()
        optimizer = build_optimizer(model, config)
        self.model, self.optimizer = accelerator.prepare(model, optimizer)
        # Stepped by hand once per optimiser step (a prepared scheduler steps once per process).
        self.scheduler = build_scheduler(optimizer, config)

        sampling = config.sampling
        self.exact_sampling = sampling.temperature == 1.0 and sampling.top_p == 1.0
        sampling_model = reference.model if objective == "rft" else self.unwrapped_model
        #: ``sampler`` replaces the default ``generate`` sampler (e.g. a
        #: :class:`~trainer_client.sampler.VLLMSampler`); one with ``load_weights`` gets the
        #: policy's weights after every optimiser step.
        self.sampler = sampler or HFSampler(
            sampling_model,
            tokenizer,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_new_tokens=sampling.max_new_tokens,
            batch_size=sampling.batch_size,
            seed=config.run.seed + 7919 * accelerator.process_index,
            max_prompt_tokens=sampling.max_prompt_tokens,
            return_logprobs=not self.exact_sampling and objective != "rft",
        )
        self.stream = PromptStream(
            len(self.problems), seed=config.run.seed, shuffle=config.data.shuffle
        )
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sieve-verify")

    # --- public API -----------------------------------------------------------------------------

    @property
    def unwrapped_model(self) -> torch.nn.Module:
        return self.accelerator.unwrap_model(self.model)

    @property
    def is_main_process(self) -> bool:
        return self.accelerator.is_main_process

    def train_step(self) -> dict[str, float]:
        """Run one optimiser step; returns its metrics (also sent to the tracker)."""
        cfg = self.config
        acc = self.accelerator
        t_start = time.perf_counter()
        problems = self._next_problems()
        prompts = [self.prompt_fn(p) for p in problems]
        samples = self.sampler.sample(prompts, cfg.sampling.k)
        t_sampled = time.perf_counter()

        proofs = [
            self.request_fn(
                problems[i // cfg.sampling.k],
                prompts[i // cfg.sampling.k],
                text,
                id=f"{self.step}-{acc.process_index}-{i}",
                timeout_s=cfg.verifier.proof_timeout_s,
            )
            for i, text in enumerate(samples.texts)
        ]
        pending = self._pool.submit(self._verify, proofs)
        ref_tokens = None
        if self.reference is not None:
            ref_tokens = self.reference.token_logprobs(samples)
        t_reference = time.perf_counter()
        verification = pending.result()
        t_verified = time.perf_counter()
        verification.wait_s = t_verified - t_reference

        base_logprobs = None if ref_tokens is None else ref_tokens.sum(dim=1).float().cpu()
        n_local = len(samples)
        l_max = cfg.l_max
        device = acc.device
        policy_logprobs = torch.empty(n_local)
        advantages = torch.zeros(n_local)
        stats_sum: dict[str, float] = {}
        loss_total = 0.0
        micro = self._micro_batches(samples)
        for number, index in enumerate(micro):
            part = samples.select(index).to(device)
            sync = number == len(micro) - 1
            context = acc.no_sync(self.model) if not sync else nullcontext()
            with context, acc.autocast():
                tokens = token_logprobs(
                    self.model,
                    part.sequences,
                    part.attention_mask,
                    part.response_mask,
                    response_start=samples.prompt_width,
                )
                seq = tokens.sum(dim=1).detach().float().cpu()
                if cfg.loss.objective == "rft":
                    sampled = base_logprobs[index]
                elif self.exact_sampling:
                    sampled = seq
                else:
                    sampled = samples.policy_logprobs[index].float().cpu()
                policy_logprobs[index] = sampled
                adv = self._advantages(
                    policy_logprobs=sampled,
                    base_logprobs=None if base_logprobs is None else base_logprobs[index],
                    verified=verification.verified[index],
                    failed=verification.failed[index],
                    group_ids=samples.group_ids[index],
                    stats_sum=stats_sum,
                )
                advantages[index] = adv
                share = len(index) / n_local
                loss = reinforce_loss(tokens, part.response_mask, adv.to(device), l_max) * share
                if cfg.loss.kl_coef > 0:
                    ref_part = ref_tokens[index].to(device)
                    kl = kl_penalty(tokens, ref_part, part.response_mask, l_max)
                    loss = loss + cfg.loss.kl_coef * kl * share
            acc.backward(loss)
            loss_total += float(loss.detach())

        grad_norm = math.nan
        if cfg.optim.max_grad_norm is not None:
            grad_norm = float(acc.clip_grad_norm_(self.model.parameters(), cfg.optim.max_grad_norm))
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if hasattr(self.sampler, "load_weights") and objective_samples_policy(cfg):
            self.sampler.load_weights(self.unwrapped_model.named_parameters())
        self.step += 1
        t_end = time.perf_counter()
        self.last_batch = StepBatch(
            samples=samples,
            verified=verification.verified,
            failed=verification.failed,
            policy_logprobs=policy_logprobs,
            base_logprobs=base_logprobs,
            advantages=advantages,
        )

        metrics = self._metrics(
            samples=samples,
            verification=verification,
            policy_logprobs=policy_logprobs,
            base_logprobs=base_logprobs,
            advantages=advantages,
            stats_sum=stats_sum,
            loss=loss_total,
            grad_norm=grad_norm,
            lr=lr,
            times={
                "time/sample_s": t_sampled - t_start,
                "time/reference_s": t_reference - t_sampled,
                "time/verify_wait_s": verification.wait_s,
                "time/update_s": t_end - t_verified,
                "time/step_s": t_end - t_start,
            },
        )
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
        if self.is_main_process:
            save_checkpoint(
                path,
                model=self.unwrapped_model,
                tokenizer=self.tokenizer,
                optimizer=self.optimizer,
                scheduler=self.scheduler,
                trainer_state={
                    "step": self.step,
                    "stream": self.stream.state_dict(),
                    "sampler": self.sampler.state_dict(),
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
            from transformers import AutoModelForCausalLM

            saved = AutoModelForCausalLM.from_pretrained(
                path, dtype=_dtype_of(self.unwrapped_model)
            )
            self.unwrapped_model.load_state_dict(saved.state_dict())
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.stream.load_state_dict(state["stream"])
        self.sampler.load_state_dict(state["sampler"])
        self.step = int(state["step"])
        restore_rng(state["rng"])

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        if self.tracker is not None:
            self.tracker.close()

    # --- parts of a step ------------------------------------------------------------------------

    def _next_problems(self) -> list[Any]:
        """This process's shard of the step's prompts (every process advances the same stream)."""
        acc = self.accelerator
        total = self.config.sampling.prompts_per_step
        indices = self.stream.next(total)
        shard = indices[acc.process_index :: acc.num_processes]
        if not shard:
            raise ValueError(
                f"sampling.prompts_per_step={total} is smaller than the "
                f"{acc.num_processes} processes"
            )
        return [self.problems[i] for i in shard]

    def _verify(self, proofs: list[dict]) -> _Verification:
        """Verdicts for ``proofs``; an empty completion is wrong without asking the service
        (which refuses empty code as bad input, and a refusal must not read as a system error)."""
        start = time.perf_counter()
        results = verify_non_empty(self.verifier, proofs)
        latency = time.perf_counter() - start
        verified = torch.tensor([bool(r.ok) for r in results], dtype=torch.bool)
        failed = torch.tensor([bool(r.failed) for r in results], dtype=torch.bool)
        return _Verification(verified=verified, failed=failed, latency_s=latency, wait_s=0.0)

    def _micro_batches(self, samples: Samples) -> list[torch.Tensor]:
        """Row indices of micro-batches made of whole prompt groups."""
        k = self.config.sampling.k
        n = len(samples)
        size = self.config.optim.micro_batch_size or n
        per = max(1, size // k) * k
        return [torch.arange(start, min(start + per, n)) for start in range(0, n, per)]

    def _advantages(
        self,
        *,
        policy_logprobs: torch.Tensor,
        base_logprobs: torch.Tensor | None,
        verified: torch.Tensor,
        failed: torch.Tensor,
        group_ids: torch.Tensor,
        stats_sum: dict[str, float],
    ) -> torch.Tensor:
        """Advantages with ``error`` samples masked out of the target (advantage 0)."""
        values = torch.zeros(len(policy_logprobs))
        keep = (~failed).nonzero().squeeze(1)
        if len(keep) == 0:
            return values
        base = policy_logprobs if base_logprobs is None else base_logprobs
        result = compute_advantages(
            self.config.loss.objective,
            policy_logprobs=policy_logprobs[keep],
            base_logprobs=base[keep].float().cpu(),
            verified=verified[keep],
            group_ids=group_ids[keep],
            alpha=self.config.loss.alpha,
            clip=self.config.loss.clip,
            z_floor=self.config.loss.z_floor,
        )
        values[keep] = result.values.detach().float().cpu()
        weight = float(len(keep))
        for key, value in result.stats.items():
            if isinstance(value, int | float) and math.isfinite(value):
                stats_sum[key] = stats_sum.get(key, 0.0) + weight * float(value)
        stats_sum["_weight"] = stats_sum.get("_weight", 0.0) + weight
        return values

    def _metrics(
        self,
        *,
        samples: Samples,
        verification: _Verification,
        policy_logprobs: torch.Tensor,
        base_logprobs: torch.Tensor | None,
        advantages: torch.Tensor,
        stats_sum: dict[str, float],
        loss: float,
        grad_norm: float,
        lr: float,
        times: dict[str, float],
    ) -> dict[str, float]:
        verified, failed = verification.verified, verification.failed
        checked = (~failed).sum()
        lengths = samples.response_lengths.float()
        metrics: dict[str, float] = {
            "loss": loss,
            "lr": lr,
            "grad_norm": grad_norm,
            "pass_rate": float(verified.sum() / checked) if checked else math.nan,
            "samples": float(len(samples)),
            "verifier/errors": float(failed.sum()),
            "verifier/latency_s": verification.latency_s,
            "response/mean_tokens": float(lengths.mean()),
            "response/distinct_verified": float(
                len({t for t, ok in zip(samples.texts, verified.tolist(), strict=True) if ok})
            ),
            "policy/mean_logprob": float(policy_logprobs.mean()),
            "advantage/mean_abs": float(advantages.abs().mean()),
        }
        weight = stats_sum.pop("_weight", 0.0)
        for key, total in stats_sum.items():
            metrics[f"objective/{key}"] = total / weight if weight else math.nan
        if base_logprobs is not None:
            from trainer_client.divergences import is_estimates

            keep = ~failed
            if bool(keep.any()):
                estimates = is_estimates(
                    policy_logprobs[keep].double(),
                    base_logprobs[keep].double().cpu(),
                    verified[keep],
                    samples.group_ids[keep].cpu(),
                )
                for key, value in estimates.items():
                    metrics[f"is/{key}"] = float(value)
        stats = getattr(self.verifier, "stats", None)
        if isinstance(stats, dict):
            for key, value in stats.items():
                if isinstance(value, int | float):
                    metrics[f"verifier/client_{key}"] = float(value)
        metrics.update(times)
        step_s = times["time/step_s"]
        metrics["time/verify_wait_frac"] = times["time/verify_wait_s"] / step_s if step_s else 0.0
        metrics["tokens_per_s"] = float(lengths.sum()) / step_s if step_s else math.nan
        return self._reduce(metrics)

    def _reduce(self, metrics: dict[str, float]) -> dict[str, float]:
        """Average metrics over processes (sums for counts are per-process means times N)."""
        acc = self.accelerator
        if acc.num_processes == 1:
            return metrics
        keys = sorted(metrics)
        values = torch.tensor([metrics[k] for k in keys], dtype=torch.float64, device=acc.device)
        values = acc.reduce(values, reduction="mean")
        return dict(zip(keys, values.tolist(), strict=True))


def objective_samples_policy(config: TrainConfig) -> bool:
    """Whether samples come from the policy (all objectives but ``rft``, which samples ``a``)."""
    return config.loss.objective != "rft"


def build_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    optim = config.optim
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(
        params, lr=optim.lr, betas=optim.betas, eps=optim.eps, weight_decay=optim.weight_decay
    )


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> Any:
    """Linear warm-up, then constant / linear decay / cosine (``transformers`` schedules)."""
    from transformers import get_scheduler

    optim = config.optim
    total = max(1, config.run.max_steps)
    warmup = (
        optim.warmup_steps if optim.warmup_steps is not None else round(optim.warmup_ratio * total)
    )
    name = {"constant": "constant_with_warmup", "linear": "linear", "cosine": "cosine"}[
        optim.schedule
    ]
    return get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=total)


def _dtype_of(model: torch.nn.Module) -> torch.dtype:
    return next(model.parameters()).dtype
