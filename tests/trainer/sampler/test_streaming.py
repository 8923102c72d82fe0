"""Groups stream out of a lean ``generate`` call as they finish: the same draws as one
uninterrupted call, and the training step verifies them while the rest is drawn."""

from __future__ import annotations

import math

import torch

from examples.demo.tokenizer import char_tokenizer
from tests.trainer.loop.helpers import FakeVerifier, lenient, make_config, make_trainer
from tests.trainer.models import tiny_llama
from trainer_client.data import Problem
from trainer_client.rollout import STREAM_PARTS, HFSampler

PROMPTS = ["1+1=", "12+30=", "7=", "2*3=", "9-4=", "3*3=", "40+2=", "8="]
K = 2


def eager_to_stop(tokenizer, seed: int = 0):
    """A tiny Llama whose EOS is likely at every step, so rows end at scattered lengths."""
    model = tiny_llama(tokenizer, seed=seed)
    head = model.lm_head
    biased = torch.nn.Linear(head.in_features, head.out_features, bias=True)
    with torch.no_grad():
        biased.weight.copy_(head.weight)
        biased.bias.zero_()
        biased.bias[tokenizer.eos_token_id] = 2.5
    model.lm_head = biased
    return model


def streamed(model, tokenizer, seed, **kwargs):
    sampler = HFSampler(model, tokenizer, max_new_tokens=30, seed=seed, **kwargs)
    return list(sampler.sample_chunks(PROMPTS, K))


