"""The vLLM backend: a colocated engine per training process, and the weight push into it.

``vllm`` is imported only here, and only when an engine is built; the engine's workers load the
pushed weights through :mod:`trainer_client.rollout.vllm_worker`.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator, Sequence
from typing import Any

import torch

from trainer_client.distributed import external_launcher_env
from trainer_client.rollout.base import SamplerBase, eos_ids, hand_out_at, mix_seed
from trainer_client.rollout.batch import Samples, assemble, pad_right

__all__ = ["VLLM_VERSIONS", "VLLMSampler"]


#: The vLLM releases :class:`VLLMSampler` is written against (``pip install 'sieve[vllm]'``):
#: ``LLM.collective_rpc``, ``worker_extension_cls``, ``distributed_executor_backend=
#: "external_launcher"``, ``logprobs_mode`` and ``LLM.reset_prefix_cache`` are all public there.
VLLM_VERSIONS = ">=0.22,<0.32"


class VLLMSampler(SamplerBase):
    """Sampling with a vLLM engine colocated on the training GPU; ``vllm`` is imported only here.

    One engine per training process (``distributed_executor_backend="external_launcher"``, as
    TRL's colocate mode runs it), in the same process and on the same GPU as the policy, holding
    ``gpu_memory_utilization`` of its memory. After every optimiser step :meth:`load_weights`
    pushes the policy's new weights in through vLLM's public extension point: the engine's
    workers get :class:`~trainer_client.rollout.vllm_worker.SieveWorkerExtension` as a mix-in
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
                external_launcher_env()
                engine = vllm.LLM(
                    model=model_path,
                    gpu_memory_utilization=gpu_memory_utilization,
                    dtype=dtype,
                    max_model_len=max_model_len,
                    enable_prefix_caching=True,
                    distributed_executor_backend="external_launcher",
                    worker_extension_cls="trainer_client.rollout.vllm_worker.SieveWorkerExtension",
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
        batch = hand_out_at(len(prompts))
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

    def _finished_groups(
        self, prompts: Sequence[str], k: int
    ) -> Generator[list[tuple[int, Any]], None, None]:
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
                    number = _request_index(output.request_id, prefix)
                    if output.finished and number is not None and number in pending:
                        pending.discard(number)
                        finished.append((number, output))
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
            seed=None if self.seed is None else mix_seed(self.seed, call),
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
        completions = pad_right(
            [torch.tensor(row or [pad]) for row in completion_rows], pad, rows=True
        )
        samples = assemble(prompt_ids, prompt_mask, completions, eos_ids(self.tokenizer), k)
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


def _sampled_logprobs(logprobs: Any, token_ids: Sequence[int]) -> list[float]:
    """The sampled tokens' log-probs from vLLM's per-position ``{token id: Logprob}`` entries."""
    if logprobs is None:
        raise RuntimeError("vLLM returned no log-probs; SamplingParams(logprobs=0) asks for them")
    values = []
    for position, token in enumerate(token_ids):
        entry = logprobs[position][token]
        values.append(float(getattr(entry, "logprob", entry)))
    return values
