"""VLLMSampler against a stand-in engine with vLLM's interface (no GPU, no vllm here).

The stand-in samples with a copy of the policy (through ``transformers``), reports each sampled
token's log-prob plus a known offset ``DELTA``, and loads weights only through
``collective_rpc("sieve_load_weights", …)`` on a worker carrying
:class:`~trainer_client.rollout.vllm_worker.SieveWorkerExtension`, as vLLM's workers do.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch

from tests.trainer.loop.helpers import make_config, make_trainer, tiny_gpt2
from trainer_client.rollout import HFSampler, VLLMSampler, token_logprobs
from trainer_client.rollout.vllm_worker import SieveWorkerExtension
from trainer_client.stages.score import LogprobGap

DELTA = 0.01


@dataclass
class Params:
    """What the sampler passes to ``SamplingParams``."""

    n: int
    temperature: float
    top_p: float
    max_tokens: int
    logprobs: int
    seed: int | None


class _Runner:
    def __init__(self, model):
        self.model = model
        model.load_weights = self._load  # vLLM models load Hugging Face-named tensors

    def _load(self, weights):
        params = dict(self.model.named_parameters())
        for name, tensor in weights:
            params[name].data.copy_(tensor)


class FakeWorker(SieveWorkerExtension):
    def __init__(self, model):
        self.model_runner = _Runner(model)


class FakeLLM:
    """``vllm.LLM``'s surface: ``generate``, ``collective_rpc``, ``reset_prefix_cache`` and (with
    ``streaming``) an ``llm_engine`` to step; ``streaming=False`` is an engine without one."""

    def __init__(self, model, tokenizer, *, streaming=True, schedule=(3, 1, 4, 2, 6, 5, 2, 7)):
        self.model = copy.deepcopy(model).eval()
        self.tokenizer = tokenizer
        self.worker = FakeWorker(self.model)
        self.rpc_calls: list[int] = []
        self.prefix_resets = 0
        self.params: list[Params] = []
        self.generate_calls = 0
        if streaming:
            self.llm_engine = FakeEngine(self, schedule)

    def collective_rpc(self, method, args=()):
        self.rpc_calls.append(len(args[0]))
        return [getattr(self.worker, method)(*args)]

    def reset_prefix_cache(self):
        self.prefix_resets += 1

    def generate(self, prompts, params, use_tqdm=False):
        self.generate_calls += 1
        self.params.append(params)
        return self.complete(prompts, params)

    @torch.no_grad()
    def complete(self, prompts, params):
        """vLLM's finished ``RequestOutput`` s: the policy's samples, their log-probs + DELTA."""
        hf = HFSampler(
            self.model, self.tokenizer, max_new_tokens=params.max_tokens, seed=params.seed
        )
        samples = hf.sample(prompts, params.n)
        tokens = token_logprobs(
            self.model, samples.sequences, samples.attention_mask, samples.response_mask
        )
        width = samples.prompt_width
        outputs = []
        for i in range(len(prompts)):
            rows = range(i * params.n, (i + 1) * params.n)
            prompt = samples.sequences[rows[0], :width][
                samples.attention_mask[rows[0], :width] == 1
            ]
            completions = []
            for r in rows:
                keep = samples.response_mask[r, width:] == 1
                ids = samples.sequences[r, width:][keep].tolist()
                values = tokens[r, width:][keep].tolist()
                completions.append(
                    SimpleNamespace(
                        token_ids=ids,
                        text=samples.texts[r],
                        logprobs=[
                            {t: SimpleNamespace(logprob=v + DELTA)}
                            for t, v in zip(ids, values, strict=True)
                        ],
                    )
                )
            outputs.append(
                SimpleNamespace(
                    request_id=None, finished=True, prompt_token_ids=prompt.tolist(),
                    outputs=completions,
                )
            )  # fmt: skip
        return outputs


class FakeEngine:
    """``LLM.llm_engine``: ``add_request`` / ``step`` / ``has_unfinished_requests``.

    The i-th request added finishes ``schedule[i % len(schedule)]`` steps after it was added
    (not in prompt order); each step reports every running request, the unfinished ones
    without completions, as vLLM's cumulative outputs do. A request's samples are drawn from
    its own prompt and seed, so they do not depend on when it finishes.
    """

    def __init__(self, llm: FakeLLM, schedule):
        self.llm = llm
        self.schedule = schedule
        self.steps = 0
        self.added = 0
        self.running: dict[str, tuple[int, str, Params]] = {}
        self.request_ids: list[str] = []
        self.aborted: list[str] = []
        #: ``(step, request id)`` in finishing order.
        self.finished: list[tuple[int, str]] = []

    def add_request(self, request_id, prompt, params):
        assert isinstance(request_id, str) and request_id not in self.running
        self.llm.params.append(params)
        self.request_ids.append(request_id)
        due = self.steps + self.schedule[self.added % len(self.schedule)]
        self.running[request_id] = (due, prompt, params)
        self.added += 1

    def has_unfinished_requests(self):
        return bool(self.running)

    def abort_request(self, request_ids):
        for request_id in request_ids:
            self.aborted.append(request_id)
            self.running.pop(request_id, None)

    def step(self):
        self.steps += 1
        outputs = []
        for request_id, (due, prompt, params) in list(self.running.items()):
            if due > self.steps:
                outputs.append(SimpleNamespace(request_id=request_id, finished=False, outputs=[]))
                continue
            (output,) = self.llm.complete([prompt], params)
            output.request_id = request_id
            outputs.append(output)
            del self.running[request_id]
            self.finished.append((self.steps, request_id))
        return outputs


def _sampler(model, tokenizer, *, streaming=True, schedule=(3, 1, 4, 2, 6, 5, 2, 7), **kwargs):
    engine = FakeLLM(model, tokenizer, streaming=streaming, schedule=schedule)
    sampler = VLLMSampler(
        "unused", tokenizer, engine=engine, sampling_params=Params, max_new_tokens=6, seed=3,
        **kwargs,
    )  # fmt: skip
    return sampler, engine


def _vllm_trainer(tmp_path, model, tokenizer, problems):
    """A Trainer sampling through :func:`_sampler`'s stand-in engine."""
    sampler, engine = _sampler(model, tokenizer)
    cfg = make_config(tmp_path, optim={"lr": 5e-2, "warmup_steps": 0, "micro_batch_size": 8})
    trainer = make_trainer(cfg, tokenizer, problems, model=model, sampler=sampler)
    return trainer, sampler, engine


