"""The ``transformers`` backend: sampling with the policy's own model, in this process.

At temperature 1 without top-p a lean decode loop draws exactly what ``generate`` draws for the
same seed (tested against it), with less per-token overhead, and hands out prompt groups as they
finish; other settings go through ``generate``.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

from trainer_client.rollout.base import (
    SamplerBase,
    eos_ids,
    eval_mode,
    hand_out_at,
    mix_seed,
    model_device,
)
from trainer_client.rollout.batch import Samples, assemble, in_prompt_order, rows_of
from trainer_client.rollout.scoring import token_logprobs

__all__ = ["HFSampler"]


class HFSampler(SamplerBase):
    """Sampling with ``transformers`` models (the default backend).

    At temperature 1 without top-p a lean loop over the model's forward draws the tokens
    ``generate`` would draw for the same seed, with less per-token overhead (``lean=False``:
    always ``generate``); other settings go through ``generate``.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        batch_size: int | None = None,
        seed: int | None = None,
        max_prompt_tokens: int | None = None,
        return_logprobs: bool = True,
        lean: bool = True,
        stream: bool = True,
    ) -> None:
        if tokenizer.pad_token_id is None:
            raise ValueError("tokenizer has no pad token; set tokenizer.pad_token first")
        super().__init__(
            tokenizer,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            seed=seed,
            max_prompt_tokens=max_prompt_tokens,
            stream=stream,
        )
        self.model = model
        self.batch_size = batch_size
        #: When false, :attr:`Samples.policy_logprobs` is NaN: the caller takes them from its own
        #: forward pass (the loop's fast path at temperature 1, top-p 1).
        self.return_logprobs = return_logprobs
        #: Sample with :meth:`_decode_lean` where it draws what ``generate`` would (T = 1, no
        #: top-p); false: always ``generate``.
        self.lean = lean

    @classmethod
    def from_pretrained(
        cls, path: str | Path, *, device: str | None = None, **kwargs: Any
    ) -> HFSampler:
        """A sampler over a saved checkpoint (an HF model directory), for evaluation.

        ``device`` defaults to CUDA when there is one, where the weights load in bf16; the
        tokenizer falls back to EOS as its pad token. ``kwargs`` go to :class:`HFSampler`.
        """
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        # Typed as a torch module: transformers' decorated ``to`` does not type-check.
        model: torch.nn.Module = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype)
        model.to(device)
        return cls(model, tokenizer, **kwargs)

    def sample(self, prompts: Sequence[str], k: int) -> Samples:
        """k completions for every prompt, in prompt order (all of :meth:`sample_chunks`)."""
        chunks = list(self.sample_chunks(prompts, k))
        return in_prompt_order(chunks, k, pad_id=self._pad_id)

    def sample_chunks(self, prompts: Sequence[str], k: int) -> Iterator[Samples]:
        """k completions per prompt, handed out as whole prompt groups as soon as they exist.

        Prompts go to the model ``batch_size`` sequences at a time. On the lean path each call
        yields its groups as they finish (every sample of the group has its EOS), at least a
        :data:`STREAM_PARTS`-th of the call's groups at a time, and the rest when the call ends;
        through ``generate`` each call is one chunk. A chunk names its prompts in
        ``prompt_indices`` (finishing order is not prompt order), has chunk-local ``group_ids``
        and the common prompt width of all ``prompts``. The caller can verify a chunk's proofs
        while the model draws the rest: a chunk's tokens depend only on ``(seed, call number,
        chunk number)``, never on what the caller does between chunks (the lean path draws from
        a generator of its own; ``generate`` runs whole inside a forked global RNG).
        """
        call = self._start_call(prompts, k)
        device = model_device(self.model)
        encoded = self._encode(prompts)
        prompt_ids = encoded["input_ids"].to(device)
        prompt_mask = encoded["attention_mask"].to(device)
        per_call = max(1, (self.batch_size or len(prompts) * k) // k)
        for number, start in enumerate(range(0, len(prompts), per_call)):
            ids = prompt_ids[start : start + per_call]
            mask = prompt_mask[start : start + per_call]
            if self._lean():
                generator = self._generator(device, call, number)
                parts = self._decode_lean(ids, mask, k, generator=generator)
            else:
                parts = self._generate_once(ids, mask, k, call, number)
            while True:
                with torch.no_grad(), eval_mode(self.model):
                    part = next(parts, None)
                    if part is None:
                        break
                    groups, out = part
                    samples = self._chunk(ids, mask, groups, out, k)
                samples.prompt_indices = [start + g for g in groups]
                yield samples

    def _chunk(
        self, ids: torch.Tensor, mask: torch.Tensor, groups: list[int], out: torch.Tensor, k: int
    ) -> Samples:
        """The samples of ``groups`` (indices into ``ids``' prompts), ``out`` their tokens."""
        picked = torch.tensor(groups, device=ids.device)
        samples = assemble(
            ids[picked].repeat_interleave(k, dim=0),
            mask[picked].repeat_interleave(k, dim=0),
            out,
            eos_ids=eos_ids(self.tokenizer),
            k=k,
        )
        samples.texts = self._decode(samples, ids.shape[1])
        if self.return_logprobs:
            samples.policy_logprobs = self._score(samples, ids.shape[1])
        return samples

    def _generate_once(
        self, ids: torch.Tensor, mask: torch.Tensor, k: int, call: int, number: int
    ) -> Iterator[tuple[list[int], torch.Tensor]]:
        """One ``generate`` call (its own seeded stream) as the single part of a call."""
        with self._rng(ids.device, call, number):
            out = self._generate(ids, mask, k)
        yield list(range(ids.shape[0])), out

    def _generate(self, ids: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
        """``[n*k, T]`` completions from ``generate`` (prompt columns dropped)."""
        out = self.model.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=True,
            temperature=self.temperature,
            top_p=self.top_p,
            top_k=0,
            max_new_tokens=self.max_new_tokens,
            num_return_sequences=k,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.eos_token_id,
        )
        return out[:, ids.shape[1] :]

    def _lean(self) -> bool:
        """Whether :meth:`_decode_lean` draws what ``generate`` would: plain sampling (T = 1, no
        top-p) from a decoder-only ``transformers`` model whose generation config adds no
        logits processor of its own."""
        if not self.lean or self.temperature != 1.0 or self.top_p != 1.0:
            return False
        config = getattr(self.model, "config", None)
        gen = getattr(self.model, "generation_config", None)
        if config is None or gen is None or getattr(config, "is_encoder_decoder", False):
            return False
        if not getattr(self.model, "_supports_cache_class", True):
            return False
        return all(getattr(gen, name, None) in neutral for name, neutral in _NEUTRAL_GENERATION)

    def _decode_lean(
        self,
        ids: torch.Tensor,
        mask: torch.Tensor,
        k: int,
        *,
        generator: torch.Generator | None = None,
    ) -> Iterator[tuple[list[int], torch.Tensor]]:
        """``generate``'s multinomial sampling, step for step, without its per-token machinery.

        The same forward calls (a ``DynamicCache``, the 2-D attention mask grown by one column a
        step, position ids from the mask), the same float32 softmax and ``torch.multinomial``
        draw from the same random stream (``generator``, seeded as ``generate``'s global one
        would be), finished rows padded, and a stop as soon as every row has its EOS: the same
        tokens for the same seed (tested against ``generate``). On a small model ``generate``'s
        logits processors, stopping criteria and input preparation cost as much per token as
        the model; a model or setting this does not cover uses ``generate`` (:meth:`_lean`).

        Yields ``(groups, tokens)``: groups whose every row has finished, with their rows'
        tokens so far, as soon as at least a :data:`STREAM_PARTS`-th of the groups are waiting
        (unless :attr:`stream` is false), and the remaining groups at the end. Finished rows stay in
        the batch (as padding), so the draws, and the tokens, are those of one uninterrupted
        call.
        """
        n_groups = ids.shape[0]
        ids = ids.repeat_interleave(k, dim=0)
        mask = mask.repeat_interleave(k, dim=0)
        eos = torch.tensor(eos_ids(self.tokenizer), device=ids.device, dtype=ids.dtype)
        pad = int(self.tokenizer.pad_token_id)
        n = ids.shape[0]
        positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
        cache = DynamicCache(config=self.model.config)
        accepted = inspect.signature(self.model.forward).parameters
        cache_key = "cache" if "cache" in accepted else "past_key_values"
        unfinished = torch.ones(n, dtype=torch.long, device=ids.device)
        waiting = list(range(n_groups))  # groups not yet handed out
        enough = hand_out_at(n_groups)
        inputs, tokens = ids, []
        for _ in range(self.max_new_tokens):
            logits = self.model(
                input_ids=inputs,
                attention_mask=mask,
                position_ids=positions,
                **{cache_key: cache},
                use_cache=True,
                logits_to_keep=1,
            ).logits
            probs = torch.nn.functional.softmax(logits[:, -1].to(torch.float32), dim=-1)
            chosen = torch.multinomial(probs, num_samples=1, generator=generator).squeeze(1)
            if len(eos):
                chosen = chosen * unfinished + pad * (1 - unfinished)
                unfinished = unfinished & ~torch.isin(chosen, eos)
            tokens.append(chosen)
            if len(eos):
                # One transfer a step: which groups are done (all done: stop).
                done = (unfinished == 0).view(n_groups, k).all(dim=1).tolist()
                if all(done):
                    break
                finished = [g for g in waiting if done[g]] if self.stream else []
                if len(finished) >= enough:  # enough >= 1
                    yield finished, rows_of(torch.stack(tokens, dim=1), finished, k)
                    waiting = [g for g in waiting if not done[g]]
            inputs = chosen[:, None]
            mask = torch.cat([mask, mask.new_ones(n, 1)], dim=-1)
            positions = positions[:, -1:] + 1
        if waiting:
            yield waiting, rows_of(torch.stack(tokens, dim=1), waiting, k)

    def _generator(self, device: torch.device, call: int, chunk: int) -> torch.Generator | None:
        """The lean path's own random stream, seeded as :meth:`_rng` seeds the global one (so
        it draws what ``generate`` would); None without a seed: the global stream."""
        if self.seed is None:
            return None
        return torch.Generator(device=device).manual_seed(mix_seed(self.seed, call, chunk))

    @property
    def _pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id)

    def _encode(self, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        tokenizer = self.tokenizer
        saved = tokenizer.padding_side, tokenizer.truncation_side
        tokenizer.padding_side, tokenizer.truncation_side = "left", "left"
        try:
            return tokenizer(
                list(prompts),
                return_tensors="pt",
                padding=True,
                truncation=self.max_prompt_tokens is not None,
                max_length=self.max_prompt_tokens,
            )
        finally:
            tokenizer.padding_side, tokenizer.truncation_side = saved

    def _decode(self, samples: Samples, prompt_width: int) -> list[str]:
        response = samples.sequences[:, prompt_width:]
        mask = samples.response_mask[:, prompt_width:].bool()
        eos = set(eos_ids(self.tokenizer))
        texts = []
        for ids, keep in zip(response.tolist(), mask.tolist(), strict=True):
            tokens = [t for t, m in zip(ids, keep, strict=True) if m and t not in eos]
            texts.append(self.tokenizer.decode(tokens, skip_special_tokens=True))
        return texts

    def _score(self, samples: Samples, prompt_width: int) -> torch.Tensor:
        rows = self.batch_size or len(samples)
        scores = []
        with eval_mode(self.model):
            for start in range(0, len(samples), rows):
                part = slice(start, start + rows)
                scores.append(
                    token_logprobs(
                        self.model,
                        samples.sequences[part],
                        samples.attention_mask[part],
                        samples.response_mask[part],
                        temperature=self.temperature,
                        top_p=self.top_p,
                        response_start=prompt_width,
                    ).sum(dim=1)
                )
        return torch.cat(scores)

    @contextmanager
    def _rng(self, device: torch.device, call: int, chunk: int) -> Iterator[None]:
        if self.seed is None:
            yield
            return
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(mix_seed(self.seed, call, chunk))
            yield


#: Generation-config fields whose values add no logits processor or stopping rule to
#: ``generate``; a model whose config sets any other value samples through ``generate``.
_NEUTRAL_GENERATION: tuple[tuple[str, tuple[Any, ...]], ...] = (
    ("repetition_penalty", (None, 1.0)),
    ("encoder_repetition_penalty", (None, 1.0)),
    ("no_repeat_ngram_size", (None, 0)),
    ("encoder_no_repeat_ngram_size", (None, 0)),
    ("bad_words_ids", (None,)),
    ("min_length", (None, 0)),
    ("min_new_tokens", (None, 0)),
    ("min_p", (None,)),
    ("typical_p", (None, 1.0)),
    ("epsilon_cutoff", (None, 0.0)),
    ("eta_cutoff", (None, 0.0)),
    ("sequence_bias", (None,)),
    ("suppress_tokens", (None,)),
    ("begin_suppress_tokens", (None,)),
    ("forced_bos_token_id", (None,)),
    ("forced_eos_token_id", (None,)),
    ("exponential_decay_length_penalty", (None,)),
    ("renormalize_logits", (None, False)),
    ("guidance_scale", (None, 1.0)),
    ("watermarking_config", (None,)),
    ("stop_strings", (None,)),
    ("max_time", (None,)),
    ("compile_config", (None,)),
    ("cache_implementation", (None, "dynamic")),
)
