"""The lean decoding loop draws exactly what ``generate`` draws, and steps aside where it cannot."""

from __future__ import annotations

import pytest
import torch

from tests.trainer.models import tiny_gpt2, tiny_llama
from trainer_client.rollout import HFSampler

PROMPTS = ["1+1=", "12+30=", "7=", "2*3="]


@pytest.mark.parametrize("build", [tiny_gpt2, tiny_llama], ids=["gpt2", "llama"])
@pytest.mark.parametrize("max_new_tokens", [3, 40])
def test_lean_and_generate_give_the_same_samples(tokenizer, build, max_new_tokens):
    """Same seed, same tokens, same layout: left-padded prompts, rows that stop at EOS and are
    padded after it, and (at 40 tokens) rows that run to the limit."""
    model = build(tokenizer)
    saw_eos = False
    for seed in range(4):
        lean = HFSampler(model, tokenizer, max_new_tokens=max_new_tokens, seed=seed)
        plain = HFSampler(model, tokenizer, max_new_tokens=max_new_tokens, seed=seed, lean=False)
        assert lean._lean() and not plain._lean()
        a, b = lean.sample(PROMPTS, 3), plain.sample(PROMPTS, 3)
        assert a.sequences.shape == b.sequences.shape
        assert torch.equal(a.sequences, b.sequences)
        assert torch.equal(a.response_mask, b.response_mask) and a.texts == b.texts
        assert torch.allclose(a.policy_logprobs, b.policy_logprobs)
        saw_eos |= bool((a.response_lengths < a.response_width).any())
    if max_new_tokens == 40:
        assert saw_eos, "no sample ended at EOS: the stop rule went untested"


def test_a_batch_that_has_all_stopped_ends_early(tokenizer):
    """When every row has its EOS the loop stops, as ``generate`` does (no padded tail)."""
    model = tiny_gpt2(tokenizer)
    with torch.no_grad():
        model.lm_head.weight.zero_()
        model.lm_head.weight[tokenizer.eos_token_id] = 1.0  # EOS by far the most likely
        model.transformer.ln_f.bias.fill_(10.0)
        model.transformer.ln_f.weight.zero_()
    lean = HFSampler(model, tokenizer, max_new_tokens=30, seed=0).sample(PROMPTS, 2)
    plain = HFSampler(model, tokenizer, max_new_tokens=30, seed=0, lean=False).sample(PROMPTS, 2)
    assert lean.response_width == plain.response_width < 30
    assert torch.equal(lean.sequences, plain.sequences)


def test_settings_generate_handles_go_to_generate(tokenizer):
    model = tiny_gpt2(tokenizer)
    assert not HFSampler(model, tokenizer, temperature=0.7)._lean()
    assert not HFSampler(model, tokenizer, top_p=0.9)._lean()
    model.generation_config.repetition_penalty = 1.3
    assert not HFSampler(model, tokenizer)._lean()