def test_finished_groups_come_out_before_the_call_ends(tokenizer):
    model = eager_to_stop(tokenizer)
    early = 0
    for seed in range(6):
        chunks = streamed(model, tokenizer, seed)
        named = [i for c in chunks for i in c.prompt_indices]
        assert sorted(named) == list(range(len(PROMPTS)))  # every prompt once
        for chunk in chunks:
            assert len(chunk.prompt_indices) == len(chunk) // K
            assert chunk.group_ids.tolist() == [g for g in range(len(chunk) // K) for _ in range(K)]
        for chunk in chunks[:-1]:  # an early chunk: every sample has ended at its EOS
            assert len(chunk) // K >= math.ceil(len(PROMPTS) / STREAM_PARTS)
            ends = chunk.sequences[:, chunk.prompt_width :] == tokenizer.eos_token_id
            assert ends.any(dim=1).all()
            assert chunk.response_width < chunks[-1].response_width
        early += len(chunks) - 1
    assert early > 0, "no group finished early: streaming went untested"


def test_streamed_chunks_are_the_draws_of_one_generate_call(tokenizer):
    """Put back in prompt order, the chunks are exactly what ``generate`` draws for the seed."""
    model = eager_to_stop(tokenizer)
    for seed in range(4):
        lean = HFSampler(model, tokenizer, max_new_tokens=30, seed=seed)
        plain = HFSampler(model, tokenizer, max_new_tokens=30, seed=seed, lean=False)
        a, b = lean.sample(PROMPTS, K), plain.sample(PROMPTS, K)
        assert torch.equal(a.sequences, b.sequences)
        assert torch.equal(a.response_mask, b.response_mask)
        assert a.texts == b.texts
        assert a.group_ids.tolist() == b.group_ids.tolist()
        assert torch.allclose(a.policy_logprobs, b.policy_logprobs, atol=1e-5)


def test_what_the_caller_does_between_chunks_changes_no_draw(tokenizer):
    model = eager_to_stop(tokenizer)
    quiet = streamed(model, tokenizer, seed=1)
    sampler = HFSampler(model, tokenizer, max_new_tokens=30, seed=1)
    busy = []
    for chunk in sampler.sample_chunks(PROMPTS, K):
        torch.rand(1000)  # the caller draws from the global stream between chunks
        busy.append(chunk)
    assert [c.prompt_indices for c in busy] == [c.prompt_indices for c in quiet]
    assert all(torch.equal(a.sequences, b.sequences) for a, b in zip(busy, quiet, strict=True))
    # and a seeded sampler leaves the caller's stream where it was
    state = torch.get_rng_state()
    list(HFSampler(model, tokenizer, max_new_tokens=30, seed=2).sample_chunks(PROMPTS, K))
    assert torch.equal(torch.get_rng_state(), state)


def test_a_step_verifies_the_groups_that_finished_first_while_the_rest_is_drawn(tmp_path):
    tokenizer = char_tokenizer()
    problems = [
        Problem(name=f"p{i}", statement=p, checker="math", answer="1")
        for i, p in enumerate(PROMPTS)
    ]
    cfg = make_config(
        tmp_path,
        sampling={"k": K, "prompts_per_step": len(PROMPTS), "max_new_tokens": 30},
        optim={"micro_batch_size": None},
    )
    results = {}
    for streaming in (True, False):
        verifier = FakeVerifier(lenient)
        trainer = make_trainer(
            cfg,
            tokenizer,
            problems,
            model=eager_to_stop(tokenizer),
            verifier=verifier,
            prompt_fn=lambda p: p.statement,
        )
        trainer.sampler.lean = streaming  # False: one generate call, the same draws
        decoding = []
        submit = trainer.verification.submit

        def recording(chunk, step, _submit=submit, _decoding=decoding, _sampler=trainer.sampler):
            _decoding.append(_sampler.calls)
            return _submit(chunk, step)

        trainer.verification.submit = recording
        metrics = trainer.train_step()
        weights = {n: p.detach().clone() for n, p in trainer.unwrapped_model.named_parameters()}
        results[streaming] = (len(verifier.requests), metrics, weights, trainer.last_batch)
        trainer.close()
    requests, metrics, after, batch = results[True]
    requests_plain, metrics_plain, after_plain, batch_plain = results[False]
    assert requests > 1 and requests_plain == 1  # the early groups went out on their own
    assert metrics["samples"] == metrics_plain["samples"] == len(PROMPTS) * K
    assert sorted(batch.samples.texts) == sorted(batch_plain.samples.texts)
    assert math.isclose(metrics["loss"], metrics_plain["loss"], rel_tol=1e-4, abs_tol=1e-6)
    for name, value in after.items():  # the same update: the step is as on-policy as before
        assert torch.allclose(value, after_plain[name], atol=1e-6), name


def test_without_streaming_a_call_is_one_chunk_in_prompt_order(tokenizer):
    model = eager_to_stop(tokenizer)
    for seed in range(3):
        chunks = streamed(model, tokenizer, seed, stream=False)
        assert len(chunks) == 1
        assert chunks[0].prompt_indices == list(range(len(PROMPTS)))
        whole = HFSampler(model, tokenizer, max_new_tokens=30, seed=seed).sample(PROMPTS, K)
        assert torch.equal(chunks[0].sequences, whole.sequences)  # the same draws either way


def test_under_fsdp2_no_sampler_streams(tmp_path, monkeypatch):
    """FSDP2's gathers pair up only if every process draws as many chunks: a Trainer there turns
    streaming off, for its own sampler and for one it is given."""
    from types import SimpleNamespace

    from trainer_client import distributed

    fsdp2 = SimpleNamespace(state=SimpleNamespace(fsdp_plugin=SimpleNamespace(fsdp_version=2)))
    assert not distributed.may_stream_chunks(fsdp2)
    assert distributed.may_stream_chunks(SimpleNamespace(state=SimpleNamespace()))

    tokenizer = char_tokenizer()
    problems = [Problem(name="p", statement="1+1=", checker="math", answer="2")]
    cfg = make_config(tmp_path, sampling={"k": K, "prompts_per_step": 1})
    monkeypatch.setattr(distributed, "may_stream_chunks", lambda accelerator: False)

    def trainer(**kwargs):
        return make_trainer(cfg, tokenizer, problems, model=tiny_llama(tokenizer), **kwargs)

    own = trainer()
    given = HFSampler(tiny_llama(tokenizer), tokenizer, max_new_tokens=4)
    assert given.stream
    passed = trainer(sampler=given)
    assert not own.sampler.stream and not given.stream
    own.close()
    passed.close()