def test_samples_carry_the_engines_token_logprobs(tokenizer):
    model = tiny_gpt2(tokenizer)
    sampler, engine = _sampler(model, tokenizer, max_prompt_tokens=16)
    samples = sampler.sample(["12=", "7="], k=3)
    assert len(samples) == 6 and samples.group_ids.tolist() == [0, 0, 0, 1, 1, 1]
    assert engine.params[0].n == 3 and engine.params[0].logprobs == 0
    mask = samples.response_mask.bool()
    assert samples.sampler_token_logprobs is not None
    assert (samples.sampler_token_logprobs[~mask] == 0).all()
    torch.testing.assert_close(samples.policy_logprobs, samples.sampler_token_logprobs.sum(1))
    # The stand-in reports the model's own log-probs + DELTA: the training forward differs by it.
    training = token_logprobs(
        model, samples.sequences, samples.attention_mask, samples.response_mask
    )
    gap = LogprobGap()
    gap.add(training, samples)
    assert gap.metric()["sampling/logprob_gap"] == pytest.approx(DELTA, abs=1e-5)
    assert gap.metric() == {}  # read once per step


def test_load_weights_goes_through_collective_rpc_in_chunks(tokenizer):
    model = tiny_gpt2(tokenizer)
    sampler, engine = _sampler(model, tokenizer, load_chunk_bytes=4096)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    loaded = sampler.load_weights(model.named_parameters())
    assert loaded == len(list(model.parameters()))
    assert len(engine.rpc_calls) > 1 and sum(engine.rpc_calls) == loaded
    assert engine.prefix_resets == 1 and sampler.weight_updates == 1
    for (name, mine), (_, theirs) in zip(
        model.named_parameters(), engine.model.named_parameters(), strict=True
    ):
        torch.testing.assert_close(theirs, mine, msg=name)


