"""The frozen base model ``a``: the anchor every α-DPG target ``p ∝ a·v`` is built on.

The reference must stay the *initial* model for the whole run, resumed runs included: it is loaded
from the run's starting weights (or a separate path), never from a checkpoint, and it never sees a
gradient. It gives sequence log-probs ``log a(y|x)`` for α-DPG's ``p`` and Ẑ, and per-token
log-probs for objectives with a KL penalty.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from transformers import AutoModelForCausalLM

from trainer_client.rollout.batch import Samples
from trainer_client.rollout.scoring import token_logprobs

__all__ = ["ReferenceModel"]


class ReferenceModel:
    """A frozen causal LM scored teacher-forced, in micro-batches, with no grad."""

    def __init__(self, model: torch.nn.Module, *, batch_size: int | None = None) -> None:
        model.eval()
        model.requires_grad_(False)
        self.model = model
        self.batch_size = batch_size

    @classmethod
    def frozen_copy(
        cls, model: torch.nn.Module, *, batch_size: int | None = None
    ) -> ReferenceModel:
        """A deep copy of ``model`` as it is now (call before the first update)."""
        return cls(copy.deepcopy(model), batch_size=batch_size)

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        *,
        batch_size: int | None = None,
        device: torch.device | str | None = None,
        **kwargs: Any,
    ) -> ReferenceModel:
        model: torch.nn.Module = AutoModelForCausalLM.from_pretrained(name_or_path, **kwargs)
        if device is not None:
            model.to(device)
        return cls(model, batch_size=batch_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def token_logprobs(self, samples: Samples) -> torch.Tensor:
        """``[N, P+T]`` per-token ``log a``, 0 outside the response."""
        rows = self.batch_size or len(samples)
        device = self.device
        parts = []
        for start in range(0, len(samples), rows):
            part = slice(start, start + rows)
            parts.append(
                token_logprobs(
                    self.model,
                    samples.sequences[part].to(device),
                    samples.attention_mask[part].to(device),
                    samples.response_mask[part].to(device),
                    response_start=samples.prompt_width,
                )
            )
        return torch.cat(parts).to(samples.sequences.device)

    def sequence_logprobs(self, samples: Samples) -> torch.Tensor:
        """``[N]`` sequence ``log a(y|x)``, summed over the response in float32."""
        return self.token_logprobs(samples).sum(dim=1)
