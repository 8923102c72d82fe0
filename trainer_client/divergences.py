"""The α-divergence family, exactly for small categorical distributions and estimated from a batch.

The trainer moves π toward the filtered target ``p = a·v / Z``. How far it still is can be
measured two ways:

* exactly, when the support is small enough to enumerate (the tests' categorical problems):
  :func:`forward_kl`, :func:`reverse_kl`, :func:`alpha_divergence`, :func:`js_divergence`,
  :func:`tv_distance`, :func:`in_support_excess`, :func:`lacking_mass`, :func:`off_support_mass`,
  :func:`entropy`, :func:`chi_square`;
* by importance sampling from the very batch the loss sees (``k`` samples per prompt drawn from
  π, with their base log-probs and verdicts): :func:`is_estimates`, whose every figure is the
  Monte Carlo counterpart of one exact function above (its docstring says which).

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
    "chi_square",
    "entropy",
    "f_alpha",
    "forward_kl",
    "group_index",
    "group_logmeanexp",
    "group_mean",
    "in_support_excess",
    "is_estimates",
    "js_divergence",
    "lacking_mass",
    "off_support_mass",
    "reverse_kl",
    "tv_distance",
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


def js_divergence(p: torch.Tensor, pi: torch.Tensor) -> torch.Tensor:
    """Exact Jensen–Shannon divergence ``½ KL(p‖m) + ½ KL(π‖m)``, ``m = (p + π)/2``, in nats.

    Symmetric, finite (at most ``log 2``) even when the supports differ, which is why the
    authors log it next to the KLs: it stays readable while π still puts mass on wrong answers.
    """
    p, pi = _check_distributions(p, pi)
    m = (p + pi) / 2
    return 0.5 * forward_kl(p, m) + 0.5 * forward_kl(pi, m)


def tv_distance(p: torch.Tensor, pi: torch.Tensor) -> torch.Tensor:
    """Exact total variation ``½ Σ |p − π|`` (in [0, 1]).

    For normalised distributions ``TV = lacking_mass = in_support_excess + off_support_mass``.
    """
    p, pi = _check_distributions(p, pi)
    return 0.5 * (p - pi).abs().sum(-1)


def in_support_excess(p: torch.Tensor, pi: torch.Tensor) -> torch.Tensor:
    """``Σ_{y: p(y)>0} (π(y) − p(y))⁺``: mass π puts on correct answers *beyond* what p gives them.

    High when π concentrates on a few favourite correct answers (mode seeking), even at full
    precision.
    """
    p, pi = _check_distributions(p, pi)
    return torch.where(p > 0, (pi - p).clamp_min(0), torch.zeros_like(p)).sum(-1)


def lacking_mass(p: torch.Tensor, pi: torch.Tensor) -> torch.Tensor:
    """``Σ_{y: p(y)>0} (p(y) − π(y))⁺``: mass of the target that π fails to cover.

    The coverage side: correct answers p still wants that π has (partly) dropped.
    """
    p, pi = _check_distributions(p, pi)
    return torch.where(p > 0, (p - pi).clamp_min(0), torch.zeros_like(p)).sum(-1)


def off_support_mass(p: torch.Tensor, pi: torch.Tensor) -> torch.Tensor:
    """``Σ_{y: p(y)=0} π(y)``: π's mass outside the target's support (on wrong answers).

    One minus π's precision (its pass rate) on this prompt.
    """
    p, pi = _check_distributions(p, pi)
    return torch.where(p > 0, torch.zeros_like(pi), pi).sum(-1)


def entropy(pi: torch.Tensor) -> torch.Tensor:
    """Exact Shannon entropy ``−Σ π log π`` in nats (of whole sequences, for a sequence model)."""
    pi, _ = _check_distributions(pi, pi)
    return -torch.special.xlogy(pi, pi).sum(-1)


def chi_square(p: torch.Tensor, pi: torch.Tensor) -> torch.Tensor:
    """``χ²(p‖π) = Σ p²/π − 1``: what sets the effective sample size of ``p/π`` weights.

    A Kish ESS of weights ``p/π`` over samples drawn from π tends to ``N / (1 + χ²)``.
    """
    p, pi = _check_distributions(p, pi)
    ratio = torch.where(p > 0, p * p / pi, torch.zeros_like(p))
    return ratio.sum(-1) - 1


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
    """Estimate how far π is from ``p`` (and from ``a``) using the batch's own samples ``y ~ π``.

    Per prompt the unnormalised weights are ``w_i = v_i · a(y_i)/π(y_i)`` and ``Ẑ = mean_i w_i``,
    so the ratio ``r_i = p(y_i)/π(y_i) ≈ w_i / Ẑ`` (0 on wrong samples; ``mean_i r_i = 1``).
    Prompts without a verified sample carry no information about ``p``: the "solved" figures
    leave them out and average over the remaining prompts; the "all prompts" figures count
    them with ``r = 0``, as the authors' code does (their ``Ẑ`` floor gives ``p = 0`` there).
    Every figure estimates one exact function of this module (in brackets).

    Over solved prompts
        ``forward_kl``: ``KL(p‖π) = E_π[r log r]`` [:func:`forward_kl`]; zero when all weights
        agree (π ∝ p on the sample).
        ``reverse_kl_verified``: ``KL(π(·|v=1) ‖ p)``, the reverse KL of the policy *conditioned
        on being verified*, ``≈ log mean_{v} w − mean_{v} log w`` [:func:`reverse_kl` of p and
        π restricted to correct answers]. The plain ``KL(π‖p)`` is infinite whenever π puts any
        mass on a wrong answer; this finite part measures how differently from ``a`` the policy
        spreads its correct mass. Read it with ``pass_rate``.
        ``alpha_divergence`` (when ``alpha`` is given): ``D_{f_α}(π‖p) =
        (1 − E_π[r^{1−α}]) / (α(1−α))`` [:func:`alpha_divergence`]; ``forward_kl`` at α = 0;
        not reported at α = 1 (infinite while π errs).
        ``js``: ``E_π[½ r log(2r/(1+r)) + ½ log(2/(1+r))]`` [:func:`js_divergence`], nats.
        ``tv``: ``½ E_π|r − 1|`` [:func:`tv_distance`].
        ``in_support_excess``: ``E_π[v (1 − r)⁺]`` [:func:`in_support_excess`];
        ``lacking_mass``: ``E_π[v (r − 1)⁺]`` [:func:`lacking_mass`]. Since ``mean r = 1`` the
        estimates keep the exact identity ``tv = lacking_mass = in_support_excess + (1 −
        solved prompts' pass rate)``.
        ``ess`` / ``ess_fraction``: per-prompt Kish effective sample size ``(Σr)²/Σr²`` and its
        ratio to k, averaged over prompts [``k / (1 + χ²(p‖π))``, :func:`chi_square`].
        ``log_z``: mean ``log Ẑ`` (the estimated log pass rate of the base model).

    Over all prompts
        ``forward_kl_all``: ``forward_kl`` summed over solved prompts divided by all prompts
        (unsolved ones count 0): the authors' figure, ours times the solved fraction.
        ``ess_pooled`` / ``ess_pooled_fraction``: the Kish ESS of all the batch's ``r_i``
        pooled, ``(Σ_all r)²/Σ_all r²``, and its ratio to the batch size, as the authors report
        it [for one prompt ``N / (1 + χ²(p‖π))``].
        ``reference_reverse_kl``: ``KL(π‖a) = E_π[log π − log a]``, the reverse KL to the base
        model that RL's KL penalty controls [:func:`reverse_kl` with the reference as target].
        ``sequence_entropy``: ``H(π) = −E_π[log π(y)]`` in nats per sequence [:func:`entropy`].
        ``pass_rate``, ``prompts`` (solved prompts) and ``prompts_unsolved``.
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

    def per_prompt_mean(values: torch.Tensor) -> torch.Tensor:
        return policy.new_zeros(n_groups).index_add_(0, index, values) / counts

    # log(p/π) per verified sample, and r = p/π ≈ w/Ẑ (0 on wrong samples; mean 1 per prompt).
    log_ratio = torch.where(ok, log_w - log_z[index], torch.zeros_like(log_w))
    ratio = torch.where(ok, torch.exp(log_ratio), torch.zeros_like(log_w))
    forward = per_prompt_mean(torch.special.xlogy(ratio, ratio))

    # KL(π(·|v)‖p) = E_{π|v}[log π/p] + log π(V) ≈ mean_v(log Ẑ − log w) + log ĉ
    #             = log mean_v w − mean_v log w  (≥ 0 by Jensen).
    log_w_verified = torch.where(ok, log_w, torch.zeros_like(log_w))
    mean_log_w = policy.new_zeros(n_groups).index_add_(0, index, log_w_verified)
    mean_log_w = mean_log_w / n_verified.clamp_min(1)
    log_mean_w = log_z + torch.log(counts) - torch.log(n_verified.clamp_min(1))
    reverse = log_mean_w - mean_log_w

    # JS with m = (p + π)/2: E_π[½ r log(2r/(1+r)) + ½ log(2/(1+r))].
    js = per_prompt_mean(
        0.5 * torch.special.xlogy(ratio, 2 * ratio / (1 + ratio)) + 0.5 * torch.log(2 / (1 + ratio))
    )
    tv = per_prompt_mean(0.5 * (ratio - 1).abs())
    excess = per_prompt_mean(torch.where(ok, (1 - ratio).clamp_min(0), torch.zeros_like(ratio)))
    lacking = per_prompt_mean(torch.where(ok, (ratio - 1).clamp_min(0), torch.zeros_like(ratio)))

    # Kish ESS computed on r = w/Ẑ, which is scale-free and stays finite in log space.
    ratio_sq = policy.new_zeros(n_groups).index_add_(0, index, ratio * ratio)
    ess = counts.pow(2) / ratio_sq.where(solved, torch.ones_like(ratio_sq))
    pooled_sq = float((ratio * ratio).sum())
    ess_pooled = float(ratio.sum()) ** 2 / pooled_sq if pooled_sq > 0 else 0.0

    def mean(values: torch.Tensor) -> float:
        return float(values[solved].mean()) if bool(solved.any()) else math.nan

    estimates = {
        "forward_kl": mean(forward),
        "forward_kl_all": float(forward.where(solved, torch.zeros_like(forward)).mean()),
        "reverse_kl_verified": mean(reverse),
        "js": mean(js),
        "tv": mean(tv),
        "in_support_excess": mean(excess),
        "lacking_mass": mean(lacking),
        "ess": mean(ess),
        "ess_fraction": mean(ess / counts),
        "ess_pooled": ess_pooled,
        "ess_pooled_fraction": ess_pooled / policy.numel(),
        "log_z": mean(log_z),
        "reference_reverse_kl": float((policy - base).mean()),
        "sequence_entropy": float(-policy.mean()),
        "pass_rate": float(ok.to(dtype).mean()),
        "prompts": float(solved.sum()),
        "prompts_unsolved": float((~solved).sum()),
    }
    if alpha is not None and alpha == 0.0:
        estimates["alpha_divergence"] = estimates["forward_kl"]
    elif alpha is not None and alpha < 1.0:
        powered = per_prompt_mean(
            torch.where(ok, torch.exp((1 - alpha) * log_ratio), torch.zeros_like(log_w))
        )
        estimates["alpha_divergence"] = mean((1 - powered) / (alpha * (1 - alpha)))
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
