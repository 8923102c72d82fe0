"""Draw k completions per prompt from the policy, as token ids the trainer can score and update on.

The loop needs more than text: the exact token ids that were sampled (re-tokenising decoded text
does not round-trip), which of them are the response (loss and log-probs run over those only), and
the sampling policy's sequence log-probs ``log π(y|x)`` for the importance weights of α-DPG.

Layout of a batch of ``N = len(prompts) * k`` samples: prompts are left-padded to a common width
``P`` and completions right-padded to ``T``, so column ``P`` is every sample's first generated
token. Prompt ``i``'s k samples are rows ``i*k .. i*k+k-1`` and ``group_ids`` says so.

Sampling is reproducible: with ``seed`` set, each call draws from its own generator seeded by
``(seed, number of earlier calls)``, so restoring :meth:`HFSampler.state_dict` replays the same
samples without touching the global RNG the rest of training uses.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

__all__ = [
    "STREAM_PARTS",
    "VLLM_VERSIONS",
    "HFSampler",
    "LogprobGap",
    "Sampler",
    "Samples",
    "VLLMSampler",
    "in_prompt_order",
    "token_logprobs",
]


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
        if all(p.sampler_token_logprobs is not None for p in parts):
            merged.sampler_token_logprobs = torch.cat(
                [widen(p.sampler_token_logprobs, p, 0) for p in parts]
            )
        merged._response_width = response_w
        return merged

    _response_width: int = field(default=0, repr=False)


class Sampler(Protocol):
    def sample(self, prompts: Sequence[str], k: int) -> Samples: ...


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


class _SamplerBase:
    """What both samplers share: the sampling settings, the stream flag and the call counter.

    Each call's draws are seeded by ``(seed, call number)``, so :meth:`state_dict` (the number
    of calls so far) is all a checkpoint needs to replay the same samples.
    """

    def __init__(
        self,
        tokenizer: Any,
        *,
        temperature: float,
        top_p: float,
        max_new_tokens: int,
        seed: int | None,
        max_prompt_tokens: int | None,
        stream: bool,
    ) -> None:
        self.tokenizer = tokenizer
        self.temperature = temperature
        self.top_p = top_p
        self.max_new_tokens = max_new_tokens
        self.seed = seed
        self.max_prompt_tokens = max_prompt_tokens
        #: Hand out groups as they finish (``sample_chunks``; :class:`HFSampler` on its lean
        #: path); False: one chunk per call (under FSDP2 every process must draw the same
        #: number of chunks: each chunk's passes are collective there).
        self.stream = stream
        self.calls = 0

    def state_dict(self) -> dict[str, int]:
        return {"calls": self.calls}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.calls = int(state["calls"])

    def _start_call(self, prompts: Sequence[str], k: int) -> int:
        """Check a request and number the call (its draws' seed)."""
        if not prompts:
            raise ValueError("prompts: need at least one prompt")
        if k < 1:
            raise ValueError(f"k: need at least one sample per prompt, got {k}")
        call = self.calls
        self.calls += 1
        return call


class HFSampler(_SamplerBase):
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
        cls, path: str | Any, *, device: str | None = None, **kwargs: Any
    ) -> HFSampler:
        """A sampler over a saved checkpoint (an HF model directory), for evaluation.

        ``device`` defaults to CUDA when there is one, where the weights load in bf16; the
        tokenizer falls back to EOS as its pad token. ``kwargs`` go to :class:`HFSampler`.
        """
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype).to(device)
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
        device = _model_device(self.model)
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
                with torch.no_grad(), _eval_mode(self.model):
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
        samples = _assemble(
            ids[picked].repeat_interleave(k, dim=0),
            mask[picked].repeat_interleave(k, dim=0),
            out,
            eos_ids=_eos_ids(self.tokenizer),
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
        from transformers import DynamicCache

        n_groups = ids.shape[0]
        ids = ids.repeat_interleave(k, dim=0)
        mask = mask.repeat_interleave(k, dim=0)
        eos = torch.tensor(_eos_ids(self.tokenizer), device=ids.device, dtype=ids.dtype)
        pad = int(self.tokenizer.pad_token_id)
        n = ids.shape[0]
        positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
        cache = DynamicCache(config=self.model.config)
        accepted = inspect.signature(self.model.forward).parameters
        cache_key = "cache" if "cache" in accepted else "past_key_values"
        unfinished = torch.ones(n, dtype=torch.long, device=ids.device)
        waiting = list(range(n_groups))  # groups not yet handed out
        enough = _hand_out_at(n_groups)
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
                    yield finished, _rows_of(torch.stack(tokens, dim=1), finished, k)
                    waiting = [g for g in waiting if not done[g]]
            inputs = chosen[:, None]
            mask = torch.cat([mask, mask.new_ones(n, 1)], dim=-1)
            positions = positions[:, -1:] + 1
        if waiting:
            yield waiting, _rows_of(torch.stack(tokens, dim=1), waiting, k)

    def _generator(self, device: torch.device, call: int, chunk: int) -> torch.Generator | None:
        """The lean path's own random stream, seeded as :meth:`_rng` seeds the global one (so
        it draws what ``generate`` would); None without a seed: the global stream."""
        if self.seed is None:
            return None
        return torch.Generator(device=device).manual_seed(_mix(self.seed, call, chunk))

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
        eos = set(_eos_ids(self.tokenizer))
        texts = []
        for ids, keep in zip(response.tolist(), mask.tolist(), strict=True):
            tokens = [t for t, m in zip(ids, keep, strict=True) if m and t not in eos]
            texts.append(self.tokenizer.decode(tokens, skip_special_tokens=True))
        return texts

    def _score(self, samples: Samples, prompt_width: int) -> torch.Tensor:
        rows = self.batch_size or len(samples)
        scores = []
        with _eval_mode(self.model):
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
    def _rng(self, device: torch.device, call: int, chunk: int):
        if self.seed is None:
            yield
            return
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(_mix(self.seed, call, chunk))
            yield


#: A sampler call (a lean ``generate`` call, a vLLM call) hands out finished groups once at
#: least this fraction (1/N) of its groups are waiting. Each chunk costs the trainer a reference
#: pass and a forward of its own, so one chunk per finished group would spend on small batches
#: what overlapping the verifier saves; a handful still lets the verifier start on the first
#: quarter while the rest is drawn.
STREAM_PARTS = 4


def _hand_out_at(n_groups: int) -> int:
    """How many finished groups a streaming call of ``n_groups`` waits for before handing them
    out: a :data:`STREAM_PARTS`-th, at least one."""
    return max(1, math.ceil(n_groups / STREAM_PARTS))


#: The vLLM releases :class:`VLLMSampler` is written against (``pip install 'sieve[vllm]'``):
#: ``LLM.collective_rpc``, ``worker_extension_cls``, ``distributed_executor_backend=
#: "external_launcher"``, ``logprobs_mode`` and ``LLM.reset_prefix_cache`` are all public there.
VLLM_VERSIONS = ">=0.22,<0.32"


class VLLMSampler(_SamplerBase):
    """Sampling with a vLLM engine colocated on the training GPU; ``vllm`` is imported only here.

    One engine per training process (``distributed_executor_backend="external_launcher"``, as
    TRL's colocate mode runs it), in the same process and on the same GPU as the policy, holding
    ``gpu_memory_utilization`` of its memory. After every optimiser step :meth:`load_weights`
    pushes the policy's new weights in through vLLM's public extension point: the engine's
    workers get :class:`~trainer_client.vllm_worker.SieveWorkerExtension` as a mix-in
    (``worker_extension_cls``) and :meth:`LLM.collective_rpc` calls its loader, which hands the
    tensors to the model's own ``load_weights`` (in-process: no copy through IPC). The prefix
    cache is then reset, since cached keys and values were computed by the old weights.

    The engine returns each sampled token's log-probability before temperature and top-p
    (``logprobs_mode="raw_logprobs"``): the same quantity the training forward computes, so
    :attr:`Samples.sampler_token_logprobs` minus the training log-probs is the numerical gap
    between the two engines (``sampling/logprob_gap``), not a difference of distributions.

    Groups stream out as vLLM finishes them: :meth:`sample_chunks` adds every prompt as one
    request to ``LLM.llm_engine`` and steps the engine itself (the loop ``LLM.generate`` runs
    inside), handing out finished prompt groups a quarter of the call at a time
    (:data:`STREAM_PARTS`), so the trainer verifies the first groups while the engine
    still draws the slow ones; :meth:`sample` is the same draws in one batch, in prompt order.
    """

    def __init__(
        self,
        model_path: str,
        tokenizer: Any,
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        seed: int | None = None,
        max_prompt_tokens: int | None = None,
        gpu_memory_utilization: float = 0.3,
        dtype: str = "auto",
        max_model_len: int | None = None,
        engine: Any = None,
        sampling_params: Any = None,
        load_chunk_bytes: int = 512 * 2**20,
        stream: bool = True,
    ) -> None:
        if engine is None or sampling_params is None:
            try:
                import vllm
            except ImportError as exc:  # pragma: no cover - optional extra
                raise ImportError(
                    f"sampling.backend=vllm needs `pip install 'sieve[vllm]'` (vllm{VLLM_VERSIONS})"
                ) from exc
            sampling_params = sampling_params or vllm.SamplingParams
            if engine is None:  # pragma: no cover - needs a GPU
                _external_launcher_env()
                engine = vllm.LLM(
                    model=model_path,
                    gpu_memory_utilization=gpu_memory_utilization,
                    dtype=dtype,
                    max_model_len=max_model_len,
                    enable_prefix_caching=True,
                    distributed_executor_backend="external_launcher",
                    worker_extension_cls="trainer_client.vllm_worker.SieveWorkerExtension",
                    logprobs_mode="raw_logprobs",
                    seed=seed or 0,
                )
        #: ``max_prompt_tokens`` truncates nothing here: the trainer leaves out longer prompts
        #: beforehand (:func:`~trainer_client.data.filter_long_prompts`); vLLM refuses what
        #: does not fit.
        super().__init__(
            tokenizer,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            seed=seed,
            max_prompt_tokens=max_prompt_tokens,
            stream=stream,
        )
        self.engine = engine
        self._sampling_params = sampling_params
        self.load_chunk_bytes = load_chunk_bytes
        #: Weight pushes so far (one per optimiser step).
        self.weight_updates = 0

    @torch.no_grad()
    def load_weights(self, named_parameters: Iterable[tuple[str, torch.Tensor]]) -> int:
        """Copy the policy's current weights into the engine (call after each optimiser step).

        Sharded (FSDP2) parameters are gathered one at a time, on every process (the gather is
        collective), and sent in chunks of about ``load_chunk_bytes``, so at most one chunk of
        full tensors exists beside the shards. Returns the number of tensors loaded.
        """
        chunk: list[tuple[str, torch.Tensor]] = []
        size = loaded = 0
        for name, param in named_parameters:
            tensor = param.detach()
            if hasattr(tensor, "full_tensor"):  # a DTensor shard
                tensor = tensor.full_tensor()
            chunk.append((name, tensor))
            size += tensor.numel() * tensor.element_size()
            if size >= self.load_chunk_bytes:
                loaded += self._send(chunk)
                chunk, size = [], 0
        if chunk:
            loaded += self._send(chunk)
        self.engine.reset_prefix_cache()
        self.weight_updates += 1
        return loaded

    def _send(self, chunk: list[tuple[str, torch.Tensor]]) -> int:
        results = self.engine.collective_rpc("sieve_load_weights", args=(chunk,))
        return int(results[0]) if results else 0

    def sample(self, prompts: Sequence[str], k: int) -> Samples:
        """k completions for every prompt, one batch in prompt order (all of the call's
        finished groups, put back in prompt order)."""
        outputs: list[Any] = [None] * len(prompts)
        for finished in self._finished_groups(prompts, k):
            for index, output in finished:
                outputs[index] = output
        return self._build(outputs, k)

    def sample_chunks(self, prompts: Sequence[str], k: int) -> Iterator[Samples]:
        """k completions per prompt, handed out in chunks of whole groups as vLLM finishes them.

        Every prompt is one request (``n=k``) to the engine, which is then stepped; a chunk is
        yielded as soon as at least ``ceil(len(prompts) / STREAM_PARTS)`` finished groups
        are waiting (the rest at the end), so its proofs are verified while the engine draws the
        others. Chunks come in finishing order, each with its own layout, chunk-local
        ``group_ids`` and :attr:`Samples.prompt_indices` naming its groups' prompts. The call's
        draws are those of :meth:`sample` for the same seed and call number.
        """
        if not self.stream:
            yield self.sample(prompts, k)
            return
        batch = _hand_out_at(len(prompts))
        waiting: list[tuple[int, Any]] = []
        groups = self._finished_groups(prompts, k)
        try:
            for finished in groups:
                waiting.extend(finished)
                if len(waiting) >= batch:
                    yield self._chunk(waiting, k)
                    waiting = []
        finally:
            groups.close()  # a caller that stops early: the call's requests leave the engine
        if waiting:
            yield self._chunk(waiting, k)

    def _finished_groups(self, prompts: Sequence[str], k: int) -> Iterator[list[tuple[int, Any]]]:
        """``(prompt index, finished RequestOutput)`` pairs, a list per engine step that
        finished any (one call number, one seed, for the whole call).

        Drives ``LLM.llm_engine`` (vLLM's v1 ``LLMEngine``, ``vllm/v1/engine/llm_engine.py``)
        as ``LLM._run_engine`` does: ``add_request(request_id, prompt, params)`` for every
        prompt (a raw prompt string is tokenised by the engine; n > 1 fans out into child
        requests whose completions come back together), then ``step()`` while
        ``has_unfinished_requests()``, keeping the ``RequestOutput`` s marked ``finished``. The
        params ask for the final output only, as ``LLM.generate`` does; an id may come back
        with a suffix recent engines append (:func:`_request_index`). An engine without
        ``llm_engine`` (an older stand-in) gets one ``generate`` call, all groups finishing at
        once.
        """
        call = self._start_call(prompts, k)
        params = self._params(k, call)
        engine = getattr(self.engine, "llm_engine", None)
        if engine is None:
            outputs = self.engine.generate(list(prompts), params, use_tqdm=False)
            yield list(enumerate(outputs))
            return
        if hasattr(params, "output_kind"):  # pragma: no cover - a real vllm.SamplingParams
            from vllm.sampling_params import RequestOutputKind

            params.output_kind = RequestOutputKind.FINAL_ONLY  # as LLM.generate sets it
        prefix = f"sieve-{call}-"
        pending: set[int] = set()
        try:
            for index, prompt in enumerate(prompts):
                engine.add_request(f"{prefix}{index}", prompt, params)
                pending.add(index)
            while pending:
                if not engine.has_unfinished_requests():
                    raise RuntimeError(
                        f"vLLM: the engine finished with {len(pending)} of this call's "
                        "requests unanswered"
                    )
                finished = []
                for output in engine.step():
                    index = _request_index(output.request_id, prefix)
                    if output.finished and index in pending:
                        pending.discard(index)
                        finished.append((index, output))
                if finished:
                    yield finished
        finally:
            if pending and hasattr(engine, "abort_request"):
                # The caller stopped early (or a step failed): leave no requests of this
                # call in the engine for the next call's steps to run.
                engine.abort_request([f"{prefix}{i}" for i in sorted(pending)])

    def _params(self, k: int, call: int) -> Any:
        return self._sampling_params(
            n=k,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_new_tokens,
            logprobs=0,
            seed=None if self.seed is None else _mix(self.seed, call),
        )

    def _chunk(self, finished: Sequence[tuple[int, Any]], k: int) -> Samples:
        samples = self._build([output for _, output in finished], k)
        samples.prompt_indices = [index for index, _ in finished]
        return samples

    def _build(self, outputs: Sequence[Any], k: int) -> Samples:
        """One batch from finished ``RequestOutput`` s, their groups in the given order: the
        engine's prompt and completion ids, left- and right-padded, and its per-token log-probs
        (which are the policy log-probs of the samples)."""
        pad = self.tokenizer.pad_token_id
        prompt_rows, completion_rows, token_logprobs_rows = [], [], []
        for output in outputs:
            if len(output.outputs) != k:
                raise RuntimeError(f"vLLM returned {len(output.outputs)} samples, asked for {k}")
            for completion in output.outputs:
                prompt_rows.append(list(output.prompt_token_ids))
                ids = list(completion.token_ids)
                completion_rows.append(ids)
                token_logprobs_rows.append(_sampled_logprobs(completion.logprobs, ids))
        width = max(len(row) for row in prompt_rows)
        prompt_ids = torch.full((len(prompt_rows), width), pad, dtype=torch.long)
        prompt_mask = torch.zeros_like(prompt_ids)
        for i, row in enumerate(prompt_rows):
            prompt_ids[i, width - len(row) :] = torch.tensor(row)
            prompt_mask[i, width - len(row) :] = 1
        completions = _pad_right(
            [torch.tensor(row or [pad]) for row in completion_rows], pad, rows=True
        )
        samples = _assemble(prompt_ids, prompt_mask, completions, _eos_ids(self.tokenizer), k)
        samples.texts = [c.text for o in outputs for c in o.outputs]
        per_token = torch.zeros(samples.sequences.shape, dtype=torch.float32)
        for i, row in enumerate(token_logprobs_rows):
            per_token[i, width : width + len(row)] = torch.tensor(row, dtype=torch.float32)
        per_token *= samples.response_mask.to(per_token.dtype)
        samples.sampler_token_logprobs = per_token
        samples.policy_logprobs = per_token.sum(dim=1)
        return samples


def _request_index(request_id: str, prefix: str) -> int | None:
    """The prompt index in one of :meth:`VLLMSampler._finished_groups`' request ids
    (``sieve-<call>-<index>``, with whatever suffix an engine appends kept off); None for
    another call's request."""
    if not request_id.startswith(prefix):
        return None
    digits = request_id[len(prefix) :].split("-", 1)[0]
    return int(digits) if digits.isdigit() else None


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

    def metric(self, batch: Any = None) -> dict[str, float]:
        total, tokens = float(self._total), int(self._tokens)
        self._total, self._tokens = 0.0, 0
        return {"sampling/logprob_gap": total / tokens} if tokens else {}


def _external_launcher_env() -> None:  # pragma: no cover - needs a GPU
    """The torchrun variables vLLM's ``external_launcher`` reads; a plain single process (no
    ``accelerate launch``) has none, and then is rank 0 of 1."""
    import os
    import socket

    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("LOCAL_RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    if "MASTER_PORT" not in os.environ:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            os.environ["MASTER_PORT"] = str(sock.getsockname()[1])


def _sampled_logprobs(logprobs: Any, token_ids: Sequence[int]) -> list[float]:
    """The sampled tokens' log-probs from vLLM's per-position ``{token id: Logprob}`` entries."""
    if logprobs is None:
        raise RuntimeError("vLLM returned no log-probs; SamplingParams(logprobs=0) asks for them")
    values = []
    for position, token in enumerate(token_ids):
        entry = logprobs[position][token]
        values.append(float(getattr(entry, "logprob", entry)))
    return values


def _rows_of(tokens: torch.Tensor, groups: list[int], k: int) -> torch.Tensor:
    """The rows of ``groups`` (k consecutive rows each) of ``tokens``."""
    rows = torch.tensor([g * k + j for g in groups for j in range(k)], device=tokens.device)
    return tokens[rows]


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


def _assemble(
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


def _pad_right(chunks: Sequence[torch.Tensor], pad: int, *, rows: bool = False) -> torch.Tensor:
    """Concatenate ``[n_i, T_i]`` chunks (or 1-D rows) along dim 0, right-padding to max T."""
    if rows:
        chunks = [chunk.unsqueeze(0) for chunk in chunks]
    width = max(chunk.shape[1] for chunk in chunks)
    padded = [
        torch.nn.functional.pad(chunk, (0, width - chunk.shape[1]), value=pad) for chunk in chunks
    ]
    return torch.cat(padded, dim=0)


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


def _eos_ids(tokenizer: Any) -> list[int]:
    eos = tokenizer.eos_token_id
    if eos is None:
        return []
    return list(eos) if isinstance(eos, list | tuple) else [int(eos)]


def _mix(seed: int, calls: int, chunk: int = 0) -> int:
    """A per-call (and per-chunk) seed; distinct calls and chunks get unrelated streams."""
    return (seed * 1_000_003 + calls * 7_919 + chunk * 104_729 + 12_345) % (2**63 - 1)


def _model_device(model: Any) -> torch.device:
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")


@contextmanager
def _eval_mode(model: Any):
    """Sample and score without dropout; put the model back the way it was."""
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        yield
    finally:
        if was_training:
            model.train()
