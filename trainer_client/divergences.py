"""The α-divergence family, exactly for small categorical distributions and estimated from a batch.

The trainer moves π toward the filtered target ``p = a·v / Z``. How far it still is can be
measured two ways:

* exactly, when the support is small enough to enumerate (the tests' categorical problems):
  :func:`forward_kl`, :func:`reverse_kl`, :func:`alpha_divergence`;
* by importance sampling from the very batch the loss sees (``k`` samples per prompt drawn from
  π, with their base log-probs and verdicts): :func:`is_estimates`.

Conventions follow the method notes: ``D_f(π‖p) = E_p[f(π/p)]`` with
``f_α(t) = (t^α − α t − (1 − α)) / (α (α − 1))``, so α → 0 is the forward ``KL(p‖π)``
(mass covering) and α → 1 the reverse ``KL(π‖p)`` (mode seeking). The per-prompt group
reductions used here are shared with :mod:`trainer_client.losses`.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "alpha_divergence",
    "f_alpha",
    "forward_kl",
    "group_index",
    "group_logmeanexp",
    "group_mean",
    "is_estimates",
    "reverse_kl",
]


# --------------------------------------------------------------------------------------------
# The generator f_α
# --------------------------------------------------------------------------------------------


def f_alpha(t: torch.Tensor | float, alpha: float) -> torch.Tensor:
    """``f_α(t) = (t^α − α t − (1 − α)) / (α (α − 1))`` with its limits at α = 0 and α = 1.

    The limits are what make the family continuous: ``f_0(t) = t − 1 − log t`` (giving
    ``KL(p‖π)``) and ``f_1(t) = t log t − t + 1`` (giving ``KL(π‖p)``). ``t`` must be ≥ 0;
    ``f_0(0)`` is ``+inf`` and ``f_1(0) = 1``.
    """
    _check_alpha(alpha)
    t = torch.as_tensor(t, dtype=torch.float64 if not torch.is_tensor(t) else None)
    if not torch.is_floating_point(t):
        t = t.to(torch.get_default_dtype())
    if (t < 0).any():
        raise ValueError("t: f_alpha is defined for t >= 0 (t is a density ratio)")
    if alpha == 0.0:
        return t - 1 - torch.log(t)
    if alpha == 1.0:
        return torch.special.xlogy(t, t) - t + 1
    return (t.pow(alpha) - alpha * t - (1 - alpha)) / (alpha * (alpha - 1))


# --------------------------------------------------------------------------------------------
# Exact divergences between categorical distributions
# --------------------------------------------------------------------------------------------


def forward_kl(p: torch.Tensor, pi: torch.Tensor) -> torch.Tensor:
    """Exact ``KL(p‖π) = Σ p log(p/π)`` over the last dimension (``+inf`` if π misses p's support).

    This is the α → 0 end: what filtering-then-DPG minimises, and the one that punishes a policy
    for dropping any correct answer the base model could produce.
    """
    p, pi = _check_distributions(p, pi)
    return (torch.special.xlogy(p, p) - torch.special.xlogy(p, pi)).sum(-1)


def reverse_kl(p: torch.Tensor, pi: torch.Tensor) -> torch.Tensor:
    """Exact ``KL(π‖p) = Σ π log(π/p)`` (``+inf`` as soon as π puts mass where p has none).

    Argument order matches :func:`forward_kl` (target first); only the direction differs.
    """
    p, pi = _check_distributions(p, pi)
    return (torch.special.xlogy(pi, pi) - torch.special.xlogy(pi, p)).sum(-1)


def alpha_divergence(p: torch.Tensor, pi: torch.Tensor, alpha: float) -> torch.Tensor:
    """Exact ``D_{f_α}(π‖p) = E_p[f_α(π/p)]`` over the last dimension, for α in [0, 1].

    For normalised distributions and 0 < α < 1 this is ``(1 − Σ p^{1−α} π^α) / (α (1 − α))``,
    which needs no special case for zeros on either side (a point where only one of the two
    has mass contributes its mass / α or / (1 − α), the f-divergence's boundary terms). The ends
    are the two KLs; α = 0.5 is four times the squared Hellinger distance.
    """
    _check_alpha(alpha)
    if alpha == 0.0:
        return forward_kl(p, pi)
    if alpha == 1.0:
        return reverse_kl(p, pi)
    p, pi = _check_distributions(p, pi)
    overlap = (p.pow(1 - alpha) * pi.pow(alpha)).sum(-1)
    return (1 - overlap) / (alpha * (1 - alpha))


# --------------------------------------------------------------------------------------------
# Per-prompt group reductions (vectorised: no Python loop over prompts)
# --------------------------------------------------------------------------------------------


def group_index(group_ids: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Map arbitrary integer prompt ids to ``0..G-1`` and return ``(index, G)``.

    Ids need not be contiguous or sorted: a batch may carry dataset row numbers.
    """
    if group_ids.dim() != 1:
        raise ValueError(f"group_ids: expected a 1-D tensor, got shape {tuple(group_ids.shape)}")
    if torch.is_floating_point(group_ids) or group_ids.dtype == torch.bool:
        raise ValueError(f"group_ids: expected an integer tensor, got {group_ids.dtype}")
    unique, index = torch.unique(group_ids, return_inverse=True)
    return index, int(unique.numel())


def group_mean(values: torch.Tensor, index: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Mean of ``values`` within each group, shape ``[G]``."""
    sums = values.new_zeros(n_groups).index_add_(0, index, values)
    counts = values.new_zeros(n_groups).index_add_(0, index, torch.ones_like(values))
    return sums / counts


def group_logmeanexp(values: torch.Tensor, index: torch.Tensor, n_groups: int) -> torch.Tensor:
    """``log mean exp`` of ``values`` within each group, shape ``[G]``; ``-inf`` entries allowed.

    A group whose entries are all ``-inf`` gets ``-inf`` (an empty sum), never NaN. This is how
    the partition estimate ``log Ẑ`` is formed without ever leaving log space.
    """
    counts = values.new_zeros(n_groups).index_add_(0, index, torch.ones_like(values))
    group_max = values.new_full((n_groups,), -math.inf).scatter_reduce(
        0, index, values, reduce="amax", include_self=True
    )
    shift = torch.where(torch.isfinite(group_max), group_max, torch.zeros_like(group_max))
    sums = values.new_zeros(n_groups).index_add_(0, index, torch.exp(values - shift[index]))
    return torch.log(sums) + shift - torch.log(counts)


# --------------------------------------------------------------------------------------------
# Importance-sampling estimates from a batch
# --------------------------------------------------------------------------------------------


def is_estimates(
    policy_logprobs: torch.Tensor,
    base_logprobs: torch.Tensor,
    verified: torch.Tensor,
    group_ids: torch.Tensor,
    *,
    alpha: float | None = None,
) -> dict[str, float]:
    """Estimate how far π is from ``p`` using the batch's own samples ``y ~ π``.

    Per prompt the unnormalised weights are ``w_i = v_i · a(y_i)/π(y_i)`` and ``Ẑ = mean_i w_i``
    (so ``p(y_i)/π(y_i) ≈ w_i / Ẑ``). Prompts without a verified sample carry no information
    about ``p`` and are left out; every figure is a mean over the remaining prompts.

    Returns
        ``forward_kl``: ``KL(p‖π) = E_π[(p/π) log(p/π)] ≈ Σ_i w̃_i log(k w̃_i)`` with the
        self-normalised weights ``w̃``; zero when all weights agree (π ∝ p on the sample).
        ``reverse_kl_verified``: ``KL(π(·|v=1) ‖ p)``, the reverse KL of the policy *conditioned
        on being verified*, ``≈ log mean_{v} w − mean_{v} log w``. The plain ``KL(π‖p)`` is
        infinite whenever π puts any mass on a wrong answer; this finite part measures how
        differently from ``a`` the policy spreads its correct mass. Read it with ``pass_rate``
        (π's verified mass); the full reverse KL is ``+inf`` unless that is 1.
        ``ess`` / ``ess_fraction``: Kish effective sample size ``(Σw)²/Σw²`` of the weights and
        its ratio to k: how many of the k samples the estimates above really rest on.
        ``log_z``: mean ``log Ẑ`` (the estimated log pass rate of the base model).
        ``alpha_divergence`` (only if ``alpha`` is given, 0 < α < 1):
        ``(1 − E_π[(p/π)^{1−α}]) / (α(1−α))``.
        ``pass_rate``, ``prompts`` (prompts used) and ``prompts_unsolved``.
    """
    policy, base, ok = _check_batch(policy_logprobs, base_logprobs, verified, group_ids)
    index, n_groups = group_index(group_ids.to(policy.device))
    if alpha is not None:
        _check_alpha(alpha)
    dtype = policy.dtype

    log_w = torch.where(ok, base - policy, torch.full_like(policy, -math.inf))
    log_z = group_logmeanexp(log_w, index, n_groups)
    counts = policy.new_zeros(n_groups).index_add_(0, index, torch.ones_like(policy))
    n_verified = policy.new_zeros(n_groups).index_add_(0, index, ok.to(dtype))
    solved = n_verified > 0

    # log(p/π) per verified sample, and self-normalised weights w̃ = w / Σw = (w/Ẑ) / k.
    log_ratio = torch.where(ok, log_w - log_z[index], torch.zeros_like(log_w))
    ratio = torch.where(ok, torch.exp(log_ratio), torch.zeros_like(log_w))
    forward = (
        policy.new_zeros(n_groups).index_add_(0, index, torch.special.xlogy(ratio, ratio)) / counts
    )

    # KL(π(·|v)‖p) = E_{π|v}[log π/p] + log π(V) ≈ mean_v(log Ẑ − log w) + log ĉ
    #             = log mean_v w − mean_v log w  (≥ 0 by Jensen).
    log_w_verified = torch.where(ok, log_w, torch.zeros_like(log_w))
    mean_log_w = policy.new_zeros(n_groups).index_add_(0, index, log_w_verified)
    mean_log_w = mean_log_w / n_verified.clamp_min(1)
    log_mean_w = log_z + torch.log(counts) - torch.log(n_verified.clamp_min(1))
    reverse = log_mean_w - mean_log_w

    # Kish ESS computed on w/Ẑ, which is scale-free and stays finite in log space.
    ratio_sq = policy.new_zeros(n_groups).index_add_(0, index, ratio * ratio)
    ess = counts.pow(2) / ratio_sq.where(solved, torch.ones_like(ratio_sq))

    def mean(values: torch.Tensor) -> float:
        return float(values[solved].mean()) if bool(solved.any()) else math.nan

    estimates = {
        "forward_kl": mean(forward),
        "reverse_kl_verified": mean(reverse),
        "ess": mean(ess),
        "ess_fraction": mean(ess / counts),
        "log_z": mean(log_z),
        "pass_rate": float(ok.to(dtype).mean()),
        "prompts": float(solved.sum()),
        "prompts_unsolved": float((~solved).sum()),
    }
    if alpha is not None and 0.0 < alpha < 1.0:
        powered = policy.new_zeros(n_groups).index_add_(
            0, index, torch.where(ok, torch.exp((1 - alpha) * log_ratio), torch.zeros_like(log_w))
        )
        estimates["alpha_divergence"] = mean((1 - powered / counts) / (alpha * (1 - alpha)))
    return estimates


# --------------------------------------------------------------------------------------------
# Input checks (shared with trainer_client.losses)
# --------------------------------------------------------------------------------------------


def _check_alpha(alpha: float) -> None:
    if not isinstance(alpha, (int, float)) or not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha: expected a number in [0, 1], got {alpha!r}")


def _check_distributions(p: torch.Tensor, pi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    p, pi = torch.as_tensor(p), torch.as_tensor(pi)
    if p.shape != pi.shape:
        raise ValueError(f"p, pi: shapes differ ({tuple(p.shape)} vs {tuple(pi.shape)})")
    for name, dist in (("p", p), ("pi", pi)):
        if not torch.is_floating_point(dist):
            raise ValueError(f"{name}: expected floating-point probabilities, got {dist.dtype}")
        if (dist < 0).any():
            raise ValueError(f"{name}: probabilities must be non-negative")
    return p, pi


def _check_batch(
    policy_logprobs: torch.Tensor,
    base_logprobs: torch.Tensor,
    verified: torch.Tensor,
    group_ids: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Validate a batch; return (policy, base) in one float dtype (≥ float32) and a bool mask.

    The inputs are detached: advantages and estimates are constants of the gradient step.
    """
    tensors = {
        "policy_logprobs": policy_logprobs,
        "base_logprobs": base_logprobs,
        "verified": verified,
        "group_ids": group_ids,
    }
    for name, tensor in tensors.items():
        if not torch.is_tensor(tensor):
            raise ValueError(f"{name}: expected a torch.Tensor, got {type(tensor).__name__}")
        if tensor.dim() != 1:
            raise ValueError(f"{name}: expected a 1-D tensor, got shape {tuple(tensor.shape)}")
    sizes = {name: tensor.numel() for name, tensor in tensors.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"one entry per sample expected, got lengths {sizes}")
    if sizes["group_ids"] == 0:
        raise ValueError("policy_logprobs: the batch is empty")
    for name in ("policy_logprobs", "base_logprobs"):
        if not torch.is_floating_point(tensors[name]):
            raise ValueError(
                f"{name}: expected floating-point log-probs, got {tensors[name].dtype}"
            )
    dtype = torch.promote_types(policy_logprobs.dtype, base_logprobs.dtype)
    if dtype not in (torch.float32, torch.float64):
        dtype = torch.float32
    policy = policy_logprobs.detach().to(dtype)
    base = base_logprobs.detach().to(device=policy.device, dtype=dtype)
    if torch.isnan(policy).any() or torch.isnan(base).any():
        raise ValueError("policy_logprobs, base_logprobs: NaN log-probs")
    if torch.isinf(policy).any():
        raise ValueError("policy_logprobs: expected finite log-probs (the samples came from π)")
    verified = verified.detach()
    if verified.dtype != torch.bool:
        if not ((verified == 0) | (verified == 1)).all():
            raise ValueError("verified: expected 0/1 verdicts")
        verified = verified != 0
    return policy, base, verified.to(policy.device)
