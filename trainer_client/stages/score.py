"""Stage 3, score: ``log π`` and ``log a`` of the samples, the advantages, and the step's metrics.

The objective turns sequence log-scores and verdicts into one advantage per sample
(its :class:`~trainer_client.objectives.Objective`). Samples whose verdict is ``error`` are left
out of the target: they get advantage 0 and do not enter Ẑ or any group baseline.

``log π(y)`` is read (detached) from the training forward pass instead of a separate scoring pass:
the method is on-policy with one gradient step per batch, so the numbers are the same, and the
pseudo-reward and the gradient use one π. ``log a`` is scored by the same function, in the same
autocast and micro-batches (:meth:`ScoreStage.score`).

Metrics are computed by the functions of :data:`METRICS`, each mapping the step's
:class:`StepBatch` to named figures; add one with :meth:`ScoreStage.add_metric`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from accelerate import Accelerator

from trainer_client.config import TrainConfig
from trainer_client.divergences import is_estimates
from trainer_client.reference import ReferenceModel
from trainer_client.rollout.batch import Samples
from trainer_client.rollout.scoring import token_logprobs
from trainer_client.stages.precision import Precision

__all__ = ["METRICS", "LogprobGap", "MetricFn", "ScoreStage", "StepBatch"]


@dataclass
class StepBatch:
    """What a step trained on and how it went: the metrics' input, kept for inspection."""

    samples: Samples
    verified: torch.Tensor
    failed: torch.Tensor
    #: ``[N]`` ``log π(y)`` as the objective used it.
    policy_logprobs: torch.Tensor
    #: ``[N]`` ``log a(y)``; None when the objective needs no reference.
    base_logprobs: torch.Tensor | None
    advantages: torch.Tensor
    #: The objective's statistics, averaged over the checked samples.
    objective_stats: dict[str, float] = field(default_factory=dict)
    loss: float = math.nan
    grad_norm: float = math.nan
    lr: float = math.nan
    #: ``time/...`` figures of the step, in seconds.
    times: dict[str, float] = field(default_factory=dict)
    #: The slowest chunk's seconds from its submission to its last verdict (each chunk is sent
    #: as soon as it is sampled, so this is the verifier's own latency, not the step's wait).
    verifier_latency_s: float = 0.0
    #: The verifier's own counters (``VerifierClient.stats``), if it has any.
    verifier_stats: dict[str, Any] = field(default_factory=dict)
    #: The α of an α-DPG objective (None for other objectives): the divergence that is logged.
    alpha: float | None = None


MetricFn = Callable[[StepBatch], Mapping[str, float]]


def core_metrics(batch: StepBatch) -> dict[str, float]:
    verified, failed = batch.verified, batch.failed
    checked = (~failed).sum()
    lengths = batch.samples.response_lengths.float()
    texts = batch.samples.texts
    return {
        "loss": batch.loss,
        "lr": batch.lr,
        "grad_norm": batch.grad_norm,
        "pass_rate": float(verified.sum() / checked) if checked else math.nan,
        "samples": float(len(batch.samples)),
        "verifier/errors": float(failed.sum()),
        "verifier/latency_s": batch.verifier_latency_s,
        "response/mean_tokens": float(lengths.mean()),
        "response/distinct_verified": float(
            len({t for t, ok in zip(texts, verified.tolist(), strict=True) if ok})
        ),
        "policy/mean_logprob": float(batch.policy_logprobs.mean()),
        "advantage/mean_abs": float(batch.advantages.abs().mean()),
    }


def reference_metrics(batch: StepBatch) -> dict[str, float]:
    """``policy/ref_logratio_max_abs``: the largest ``|log π(y) − log a(y)|`` over the step's
    checked samples, exactly as the objective used them (≈ 0 at the first step: π = a)."""
    if batch.base_logprobs is None:
        return {}
    keep = ~batch.failed
    if not bool(keep.any()):
        return {"policy/ref_logratio_max_abs": math.nan}
    gap = (batch.policy_logprobs[keep].double() - batch.base_logprobs[keep].double()).abs()
    return {"policy/ref_logratio_max_abs": float(gap.max())}


def objective_metrics(batch: StepBatch) -> dict[str, float]:
    return {f"objective/{key}": value for key, value in batch.objective_stats.items()}


