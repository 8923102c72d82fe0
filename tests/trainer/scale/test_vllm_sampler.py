"""VLLMSampler against a stand-in engine with vLLM's interface (no GPU, no vllm here).

The stand-in samples with a copy of the policy (through ``transformers``), reports each sampled
token's log-prob plus a known offset ``DELTA``, and loads weights only through
``collective_rpc("sieve_load_weights", …)`` on a worker carrying
:class:`~trainer_client.vllm_worker.SieveWorkerExtension`, as vLLM's workers do.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch

from tests.trainer.loop.helpers import FakeVerifier, lenient, make_config, tiny_gpt2
from trainer_client.data import Problem
from trainer_client.demo import char_tokenizer
from trainer_client.loop import Trainer
from trainer_client.sampler import HFSampler, LogprobGap, VLLMSampler, token_logprobs
from trainer_client.vllm_worker import SieveWorkerExtension

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
    def __init__(self, model, tokenizer):
        self.model = copy.deepcopy(model).eval()
        self.tokenizer = tokenizer
        self.worker = FakeWorker(self.model)
        self.rpc_calls: list[int] = []
        self.prefix_resets = 0
        self.params: list[Params] = []

    def collective_rpc(self, method, args=()):
        self.rpc_calls.append(len(args[0]))
        return [getattr(self.worker, method)(*args)]

    def reset_prefix_cache(self):
        self.prefix_resets += 1

    @torch.no_grad()
    def generate(self, prompts, params, use_tqdm=False):
        self.params.append(params)
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
            outputs.append(SimpleNamespace(prompt_token_ids=prompt.tolist(), outputs=completions))
        return outputs


@pytest.fixture
def tokenizer():
    return char_tokenizer()


@pytest.fixture
def problems() -> list[Problem]:
    return [
        Problem(name=f"p{i}", statement=f"{i}+{i}=", checker="math", answer=str(2 * i))
        for i in range(1, 9)
    ]


def _sampler(model, tokenizer, **kwargs):
    engine = FakeLLM(model, tokenizer)
    sampler = VLLMSampler(
        "unused", tokenizer, engine=engine, sampling_params=Params, max_new_tokens=6, seed=3,
        **kwargs,
    )  # fmt: skip
    return sampler, engine


def test_samples_carry_the_engines_token_logprobs(tokenizer):
    torch.set_num_threads(1)
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
    torch.set_num_threads(1)
    model = tiny_gpt2(tokenizer)
    sampler, engine = _sampler(model, tokenizer)
    cfg = make_config(tmp_path, optim={"lr": 5e-2, "warmup_steps": 0, "micro_batch_size": 8})
    trainer = Trainer(
        cfg, model=model, tokenizer=tokenizer, problems=problems,
        verifier=FakeVerifier(lenient), sampler=sampler,
    )  # fmt: skip
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
    trainer = Trainer(
        cfg, model=tiny_gpt2(tokenizer), tokenizer=tokenizer, problems=problems,
        verifier=FakeVerifier(lenient),
    )  # fmt: skip
    metrics = trainer.train_step()
    trainer.close()
    assert "sampling/logprob_gap" not in metrics
