"""The sampler's layout, masks and log-probs, and the reference model's scores."""

from __future__ import annotations

import torch

from trainer_client.reference import ReferenceModel
from trainer_client.rollout import HFSampler, token_logprobs

PROMPTS = ["1+1=", "12+30=", "7="]


def test_layout_groups_and_masks(model, tokenizer):
    samples = HFSampler(model, tokenizer, max_new_tokens=8, seed=0).sample(PROMPTS, k=3)
    n = len(PROMPTS) * 3
    assert len(samples) == n and len(samples.texts) == n
    assert samples.group_ids.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert samples.sequences.shape == samples.attention_mask.shape == samples.response_mask.shape
    p = samples.prompt_width
    # Nothing before column P is response; the response is a prefix of the completion.
    assert not samples.response_mask[:, :p].any()
    response = samples.response_mask[:, p:]
    assert torch.all(response[:, 1:] <= response[:, :-1])
    # The response ends at the first EOS (inclusive) or runs to max_new_tokens.
    eos = tokenizer.eos_token_id
    for row, length in zip(samples.sequences[:, p:], samples.response_lengths, strict=True):
        ids = row.tolist()
        expected = ids.index(eos) + 1 if eos in ids else 8
        assert int(length) == expected
    # Prompt tokens are attended exactly where the left-padded prompt has real tokens.
    assert torch.equal(samples.attention_mask[:, :p], (samples.sequences[:, :p] != 0).long())


def test_policy_logprobs_match_teacher_forcing(model, tokenizer):
    samples = HFSampler(model, tokenizer, max_new_tokens=8, seed=1).sample(PROMPTS, k=2)
    model.eval()
    with torch.no_grad():
        recomputed = token_logprobs(
            model, samples.sequences, samples.attention_mask, samples.response_mask
        ).sum(dim=1)
    assert torch.isfinite(samples.policy_logprobs).all()
    assert torch.allclose(samples.policy_logprobs, recomputed, atol=1e-4)
    assert (samples.policy_logprobs < 0).all()


def test_logprobs_of_a_left_padded_prompt_match_the_unpadded_one(model, tokenizer):
    """Position ids follow the mask, so padding a prompt does not change its scores."""
    samples = HFSampler(model, tokenizer, max_new_tokens=5, seed=2).sample(PROMPTS, k=1)
    model.eval()
    with torch.no_grad():
        batch = token_logprobs(
            model, samples.sequences, samples.attention_mask, samples.response_mask
        )
        row = 0  # "1+1=" is shorter than "12+30=", so it is left-padded
        keep = samples.attention_mask[row].bool()
        alone = token_logprobs(
            model,
            samples.sequences[row, keep][None],
            samples.attention_mask[row, keep][None],
            samples.response_mask[row, keep][None],
        )
    assert (~keep).any()
    assert torch.allclose(batch[row, keep], alone[0], atol=1e-5)


def test_seeded_sampling_replays_from_its_state(model, tokenizer):
    first = HFSampler(model, tokenizer, max_new_tokens=8, seed=5)
    a1, a2 = first.sample(PROMPTS, 2), first.sample(PROMPTS, 2)
    second = HFSampler(model, tokenizer, max_new_tokens=8, seed=5)
    second.load_state_dict(first.state_dict() | {"calls": 1})
    b2 = second.sample(PROMPTS, 2)
    assert torch.equal(a2.sequences, b2.sequences)
    assert not torch.equal(a1.sequences, a2.sequences)


def test_generation_batches_give_the_same_layout(model, tokenizer):
    whole = HFSampler(model, tokenizer, max_new_tokens=6, seed=3).sample(PROMPTS, 2)
    chunked = HFSampler(model, tokenizer, max_new_tokens=6, seed=3, batch_size=2).sample(PROMPTS, 2)
    assert chunked.sequences.shape[0] == whole.sequences.shape[0]
    assert chunked.prompt_width == whole.prompt_width
    assert torch.equal(chunked.group_ids, whole.group_ids)


def test_reference_scores_are_frozen_and_match_the_start(model, tokenizer):
    samples = HFSampler(model, tokenizer, max_new_tokens=6, seed=4).sample(PROMPTS, 2)
    reference = ReferenceModel.frozen_copy(model, batch_size=2)
    before = reference.sequence_logprobs(samples)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)
    after = reference.sequence_logprobs(samples)
    assert torch.equal(before, after)
    assert all(not p.requires_grad for p in reference.model.parameters())
    tokens = reference.token_logprobs(samples)
    assert torch.all(tokens[samples.response_mask == 0] == 0)
    assert torch.allclose(tokens.sum(1), before)


def test_chunks_are_whole_groups_and_join_into_the_batch(model, tokenizer):
    prompts = [*PROMPTS, "5+5="]
    chunks = list(
        HFSampler(model, tokenizer, max_new_tokens=6, seed=3, batch_size=4).sample_chunks(
            prompts, 2
        )
    )
    assert [len(c) for c in chunks] == [4, 4]
    assert all(c.group_ids.tolist() == [0, 0, 1, 1] for c in chunks)
    whole = HFSampler(model, tokenizer, max_new_tokens=6, seed=3, batch_size=4).sample(prompts, 2)
    # sample() is its chunks joined: same draws, one layout, groups renumbered in order.
    assert whole.group_ids.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert whole.texts == [t for c in chunks for t in c.texts]
    assert whole.response_width == max(c.response_width for c in chunks)
    for c, rows in zip(chunks, (slice(0, 4), slice(4, 8)), strict=True):
        part = whole.sequences[rows]
        keep = whole.response_mask[rows].bool()
        assert torch.equal(part[keep], c.sequences[c.response_mask.bool()])
    model.eval()
    with torch.no_grad():
        joined = token_logprobs(model, whole.sequences, whole.attention_mask, whole.response_mask)
        first = token_logprobs(
            model, chunks[0].sequences, chunks[0].attention_mask, chunks[0].response_mask
        )
    assert torch.allclose(joined[:4].sum(1), first.sum(1), atol=1e-5)