def importance_metrics(batch: StepBatch) -> dict[str, float]:
    """Importance-sampling estimates of the divergences to the target (``is/...``).

    Every figure and its definition: :func:`~trainer_client.divergences.is_estimates`
    (``is/alpha_divergence`` is the objective's own ``D_{f_α}(π‖p)`` when ``batch.alpha`` is set).
    """
    if batch.base_logprobs is None:
        return {}
    keep = ~batch.failed
    if not bool(keep.any()):
        return {}
    estimates = is_estimates(
        batch.policy_logprobs[keep].double(),
        batch.base_logprobs[keep].double().cpu(),
        batch.verified[keep],
        batch.samples.group_ids[keep].cpu(),
        alpha=batch.alpha,
    )
    return {f"is/{key}": float(value) for key, value in estimates.items()}


def verifier_client_metrics(batch: StepBatch) -> dict[str, float]:
    return {
        f"verifier/client_{key}": float(value)
        for key, value in batch.verifier_stats.items()
        if isinstance(value, int | float)
    }


def timing_metrics(batch: StepBatch) -> dict[str, float]:
    times = dict(batch.times)
    step_s = times.get("time/step_s", 0.0)
    wait_s = times.get("time/verify_wait_s", 0.0)
    times["time/verify_wait_frac"] = wait_s / step_s if step_s else 0.0
    tokens = float(batch.samples.response_lengths.sum())
    times["tokens_per_s"] = tokens / step_s if step_s else math.nan
    return times


#: The step's metric functions, in order; later ones win on a name clash.
METRICS: list[MetricFn] = [
    core_metrics,
    reference_metrics,
    objective_metrics,
    importance_metrics,
    verifier_client_metrics,
    timing_metrics,
]


class LogprobGap:
    """``sampling/logprob_gap``: mean |sampler log-prob − training log-prob| of sampled tokens.

    The loop adds each micro-batch's training log-probs (:meth:`add`); the score stage reads the
    step's figure (:meth:`metric`, which also starts the next step afresh). Samples whose
    sampler reported no per-token log-probs (``transformers`` at temperature 1, where the
    training forward *is* the sampler's score) add nothing, and the metric is then omitted.
    """

    def __init__(self) -> None:
        # Sums kept as tensors on the training device: read once a step, in :meth:`metric`,
        # rather than waiting for the device after every micro-batch's forward.
        self._total: torch.Tensor | float = 0.0
        self._tokens: torch.Tensor | int = 0

    @torch.no_grad()
    def add(self, training_tokens: torch.Tensor, part: Samples) -> None:
        if part.sampler_token_logprobs is None:
            return
        device = training_tokens.device
        mask = part.response_mask.to(device).bool()
        sampler = part.sampler_token_logprobs.to(device)
        diff = (sampler - training_tokens.detach().float()).abs()
        self._total = self._total + torch.where(mask, diff, 0.0).sum()
        self._tokens = self._tokens + mask.sum()

    def metric(self, batch: StepBatch | None = None) -> dict[str, float]:
        total, tokens = float(self._total), int(self._tokens)
        self._total, self._tokens = 0.0, 0
        return {"sampling/logprob_gap": total / tokens} if tokens else {}