def test_sharded_parameters_are_gathered_before_loading(tokenizer):
    model = tiny_gpt2(tokenizer)
    sampler, engine = _sampler(model, tokenizer)
    name, param = next(iter(model.named_parameters()))

    class Shard:
        def __init__(self, full):
            self.full = full

        def detach(self):
            return self

        def full_tensor(self):
            return self.full + 5.0

    sampler.load_weights([(name, Shard(param.detach()))])
    torch.testing.assert_close(dict(engine.model.named_parameters())[name], param + 5.0)


def test_the_loop_pushes_weights_every_step_and_logs_the_gap(tmp_path, tokenizer, problems):
    model = tiny_gpt2(tokenizer)
    trainer, sampler, engine = _vllm_trainer(tmp_path, model, tokenizer, problems)
    history = trainer.train(max_steps=3)
    trainer.close()
    assert sampler.weight_updates == 3 and engine.prefix_resets == 3
    # Had the engine kept stale weights, the policy would drift away from it and the gap grow.
    for metrics in history:
        assert metrics["sampling/logprob_gap"] == pytest.approx(DELTA, abs=1e-4)
    for (name, mine), (_, theirs) in zip(
        trainer.unwrapped_model.named_parameters(), engine.model.named_parameters(), strict=True
    ):
        torch.testing.assert_close(theirs, mine, msg=name)


def test_transformers_sampling_at_temperature_one_has_no_gap_metric(tmp_path, tokenizer, problems):
    cfg = make_config(tmp_path)
    trainer = make_trainer(cfg, tokenizer, problems)
    metrics = trainer.train_step()
    trainer.close()
    assert "sampling/logprob_gap" not in metrics


PROMPTS = [f"{i}+{i}=" for i in range(1, 9)]
#: With FakeEngine's default schedule, the steps on which the 8 prompts' requests finish.
FINISH_STEP = [3, 1, 4, 2, 6, 5, 2, 7]


def _response(samples, row):
    keep = samples.response_mask[row].bool()
    return samples.sequences[row][keep].tolist()


def _prompt(samples, row):
    keep = samples.attention_mask[row, : samples.prompt_width].bool()
    return samples.sequences[row, : samples.prompt_width][keep].tolist()


