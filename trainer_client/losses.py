"""The loss every objective shares: REINFORCE with a constant length normaliser, and a KL term.

The objectives (:mod:`trainer_client.objectives`) differ only in their advantages; the loss
that turns advantages into a gradient is the same for all of them (method notes, step 6), plus
the optional k3 KL penalty of the "High-KL" baselines.
"""

from __future__ import annotations

import torch

__all__ = ["KL_DELTA_CLAMP", "KL_K3_CLAMP", "kl_penalty", "reinforce_loss"]


#: verl's ``low_var_kl`` bounds: the log-ratio δ is clamped to ±20, the k3 term to ≤ 10.
KL_DELTA_CLAMP = 20.0
KL_K3_CLAMP = 10.0

# --------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------


def reinforce_loss(
    token_logprobs: torch.Tensor,
    response_mask: torch.Tensor,
    advantages: torch.Tensor,
    l_max: int,
) -> torch.Tensor:
    """``L = −(1/N) Σ_i A_i · Σ_t log π(y_{i,t}) / L_max`` (method notes, step 6).

    ``token_logprobs`` and ``response_mask`` are ``[N, T]`` (only masked tokens count);
    ``advantages`` is ``[N]`` and treated as a constant. Dividing by the constant ``L_max``
    rather than each sequence's own length keeps the estimator unbiased: a per-sequence
    normaliser would favour short wrong answers and long right ones (the Dr. GRPO argument).
    """
    mask = _check_tokens(token_logprobs, response_mask, l_max)
    if advantages.dim() != 1 or advantages.numel() != token_logprobs.shape[0]:
        raise ValueError(
            f"advantages: expected shape [{token_logprobs.shape[0]}], got {tuple(advantages.shape)}"
        )
    weights = advantages.detach().to(token_logprobs.dtype).unsqueeze(-1)
    masked = torch.where(mask, token_logprobs, torch.zeros_like(token_logprobs))
    n = token_logprobs.shape[0]
    return -(weights * masked).sum() / (n * l_max)


def kl_penalty(
    token_logprobs: torch.Tensor,
    ref_token_logprobs: torch.Tensor,
    response_mask: torch.Tensor,
    l_max: int,
) -> torch.Tensor:
    """Per-token ``k3`` estimate of ``KL(π‖ref)``, summed and normalised like the loss.

    ``k3 = exp(δ) − δ − 1`` with ``δ = log ref − log π`` is non-negative and unbiased for
    samples from π (Schulman's estimator). Clamped as verl's ``low_var_kl``: ``δ`` to ±20 and
    ``k3`` to at most 10, so one token far off the reference (``δ = 25`` gives ``k3 ≈ 7e10``)
    cannot swamp the batch; a clamped token passes no gradient. Add ``β · kl_penalty(...)`` to
    :func:`reinforce_loss` for the KL-regularised baselines.
    """
    mask = _check_tokens(token_logprobs, response_mask, l_max)
    if ref_token_logprobs.shape != token_logprobs.shape:
        raise ValueError(
            f"ref_token_logprobs: expected shape {tuple(token_logprobs.shape)}, "
            f"got {tuple(ref_token_logprobs.shape)}"
        )
    ref = ref_token_logprobs.detach().to(token_logprobs.dtype)
    delta = torch.where(mask, ref - token_logprobs, torch.zeros_like(token_logprobs))
    delta = delta.clamp(-KL_DELTA_CLAMP, KL_DELTA_CLAMP)
    k3 = (torch.expm1(delta) - delta).clamp(max=KL_K3_CLAMP)
    n = token_logprobs.shape[0]
    return k3.sum() / (n * l_max)


def _check_tokens(
    token_logprobs: torch.Tensor, response_mask: torch.Tensor, l_max: int
) -> torch.Tensor:
    if token_logprobs.dim() != 2:
        raise ValueError(
            f"token_logprobs: expected shape [N, T], got {tuple(token_logprobs.shape)}"
        )
    if response_mask.shape != token_logprobs.shape:
        raise ValueError(
            f"response_mask: expected shape {tuple(token_logprobs.shape)}, "
            f"got {tuple(response_mask.shape)}"
        )
    if not isinstance(l_max, int) or l_max <= 0:
        raise ValueError(f"l_max: expected a positive int, got {l_max!r}")
    return response_mask.to(torch.bool)