class ScoreStage:
    """Scores samples under π and ``a`` and turns verdicts into advantages.

    ``log π`` and ``log a`` come from one function (:meth:`score`) under one autocast
    (:class:`~trainer_client.stages.precision.Precision`), over the same micro-batches, with the
    two models in the same dtype: at the first step, before any update, they agree to rounding
    (``policy/ref_logratio_max_abs``). π is the distribution the sampler draws from, at
    ``sampling.temperature`` and ``sampling.top_p``: the pseudo-reward and the gradient use the
    same tempered, nucleus-filtered ``log π``. ``a`` is the base model itself (temperature 1).
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        reference: ReferenceModel | None,
        accelerator: Accelerator,
        precision: Precision | None = None,
        metrics: list[MetricFn] | None = None,
    ) -> None:
        self.config = config
        self.reference = reference
        self.accelerator = accelerator
        self.precision = precision or Precision(accelerator)
        self.metric_fns: list[MetricFn] = list(METRICS if metrics is None else metrics)

    @property
    def alpha(self) -> float | None:
        """The α whose divergence the step logs: ``loss.alpha`` for α-DPG, else None."""
        return self.config.loss.alpha if self.config.objective.uses_alpha else None

    # --- log-scores -------------------------------------------------------------------------

    def score(
        self,
        model: torch.nn.Module,
        part: Samples,
        response_start: int,
        *,
        policy: bool,
    ) -> torch.Tensor:
        """``[n, P+T]`` per-token log-probs of ``part`` under ``model``, in the step's autocast.

        ``policy``: score π (the sampling distribution: temperature and top-p applied), else
        ``a`` (the base model as it is). Grad follows the caller's grad mode.
        """
        sampling = self.config.sampling
        with self.precision.autocast():
            return token_logprobs(
                model,
                part.sequences,
                part.attention_mask,
                part.response_mask,
                temperature=sampling.temperature if policy else 1.0,
                top_p=sampling.top_p if policy else 1.0,
                response_start=response_start,
            )

    @torch.no_grad()
    def reference_tokens(
        self, samples: Samples, micro_batches: Sequence[tuple[torch.Tensor, Samples]]
    ) -> torch.Tensor | None:
        """``[N, P+T]`` per-token ``log a`` (no grad), over the policy's own micro-batches
        (``(row indices, rows)`` of ``samples``); None when the objective needs no reference."""
        if self.reference is None:
            return None
        device = self.reference.device
        out = torch.zeros(samples.sequences.shape, dtype=torch.float32)
        for index, part in micro_batches:
            tokens = self.score(
                self.reference.model, part.to(device), samples.prompt_width, policy=False
            )
            out[index] = tokens.float().cpu()
        return out

    def policy_tokens(
        self, model: torch.nn.Module, part: Samples, response_start: int
    ) -> torch.Tensor:
        """``[n, P+T]`` per-token ``log π`` of ``part`` *with* grad: the training forward."""
        return self.score(model, part, response_start, policy=True)

    def sampled_logprobs(
        self,
        tokens: torch.Tensor,
        samples: Samples,
        index: torch.Tensor,
        base_logprobs: torch.Tensor | None,
    ) -> torch.Tensor:
        """``[n]`` ``log π(y)`` for the objective (detached): the training forward's own numbers,
        so the pseudo-reward and the gradient see one π (an objective that samples ``a``:
        ``log a``)."""
        if not self.config.objective.samples_policy:
            assert base_logprobs is not None
            return base_logprobs[index]
        return tokens.sum(dim=1).detach().float().cpu()

    # --- advantages -------------------------------------------------------------------------

    def advantages(
        self,
        *,
        policy_logprobs: torch.Tensor,
        base_logprobs: torch.Tensor | None,
        verified: torch.Tensor,
        failed: torch.Tensor,
        group_ids: torch.Tensor,
        stats_sum: dict[str, float],
    ) -> torch.Tensor:
        """Advantages of whole prompt groups, ``error`` samples masked out (advantage 0).

        The objective's statistics are added to ``stats_sum`` weighted by the number of checked
        samples (``_weight`` holds the total); :meth:`average_stats` turns them into means.
        """
        loss = self.config.loss
        values = torch.zeros(len(policy_logprobs))
        keep = (~failed).nonzero().squeeze(1)
        if len(keep) == 0:
            return values
        base = policy_logprobs if base_logprobs is None else base_logprobs
        result = self.config.objective.advantages(
            policy_logprobs=policy_logprobs[keep],
            base_logprobs=base[keep].float().cpu(),
            verified=verified[keep],
            group_ids=group_ids[keep],
            alpha=loss.alpha,
            clip=loss.clip,
            z_floor=loss.z_floor,
        )
        values[keep] = result.values.detach().float().cpu()
        weight = float(len(keep))
        for key, value in result.stats.items():
            if isinstance(value, int | float) and math.isfinite(value):
                stats_sum[key] = stats_sum.get(key, 0.0) + weight * float(value)
        stats_sum["_weight"] = stats_sum.get("_weight", 0.0) + weight
        return values

    @staticmethod
    def average_stats(stats_sum: dict[str, float]) -> dict[str, float]:
        weight = stats_sum.get("_weight", 0.0)
        return {
            key: (total / weight if weight else math.nan)
            for key, total in stats_sum.items()
            if key != "_weight"
        }

    # --- metrics ----------------------------------------------------------------------------

    def add_metric(self, fn: MetricFn) -> None:
        """Compute ``fn(batch)``'s figures every step, after the built-in ones."""
        self.metric_fns.append(fn)

    def metrics(self, batch: StepBatch) -> dict[str, float]:
        """This process's metrics of the step, averaged over processes."""
        metrics: dict[str, float] = {}
        for fn in self.metric_fns:
            metrics.update(fn(batch))
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
