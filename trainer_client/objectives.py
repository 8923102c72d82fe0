"""The objectives: each one an advantage function and the flags the loop needs, in one registry.

Every objective maps one verified batch — sequence log-probs under the sampling policy π and
the frozen base ``a``, 0/1 verdicts and prompt ids, one entry per sample — to one advantage per
sample. The loss is then the same for all of them (:func:`trainer_client.losses.reinforce_loss`),
so objectives can be compared with nothing else changed:

``alpha_dpg``  the method: pseudo-reward ``R = min((p/π)^{1−α} − 1, M)`` toward the filtered
               target ``p = a·v/Ẑ``, leave-one-out baseline (method notes, steps 2–5).
``dr_grpo``    binary reward, group-mean baseline, no std normalisation (Dr. GRPO).
``rloo``       binary reward, leave-one-out baseline (α-DPG's α → 1 limit, up to scale).
``rft``        rejection-sampling fine-tuning: α = 0 with samples drawn from the *base* model.

Each is registered with :func:`register_objective` (as verl registers its advantage
estimators): one :class:`Objective` record holds the function and what the rest of the trainer
needs to know (does it score the reference, whose samples does it use, is ``loss.alpha`` its
α). The config validates ``loss.objective`` against :data:`OBJECTIVES`, and no other module
compares objective names.

All arithmetic is in log space: sequence log-probs of a thousand tokens are far below the
range of ``exp``. Advantages are constants of the gradient step (inputs are detached), come
back in the inputs' floating dtype (float64 in, float64 out) and are never NaN or inf.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import torch

from trainer_client.divergences import (
    _check_alpha,
    _check_batch,
    group_index,
    group_logmeanexp,
)

__all__ = [
    "ALPHA_DPG",
    "OBJECTIVES",
    "AdvantageFn",
    "Advantages",
    "Objective",
    "alpha_dpg",
    "alpha_dpg_advantages",
    "compute_advantages",
    "dr_grpo",
    "get_objective",
    "register_objective",
    "rft",
    "rloo",
]


@dataclass
class Advantages:
    """One advantage per sample plus batch statistics worth logging.

    ``stats`` always holds ``pass_rate``, ``unsolved_fraction`` (prompts with no verified
    sample), ``reward_mean`` and ``advantage_abs_mean``; α-DPG adds the partition estimate
    (``z_mean``, ``log_z_mean``, ``log_z_min``, ``log_z_max``) and ``clip_fraction``.
    """

    values: torch.Tensor
    stats: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------


class AdvantageFn(Protocol):
    """One verified batch to one advantage per sample (every objective's signature)."""

    def __call__(
        self,
        *,
        policy_logprobs: torch.Tensor,
        base_logprobs: torch.Tensor,
        verified: torch.Tensor,
        group_ids: torch.Tensor,
        alpha: float = ...,
        clip: float = ...,
        z_floor: float = ...,
    ) -> Advantages: ...


_Fn = TypeVar("_Fn", bound=AdvantageFn)


@dataclass(frozen=True)
class Objective:
    """An objective and what the loop must know about it, decided here and nowhere else."""

    name: str
    #: How plots and tables name it.
    title: str
    advantages: AdvantageFn
    #: Its advantages read ``log a`` (the frozen base model scores every sample).
    needs_reference: bool
    #: Samples come from the policy π; False: from the base ``a`` (so ``log π`` of a sample is
    #: ``log a``, the sampler runs the reference, and sampling must be untempered: a tempered
    #: ``a`` is another distribution with no π to score instead).
    samples_policy: bool = True
    #: ``loss.alpha`` is its α: it must be < 1 (α = 1 gives wrong proofs −∞), and the step logs
    #: its own α-divergence.
    uses_alpha: bool = False


#: Every objective by name; :func:`register_objective` adds one.
OBJECTIVES: dict[str, Objective] = {}


def register_objective(
    name: str,
    *,
    title: str,
    needs_reference: bool,
    samples_policy: bool = True,
    uses_alpha: bool = False,
) -> Callable[[_Fn], _Fn]:
    """Register the decorated advantage function as objective ``name`` (as verl's
    ``register_adv_est`` does); a second, different function under one name is an error."""

    def register(fn: _Fn) -> _Fn:
        record = Objective(
            name=name,
            title=title,
            advantages=fn,
            needs_reference=needs_reference,
            samples_policy=samples_policy,
            uses_alpha=uses_alpha,
        )
        existing = OBJECTIVES.get(name)
        if existing is not None and existing != record:
            raise ValueError(f"objective {name!r} is already registered")
        OBJECTIVES[name] = record
        return fn

    return register


def get_objective(name: str) -> Objective:
    """The registered objective ``name``; the error lists the known ones."""
    try:
        return OBJECTIVES[name]
    except KeyError:
        known = ", ".join(sorted(OBJECTIVES))
        raise ValueError(f"objective: unknown {name!r}; expected one of {known}") from None


# --------------------------------------------------------------------------------------------
# α-DPG
# --------------------------------------------------------------------------------------------


def alpha_dpg_advantages(
    policy_logprobs: torch.Tensor,
    base_logprobs: torch.Tensor,
    verified: torch.Tensor,
    group_ids: torch.Tensor,
    alpha: float,
    clip: float = 10.0,
    z_floor: float = 1e-4,
) -> torch.Tensor:
    """Leave-one-out α-DPG advantages, one per sample (see :func:`alpha_dpg` for the details)."""
    return alpha_dpg(
        policy_logprobs=policy_logprobs,
        base_logprobs=base_logprobs,
        verified=verified,
        group_ids=group_ids,
        alpha=alpha,
        clip=clip,
        z_floor=z_floor,
    ).values


@register_objective("alpha_dpg", title="α-DPG", needs_reference=True, uses_alpha=True)
def alpha_dpg(
    *,
    policy_logprobs: torch.Tensor,
    base_logprobs: torch.Tensor,
    verified: torch.Tensor,
    group_ids: torch.Tensor,
    alpha: float = 0.5,
    clip: float = 10.0,
    z_floor: float = 1e-4,
    **_: object,
) -> Advantages:
    """α-DPG advantages toward ``p(y|x) ∝ a(y|x)·v(y,x)``, steps 2–5 of the method notes.

    Per prompt (group of samples sharing a ``group_ids`` value):

    1. ``log Ẑ = log mean_i [v_i · a(y_i)/π(y_i)]``, clamped to ≤ 0 (Ẑ ≤ 1); if no sample is
       verified ``Ẑ = z_floor``.
    2. ``log(p/π) = log a − log Ẑ − log π`` for verified samples.
    3. ``R = min((p/π)^{1−α} − 1, M)``, computed as ``expm1(min((1−α)·log(p/π), log1p(M)))``
       so the clip acts before anything can overflow; unverified samples get ``R = −1``.
       At π = a a verified sample gets ``ĉ^{−(1−α)} − 1`` with ĉ the group's verified fraction.
    4. ``A_i = R_i − mean_{j≠i} R_j`` (baseline 0 when the group has a single sample). No std
       normalisation. A prompt with no verified sample has all ``R = −1`` and so ``A = 0``.

    α = 1 is defined as the α → 1 limit of ``R``: 0 for a verified sample and −1 otherwise, i.e.
    RLOO on the binary reward. (The unscaled ``−f'_1 = log(p/π)`` would give wrong proofs −∞;
    the method's ``(1−α)`` rescaling is what keeps the limit finite.) α = 0 is ``R = p/π − 1``.
    """
    _check_alpha(alpha)
    if not clip > 0:
        raise ValueError(f"clip: expected a positive number, got {clip!r}")
    if not 0.0 < z_floor <= 1.0:
        raise ValueError(f"z_floor: expected a number in (0, 1], got {z_floor!r}")
    policy, base, ok = _check_batch(policy_logprobs, base_logprobs, verified, group_ids)
    index, n_groups = group_index(group_ids.to(policy.device))
    alpha = float(alpha)

    log_w = torch.where(ok, base - policy, torch.full_like(policy, -math.inf))
    log_z = group_logmeanexp(log_w, index, n_groups).clamp(max=0.0)
    solved = torch.isfinite(log_z)
    log_z = torch.where(solved, log_z, torch.full_like(log_z, math.log(z_floor)))

    log_ratio = base - log_z[index] - policy  # log(p/π) where verified
    if alpha == 1.0:
        rewards = torch.where(ok, torch.zeros_like(policy), -torch.ones_like(policy))
        clipped = torch.zeros_like(ok)
    else:
        exponent = (1.0 - alpha) * torch.where(ok, log_ratio, torch.zeros_like(log_ratio))
        ceiling = math.log1p(clip)
        clipped = ok & (exponent > ceiling)
        rewards = torch.where(
            ok, torch.expm1(exponent.clamp(max=ceiling)), -torch.ones_like(policy)
        )

    values = _leave_one_out(rewards, index, n_groups)
    stats = _common_stats(ok, solved, rewards, values)
    stats.update(
        z_mean=float(log_z.exp().mean()),
        log_z_mean=float(log_z.mean()),
        log_z_min=float(log_z.min()),
        log_z_max=float(log_z.max()),
        clip_fraction=float(clipped.to(policy.dtype).mean()),
    )
    return Advantages(values=values, stats=stats)


# --------------------------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------------------------


@register_objective("dr_grpo", title="Dr. GRPO", needs_reference=False)
def dr_grpo(
    *,
    policy_logprobs: torch.Tensor,
    base_logprobs: torch.Tensor,
    verified: torch.Tensor,
    group_ids: torch.Tensor,
    **_: object,
) -> Advantages:
    """Dr. GRPO: binary reward minus the group mean (self included), no std normalisation.

    The optional KL term of the "High-KL" variant is not an advantage: add
    ``β · kl_penalty(...)`` to the loss.
    """
    policy, _base, ok = _check_batch(policy_logprobs, base_logprobs, verified, group_ids)
    index, n_groups = group_index(group_ids.to(policy.device))
    rewards = ok.to(policy.dtype)
    sums = rewards.new_zeros(n_groups).index_add_(0, index, rewards)
    counts = rewards.new_zeros(n_groups).index_add_(0, index, torch.ones_like(rewards))
    values = rewards - (sums / counts)[index]
    return Advantages(values=values, stats=_common_stats(ok, sums > 0, rewards, values))


@register_objective("rloo", title="RLOO", needs_reference=False)
def rloo(
    *,
    policy_logprobs: torch.Tensor,
    base_logprobs: torch.Tensor,
    verified: torch.Tensor,
    group_ids: torch.Tensor,
    **_: object,
) -> Advantages:
    """REINFORCE leave-one-out on the binary reward: ``A_i = v_i − mean_{j≠i} v_j``."""
    policy, _base, ok = _check_batch(policy_logprobs, base_logprobs, verified, group_ids)
    index, n_groups = group_index(group_ids.to(policy.device))
    rewards = ok.to(policy.dtype)
    values = _leave_one_out(rewards, index, n_groups)
    solved = rewards.new_zeros(n_groups).index_add_(0, index, rewards) > 0
    return Advantages(values=values, stats=_common_stats(ok, solved, rewards, values))


@register_objective("rft", title="RFT", needs_reference=True, samples_policy=False)
def rft(
    *,
    policy_logprobs: torch.Tensor,
    base_logprobs: torch.Tensor,
    verified: torch.Tensor,
    group_ids: torch.Tensor,
    **_: object,
) -> Advantages:
    """Rejection-sampling fine-tuning: forward KL to ``p`` with samples drawn from the base ``a``.

    The samples must come from ``a``, not π (the loop's job). Then ``∇KL(p‖π) =
    −E_a[(p/a) ∇log π]`` with ``p/a = v/Z``, and ``Z`` estimated by the group's verified
    fraction ĉ: ``A_i = v_i / ĉ``. That is supervised fine-tuning on the verified samples with
    every solved prompt weighted equally (its weights sum to k); unsolved prompts give nothing.
    No baseline: under ``a`` the score function does not average to zero for π.
    """
    policy, _base, ok = _check_batch(policy_logprobs, base_logprobs, verified, group_ids)
    index, n_groups = group_index(group_ids.to(policy.device))
    rewards = ok.to(policy.dtype)
    hits = rewards.new_zeros(n_groups).index_add_(0, index, rewards)
    counts = rewards.new_zeros(n_groups).index_add_(0, index, torch.ones_like(rewards))
    fraction = torch.where(hits > 0, hits / counts, torch.ones_like(hits))
    values = rewards / fraction[index]
    return Advantages(values=values, stats=_common_stats(ok, hits > 0, rewards, values))


#: The method itself: the default objective, and the one a sweep's α values train.
ALPHA_DPG = OBJECTIVES["alpha_dpg"]


def compute_advantages(
    objective: str,
    *,
    policy_logprobs: torch.Tensor,
    base_logprobs: torch.Tensor,
    verified: torch.Tensor,
    group_ids: torch.Tensor,
    alpha: float = 0.5,
    clip: float = 10.0,
    z_floor: float = 1e-4,
) -> Advantages:
    """Advantages of the named objective (a key of :data:`OBJECTIVES`) for one batch."""
    return get_objective(objective).advantages(
        policy_logprobs=policy_logprobs,
        base_logprobs=base_logprobs,
        verified=verified,
        group_ids=group_ids,
        alpha=alpha,
        clip=clip,
        z_floor=z_floor,
    )


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _leave_one_out(rewards: torch.Tensor, index: torch.Tensor, n_groups: int) -> torch.Tensor:
    """``R_i − mean_{j≠i} R_j`` within each group; ``R_i`` itself for singleton groups."""
    sums = rewards.new_zeros(n_groups).index_add_(0, index, rewards)
    counts = rewards.new_zeros(n_groups).index_add_(0, index, torch.ones_like(rewards))
    others = (counts - 1)[index]
    baseline = torch.where(
        others > 0, (sums[index] - rewards) / others.clamp_min(1), torch.zeros_like(rewards)
    )
    return rewards - baseline


def _common_stats(
    ok: torch.Tensor, solved: torch.Tensor, rewards: torch.Tensor, values: torch.Tensor
) -> dict[str, float]:
    return {
        "pass_rate": float(ok.to(rewards.dtype).mean()),
        "unsolved_fraction": float((~solved).to(rewards.dtype).mean()),
        "reward_mean": float(rewards.mean()),
        "advantage_abs_mean": float(values.abs().mean()),
    }