def test_chunks_come_out_as_groups_finish(tokenizer):
    sampler, engine = _sampler(tiny_gpt2(tokenizer), tokenizer)
    chunks, steps_at_yield, unfinished_at_yield = [], [], []
    for chunk in sampler.sample_chunks(PROMPTS, k=2):
        chunks.append(chunk)
        steps_at_yield.append(engine.llm_engine.steps)
        unfinished_at_yield.append(len(engine.llm_engine.running))
    # ceil(8 / 4) = 2 groups a chunk: step 2 finishes prompts 3 and 6 after prompt 1 (step 1),
    # step 4 prompt 2 after 0, step 6 prompt 4 after 5; prompt 7 (step 7) is the remainder.
    assert [c.prompt_indices for c in chunks] == [[1, 3, 6], [0, 2], [5, 4], [7]]
    assert steps_at_yield == [2, 4, 6, 7]
    # The first chunk left the engine before the slowest requests were drawn.
    assert unfinished_at_yield[0] == 5 and max(FINISH_STEP) > steps_at_yield[0]
    assert sampler.calls == 1
    for chunk in chunks:
        assert len(chunk.prompt_indices) == len(chunk) // 2
        assert chunk.group_ids.tolist() == [g for g in range(len(chunk) // 2) for _ in range(2)]


@pytest.mark.parametrize("n_prompts", [1, 3, 5, 8])
def test_a_chunk_waits_for_a_quarter_of_the_prompts(tokenizer, n_prompts):
    from trainer_client.rollout import STREAM_PARTS

    sampler, engine = _sampler(tiny_gpt2(tokenizer), tokenizer)
    sampler.max_new_tokens = 2
    chunks = list(sampler.sample_chunks(PROMPTS[:n_prompts], k=1))
    batch = max(1, -(-n_prompts // STREAM_PARTS))
    # The rule, replayed from the engine's record: after each step, hand out every waiting
    # group once at least ``batch`` are waiting; the rest at the end.
    expected, waiting = [], []
    for step in range(1, engine.llm_engine.steps + 1):
        waiting += [int(r.rsplit("-", 1)[1]) for s, r in engine.llm_engine.finished if s == step]
        if len(waiting) >= batch:
            expected.append(waiting)
            waiting = []
    expected += [waiting] if waiting else []
    assert [c.prompt_indices for c in chunks] == expected
    assert all(len(c) >= batch for c in chunks[:-1])
    assert sorted(i for c in chunks for i in c.prompt_indices) == list(range(n_prompts))
    if n_prompts >= 3:  # distinct finishing steps: more than one chunk
        assert len(chunks) > 1


def test_chunks_hold_the_draws_of_sample(tokenizer):
    model = tiny_gpt2(tokenizer)
    streamed, engine = _sampler(model, tokenizer)
    whole_sampler, whole_engine = _sampler(model, tokenizer)
    chunks = list(streamed.sample_chunks(PROMPTS, k=3))
    whole = whole_sampler.sample(PROMPTS, k=3)
    assert whole.prompt_indices is None and whole.group_ids.tolist() == [
        g for g in range(len(PROMPTS)) for _ in range(3)
    ]
    # sample() steps the engine too, and puts the groups back in prompt order.
    assert whole_engine.llm_engine.steps == max(FINISH_STEP) and whole_engine.generate_calls == 0
    seen = [i for c in chunks for i in c.prompt_indices]
    assert sorted(seen) == list(range(len(PROMPTS))) and seen != sorted(seen)
    for chunk in chunks:
        assert chunk.sampler_token_logprobs is not None
        for group, index in enumerate(chunk.prompt_indices):
            for j in range(3):
                mine, theirs = group * 3 + j, index * 3 + j
                assert _prompt(chunk, mine) == tokenizer(PROMPTS[index])["input_ids"]
                assert _prompt(chunk, mine) == _prompt(whole, theirs)
                assert chunk.texts[mine] == whole.texts[theirs]
                assert _response(chunk, mine) == _response(whole, theirs)
                torch.testing.assert_close(
                    chunk.sampler_token_logprobs[mine][chunk.response_mask[mine].bool()],
                    whole.sampler_token_logprobs[theirs][whole.response_mask[theirs].bool()],
                )
                torch.testing.assert_close(
                    chunk.policy_logprobs[mine], whole.policy_logprobs[theirs]
                )
    # One request per prompt, n=k, one seed per call: the call's requests share it.
    assert [p.n for p in engine.params] == [3] * len(PROMPTS)
    assert {p.seed for p in engine.params} == {whole_engine.params[0].seed}


def test_without_streaming_a_call_is_one_chunk_in_prompt_order(tokenizer):
    """Under FSDP2 the trainer turns streaming off: every process then draws one chunk a call."""
    model = tiny_gpt2(tokenizer)
    sampler, engine = _sampler(model, tokenizer, stream=False)
    chunks = list(sampler.sample_chunks(PROMPTS, k=2))
    assert len(chunks) == 1 and chunks[0].prompt_indices is None  # the prompts, in order
    assert engine.llm_engine.steps == max(engine.llm_engine.schedule)  # the engine ran to the end
    again, _ = _sampler(model, tokenizer)
    whole = again.sample(PROMPTS, k=2)
    assert whole.texts == chunks[0].texts and torch.equal(whole.sequences, chunks[0].sequences)


def test_request_ids_and_seeds_are_new_every_call(tokenizer):
    sampler, engine = _sampler(tiny_gpt2(tokenizer), tokenizer)
    list(sampler.sample_chunks(PROMPTS[:3], k=1))
    sampler.sample(PROMPTS[:3], k=1)
    ids = engine.llm_engine.request_ids
    assert ids == ["sieve-0-0", "sieve-0-1", "sieve-0-2", "sieve-1-0", "sieve-1-1", "sieve-1-2"]
    assert engine.params[0].seed != engine.params[3].seed and sampler.calls == 2


def test_an_abandoned_call_leaves_no_requests_behind(tokenizer):
    sampler, engine = _sampler(tiny_gpt2(tokenizer), tokenizer)
    chunks = sampler.sample_chunks(PROMPTS, k=1)
    first = next(chunks)
    chunks.close()
    assert first.prompt_indices == [1, 3, 6]
    assert sorted(engine.llm_engine.aborted) == [f"sieve-0-{i}" for i in (0, 2, 4, 5, 7)]
    assert not engine.llm_engine.has_unfinished_requests()
    # The next call is answered from its own requests only.
    assert len(sampler.sample(PROMPTS[:2], k=1)) == 2


def test_request_index_reads_suffixed_ids():
    from trainer_client.rollout.vllm import _request_index

    assert _request_index("sieve-3-12", "sieve-3-") == 12
    assert _request_index("sieve-3-12-9f8e7d6c", "sieve-3-") == 12  # an engine's own suffix
    assert _request_index("sieve-2-12", "sieve-3-") is None


def test_an_engine_without_llm_engine_gives_one_chunk_from_generate(tokenizer):
    model = tiny_gpt2(tokenizer)
    sampler, engine = _sampler(model, tokenizer, streaming=False)
    assert not hasattr(engine, "llm_engine")
    chunks = list(sampler.sample_chunks(PROMPTS[:4], k=2))
    assert engine.generate_calls == 1 and len(chunks) == 1
    (chunk,) = chunks
    assert chunk.prompt_indices == [0, 1, 2, 3] and len(chunk) == 8
    again, _ = _sampler(model, tokenizer, streaming=False)
    whole = again.sample(PROMPTS[:4], k=2)
    assert whole.texts == chunk.texts and torch.equal(whole.sequences, chunk.sequences)
    torch.testing.assert_close(whole.policy_logprobs, chunk.policy_logprobs)


def test_a_trainer_step_verifies_chunk_by_chunk(tmp_path, tokenizer, problems):
    model = tiny_gpt2(tokenizer)
    trainer, _, engine = _vllm_trainer(tmp_path, model, tokenizer, problems)
    submitted = []
    submit = trainer.verification.submit

    def recording(chunk, step):
        submitted.append((chunk, engine.llm_engine.steps, len(engine.llm_engine.running)))
        return submit(chunk, step)

    trainer.verification.submit = recording
    metrics = trainer.train_step()
    trainer.close()
    k = trainer.config.sampling.k
    # 4 prompts, one group a chunk, finishing on steps 3, 1, 4, 2 of the engine.
    assert len(submitted) == 4
    assert [steps for _, steps, _ in submitted] == [1, 2, 3, 4]
    assert submitted[0][2] == 3  # sent while three requests were still being drawn
    names = [p.name for chunk, _, _ in submitted for p in chunk.problems]
    assert len(set(names)) == 4
    for chunk, _, _ in submitted:
        assert len(chunk) == k
        for j, prompt in enumerate(chunk.prompts):
            assert _prompt(chunk.samples, j * k) == tokenizer(prompt)["input_ids"]
    assert metrics["sampling/logprob_gap"] == pytest.approx(DELTA, abs=1e-4)
