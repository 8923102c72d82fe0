"""Scoring with the actor: teacher-forced log-probs of sampled tokens under a causal LM.

One function scores the policy's training forward, the frozen reference and the samplers' own
``log π``, so ``log π`` and ``log a`` are computed the same way (as verl scores old log-probs
with the actor's own forward rather than the rollout engine's numbers).
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["token_logprobs"]


def token_logprobs(
    model: torch.nn.Module,
    sequences: torch.Tensor,
    attention_mask: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    temperature: float = 1.0,
    top_p: float = 1.0,
    response_start: int | None = None,
) -> torch.Tensor:
    """Teacher-forced per-token log-probs ``[N, P+T]``, 0 outside the response.

    The one scoring function of the trainer: the policy's training forward, the frozen reference
    and the sampler all call it, so ``log π`` and ``log a`` are computed the same way (the caller
    supplies the autocast). ``temperature`` and ``top_p`` give the log-probs of the distribution
    ``generate`` samples from (its temperature, then its nucleus filter, exactly as
    ``transformers``' warpers apply them); the sampled token itself always stays in the nucleus.

    Runs under the caller's grad mode: the training step calls it with grad, the reference and the
    sampler without. Position ids follow the attention mask, as ``generate`` does for left-padded
    prompts, so the numbers match what was sampled. Only the response's logits are materialised
    (``logits_to_keep``): with a 100k vocabulary the prompt's logits would dominate memory.
    """
    if response_start is None:
        has_response = response_mask.any(dim=0).nonzero()
        response_start = int(has_response[0]) if len(has_response) else sequences.shape[1]
    width = sequences.shape[1]
    keep = width - response_start + 1  # logits at position t-1 score token t
    position_ids = (attention_mask.long().cumsum(dim=1) - 1).clamp(min=0)
    kwargs: dict[str, Any] = {
        "input_ids": sequences,
        "attention_mask": attention_mask,
        "position_ids": position_ids,
        "use_cache": False,
    }
    try:
        logits = model(**kwargs, logits_to_keep=keep).logits
    except TypeError:  # a model without logits_to_keep
        logits = model(**kwargs).logits
    logits = logits[:, -keep:-1].float()
    if temperature != 1.0:
        logits = logits / temperature
    targets = sequences[:, response_start:]
    if top_p < 1.0:
        logits = _nucleus(logits, top_p, targets)
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    out = torch.zeros(sequences.shape, dtype=picked.dtype, device=sequences.device)
    out[:, response_start:] = picked
    return out * response_mask.to(out.dtype)


def _nucleus(logits: torch.Tensor, top_p: float, sampled: torch.Tensor) -> torch.Tensor:
    """``transformers``' ``TopPLogitsWarper``: drop the least likely tokens whose cumulative
    probability stays within ``1 − top_p`` (keeping at least one), and never the sampled one."""
    with torch.no_grad():
        ordered, order = torch.sort(logits, dim=-1, descending=False)
        cumulative = ordered.softmax(dim=-1).cumsum(dim=-1)
        drop_sorted = cumulative <= (1 - top_p)
        drop_sorted[..., -1:] = False
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        drop.scatter_(-1, sampled.unsqueeze(-1), False)
    return logits.masked_fill(drop, float("-inf"))
