"""The batch a sampler hands the trainer: k completions per prompt as token ids and masks.

The loop needs more than text: the exact token ids that were sampled (re-tokenising decoded text
does not round-trip), which of them are the response (loss and log-probs run over those only), and
the sampling policy's sequence log-probs ``log π(y|x)`` for the importance weights of α-DPG.

Layout of a batch of ``N = len(prompts) * k`` samples: prompts are left-padded to a common width
``P`` and completions right-padded to ``T``, so column ``P`` is every sample's first generated
token. Prompt ``i``'s k samples are rows ``i*k .. i*k+k-1`` and ``group_ids`` says so. Chunks a
streaming sampler hands out in finishing order are put back in prompt order here
(:func:`in_prompt_order`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

__all__ = ["Samples", "assemble", "in_prompt_order", "pad_right", "rows_of"]


@dataclass
class Samples:
    """k completions for each of a batch of prompts (see the module docstring for the layout)."""

    texts: list[str]
    group_ids: torch.Tensor
    sequences: torch.Tensor
    attention_mask: torch.Tensor
    response_mask: torch.Tensor
    #: ``[N]`` sequence log-probs under the sampling distribution; NaN when not computed.
    policy_logprobs: torch.Tensor
    #: ``[N, P+T]`` per-token log-probs the sampling engine reported (vLLM), 0 outside the
    #: response; None when the sampler reports none.
    sampler_token_logprobs: torch.Tensor | None = None
    #: For each group, in order, the index of its prompt in the sampler call's ``prompts``: set
    #: on the chunks of :meth:`HFSampler.sample_chunks` and :meth:`VLLMSampler.sample_chunks`
    #: (groups come out as they finish, not in prompt order). None: the groups are the call's
    #: prompts in order.
    prompt_indices: list[int] | None = None

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def prompt_width(self) -> int:
        """``P``: the column of the first generated token."""
        return self.sequences.shape[1] - self.response_width

    @property
    def response_width(self) -> int:
        """``T``: padded length of the completions."""
        return int(self._response_width)

    @property
    def response_lengths(self) -> torch.Tensor:
        """``[N]`` generated tokens per sample, EOS included."""
        return self.response_mask.sum(dim=1)

    def select(self, index: torch.Tensor | Sequence[int]) -> Samples:
        """The samples at ``index`` (rows), keeping the layout."""
        index = torch.as_tensor(index, dtype=torch.long)
        picked = Samples(
            texts=[self.texts[i] for i in index.tolist()],
            group_ids=self.group_ids[index],
            sequences=self.sequences[index],
            attention_mask=self.attention_mask[index],
            response_mask=self.response_mask[index],
            policy_logprobs=self.policy_logprobs[index],
            sampler_token_logprobs=None
            if self.sampler_token_logprobs is None
            else self.sampler_token_logprobs[index],
        )
        picked._response_width = self._response_width
        return picked

    def to(self, device: torch.device | str) -> Samples:
        moved = Samples(
            texts=self.texts,
            group_ids=self.group_ids.to(device),
            sequences=self.sequences.to(device),
            attention_mask=self.attention_mask.to(device),
            response_mask=self.response_mask.to(device),
            policy_logprobs=self.policy_logprobs.to(device),
            sampler_token_logprobs=None
            if self.sampler_token_logprobs is None
            else self.sampler_token_logprobs.to(device),
        )
        moved._response_width = self._response_width
        return moved

    @classmethod
    def concat(cls, parts: Sequence[Samples], *, pad_id: int = 0) -> Samples:
        """One batch from several: prompts left-padded and completions right-padded to the widest,
        group ids renumbered in order (part 2's group 0 follows part 1's last group)."""
        if not parts:
            raise ValueError("parts: need at least one batch of samples")
        if len(parts) == 1:
            return parts[0]
        prompt_w = max(p.prompt_width for p in parts)
        response_w = max(p.response_width for p in parts)

        def widen(t: torch.Tensor, part: Samples, value: int) -> torch.Tensor:
            left = prompt_w - part.prompt_width
            right = response_w - part.response_width
            return torch.nn.functional.pad(t, (left, right), value=value)

        groups, offset = [], 0
        for part in parts:
            groups.append(part.group_ids + offset)
            offset += int(part.group_ids.max()) + 1 if len(part) else 0
        merged = cls(
            texts=[t for p in parts for t in p.texts],
            group_ids=torch.cat(groups),
            sequences=torch.cat([widen(p.sequences, p, pad_id) for p in parts]),
            attention_mask=torch.cat([widen(p.attention_mask, p, 0) for p in parts]),
            response_mask=torch.cat([widen(p.response_mask, p, 0) for p in parts]),
            policy_logprobs=torch.cat([p.policy_logprobs for p in parts]),
        )
        reported = [p.sampler_token_logprobs for p in parts]
        if all(t is not None for t in reported):
            merged.sampler_token_logprobs = torch.cat(
                [widen(t, p, 0) for t, p in zip(reported, parts, strict=True) if t is not None]
            )
        merged._response_width = response_w
        return merged

    _response_width: int = field(default=0, repr=False)


def in_prompt_order(chunks: Sequence[Samples], k: int, *, pad_id: int = 0) -> Samples:
    """One batch of chunks, its groups put back in prompt order (``prompt_indices``)."""
    joined = Samples.concat(list(chunks), pad_id=pad_id)
    if all(c.prompt_indices is None for c in chunks):
        return joined
    order = [i for c in chunks for i in (c.prompt_indices or [])]
    if len(order) != len(joined) // k:
        raise ValueError("chunks: prompt_indices must name every group of every chunk")
    groups = sorted(range(len(order)), key=order.__getitem__)
    rows = [g * k + j for g in groups for j in range(k)]
    ordered = joined.select(rows)
    ordered.group_ids = torch.arange(
        len(groups), device=ordered.group_ids.device
    ).repeat_interleave(k)
    ordered.prompt_indices = None
    return ordered


def assemble(
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    completions: torch.Tensor,
    eos_ids: Sequence[int],
    k: int,
) -> Samples:
    """Join prompts and completions and mark the response: up to and including the first EOS."""
    completions = completions.to(prompt_ids.device)
    is_eos = torch.zeros_like(completions, dtype=torch.bool)
    for eos in eos_ids:
        is_eos |= completions == eos
    seen_before = (is_eos.long().cumsum(dim=1) - is_eos.long()) > 0
    response = (~seen_before).long()
    n = prompt_ids.shape[0]
    samples = Samples(
        texts=[],
        group_ids=torch.arange(n // k, device=prompt_ids.device).repeat_interleave(k),
        sequences=torch.cat([prompt_ids, completions], dim=1),
        attention_mask=torch.cat([prompt_mask, response], dim=1),
        response_mask=torch.cat([torch.zeros_like(prompt_mask), response], dim=1),
        policy_logprobs=torch.full((n,), float("nan"), device=prompt_ids.device),
    )
    samples._response_width = completions.shape[1]
    return samples


def pad_right(chunks: Sequence[torch.Tensor], pad: int, *, rows: bool = False) -> torch.Tensor:
    """Concatenate ``[n_i, T_i]`` chunks (or 1-D rows) along dim 0, right-padding to max T."""
    if rows:
        chunks = [chunk.unsqueeze(0) for chunk in chunks]
    width = max(chunk.shape[1] for chunk in chunks)
    padded = [
        torch.nn.functional.pad(chunk, (0, width - chunk.shape[1]), value=pad) for chunk in chunks
    ]
    return torch.cat(padded, dim=0)


def rows_of(tokens: torch.Tensor, groups: list[int], k: int) -> torch.Tensor:
    """The rows of ``groups`` (k consecutive rows each) of ``tokens``."""
    rows = torch.tensor([g * k + j for g in groups for j in range(k)], device=tokens.device)
    return tokens[rows]
