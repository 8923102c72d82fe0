"""The training loop on a tiny random GPT-2 with an in-process fake verifier."""

from __future__ import annotations

import math

import pytest
import torch

from tests.trainer.loop.helpers import (
    FakeVerifier,
    assert_one_pi,
    lenient,
    make_config,
    make_trainer,
    step_gradients,
    tiny_gpt2,
)
from trainer_client.checkpoint import latest_checkpoint
from trainer_client.loop import PromptStream
from trainer_client.objectives import compute_advantages
from trainer_client.reference import ReferenceModel
from trainer_client.tracking import Tracker, read_metrics


def build(cfg, tokenizer, problems, verifier, *, tracker=True, seed=0, reference=None):
    return make_trainer(
        cfg,
        tokenizer,
        problems,
        model=tiny_gpt2(tokenizer, seed=seed),
        verifier=verifier,
        reference=reference,
        tracker=Tracker(cfg.run_dir, tensorboard=False) if tracker else None,
    )


def params(trainer):
    return {k: v.detach().clone() for k, v in trainer.unwrapped_model.state_dict().items()}


def timeless(metrics):
    """A step's metrics without wall-clock figures and the client's lifetime counters."""
    return {
        k: v
        for k, v in metrics.items()
        if not k.startswith(("time/", "verifier/client_", "verifier/latency"))
        and k != "tokens_per_s"
    }


def test_steps_change_parameters_and_write_metrics(tmp_path, tokenizer, problems, verifier):
    cfg = make_config(tmp_path)
    trainer = build(cfg, tokenizer, problems, verifier)
    before = params(trainer)
    history = trainer.train()
    trainer.close()
    after = params(trainer)
    assert trainer.step == 3
    assert any(not torch.equal(before[k], after[k]) for k in before)
    records = read_metrics(cfg.run_dir)
    assert [r["step"] for r in records] == [1, 2, 3]
    for record, metrics in zip(records, history, strict=True):
        assert 0.0 <= record["pass_rate"] <= 1.0
        assert record["samples"] == 16
        assert record["loss"] == pytest.approx(metrics["loss"])
        for key in (
            "objective/z_mean",
            "objective/clip_fraction",
            "is/forward_kl",
            "is/ess",
            "time/verify_wait_s",
            "tokens_per_s",
            "verifier/errors",
        ):
            assert key in record
    # The final step is saved as a loadable HF checkpoint.
    ckpt = latest_checkpoint(cfg.run_dir)
    assert ckpt is not None and ckpt.name == "step_3"
    from transformers import AutoModelForCausalLM

    reloaded = AutoModelForCausalLM.from_pretrained(ckpt)
    assert torch.equal(
        reloaded.state_dict()["transformer.wte.weight"], after["transformer.wte.weight"]
    )
    # Every request carried the problem's answer and a per-sample id; empty completions are
    # judged wrong without a request.
    sent = [p for batch in verifier.requests for p in batch]
    assert 0 < len(sent) <= 3 * 16
    assert len({p["id"] for p in sent}) == len(sent)
    assert all(p["code"].strip() and p["answer"] for p in sent)


def test_resume_gives_the_identical_next_step(tmp_path, tokenizer, problems):
    straight = build(
        make_config(tmp_path / "a", run={"max_steps": 3}),
        tokenizer,
        problems,
        FakeVerifier(lenient),
    )
    straight.train(2)
    ckpt = straight.save()
    expected = straight.train_step()
    expected_params = params(straight)
    straight.close()

    # A different initial policy (its weights come from the checkpoint); the reference is the
    # run's starting model, as sieve-train loads it from model.name_or_path.
    resumed = build(
        make_config(tmp_path / "b", run={"max_steps": 3}),
        tokenizer,
        problems,
        FakeVerifier(lenient),
        seed=123,
        reference=ReferenceModel.frozen_copy(tiny_gpt2(tokenizer, seed=0)),
    )
    resumed.load(ckpt)
    assert resumed.step == 2
    got = resumed.train_step()
    resumed.close()
    for key, value in expected_params.items():
        assert torch.equal(value, params(resumed)[key]), key
    assert timeless(got) == timeless(expected)


def test_micro_batches_accumulate_to_the_full_batch_gradient(tmp_path, tokenizer, problems):
    grads = {}
    for micro in (4, 16):
        cfg = make_config(tmp_path / str(micro), optim={"micro_batch_size": micro})
        trainer = build(cfg, tokenizer, problems, FakeVerifier(lenient), tracker=False)
        grads[micro] = step_gradients(trainer)
        trainer.train_step()
        trainer.close()
    assert grads[4].keys() == grads[16].keys()
    assert any(g.abs().sum() > 0 for g in grads[16].values())
    for name, grad in grads[16].items():
        assert torch.allclose(grads[4][name], grad, atol=1e-6, rtol=1e-4), name


def test_error_verdicts_are_left_out_of_the_target(tmp_path, tokenizer, problems):
    def flaky(code: str, answer: str) -> str:
        return "error" if code.startswith(("2", "4", "6", "8")) else lenient(code, answer)

    cfg = make_config(tmp_path)
    trainer = build(cfg, tokenizer, problems, FakeVerifier(flaky), tracker=False)
    metrics = trainer.train_step()
    batch = trainer.last_batch
    trainer.close()
    failed = batch.failed
    assert failed.any() and (~failed).any()
    assert metrics["verifier/errors"] == float(failed.sum())
    assert torch.all(batch.advantages[failed] == 0)
    keep = ~failed
    expected = compute_advantages(
        "alpha_dpg",
        policy_logprobs=batch.policy_logprobs[keep],
        base_logprobs=batch.base_logprobs[keep],
        verified=batch.verified[keep],
        group_ids=batch.samples.group_ids[keep],
        alpha=cfg.loss.alpha,
    )
    assert torch.allclose(batch.advantages[keep], expected.values.float(), atol=1e-6)
    # The pass rate counts only checked samples.
    checked = int(keep.sum())
    assert metrics["pass_rate"] == pytest.approx(float(batch.verified[keep].sum()) / checked)


def test_policy_logprobs_come_from_the_training_forward(tmp_path, tokenizer, problems, verifier):
    """At temperature 1 the fast path's log π equals a scoring pass by the sampling model."""
    cfg = make_config(tmp_path)
    trainer = build(cfg, tokenizer, problems, verifier, tracker=False)
    model_before = tiny_gpt2(tokenizer)
    trainer.train_step()
    batch = trainer.last_batch
    trainer.close()
    from trainer_client.rollout import token_logprobs

    model_before.eval()
    with torch.no_grad():
        s = batch.samples
        expected = token_logprobs(model_before, s.sequences, s.attention_mask, s.response_mask)
    assert torch.allclose(batch.policy_logprobs, expected.sum(1), atol=1e-4)


@pytest.mark.parametrize(
    ("objective", "extra"),
    [("dr_grpo", {"kl_coef": 0.1}), ("dr_grpo", {"kl_coef": 0.0}), ("rloo", {}), ("rft", {})],
)
def test_other_objectives_train(tmp_path, tokenizer, problems, verifier, objective, extra):
    cfg = make_config(tmp_path, loss={"objective": objective, **extra})
    trainer = build(cfg, tokenizer, problems, verifier, tracker=False)
    before = params(trainer)
    metrics = trainer.train_step()
    trainer.close()
    assert math.isfinite(metrics["loss"])
    assert any(not torch.equal(before[k], params(trainer)[k]) for k in before)
    needs_reference = objective == "rft" or extra.get("kl_coef", 0) > 0
    assert (trainer.reference is not None) == needs_reference
    if objective == "rft":  # samples come from the frozen base model, not the policy
        assert trainer.sampler.model is trainer.reference.model


def test_prompt_stream_is_seeded_and_resumable():
    a = PromptStream(5, seed=1)
    first = a.next(7)  # crosses into the second epoch
    assert sorted(first[:5]) == list(range(5)) and a.epoch == 1
    state = a.state_dict()
    rest = a.next(6)
    b = PromptStream(5, seed=1)
    b.load_state_dict(state)
    assert b.next(6) == rest
    assert PromptStream(5, seed=1, shuffle=False).next(3) == [0, 1, 2]


def test_chunks_go_to_the_verifier_as_they_are_generated(tmp_path, tokenizer, problems):
    """With one prompt group per ``generate`` call, each chunk's proofs are sent before the next
    chunk is drawn, and the step still trains on every sample exactly on-policy."""
    cfg = make_config(tmp_path, sampling={"batch_size": 4}, optim={"micro_batch_size": 4})
    verifier = FakeVerifier(lenient)
    trainer = build(cfg, tokenizer, problems, verifier, tracker=False)
    generated = []
    sampler = trainer.sampler
    for name in ("_generate", "_decode_lean"):  # one of them draws each chunk
        original = getattr(sampler, name)

        def counting(*args, _original=original, **kwargs):
            generated.append(1)
            return _original(*args, **kwargs)

        setattr(sampler, name, counting)
    submitted = []
    submit = trainer.verification.submit

    def recording_submit(chunk, step):
        submitted.append((len(generated), chunk.row_offset, len(chunk)))
        return submit(chunk, step)

    trainer.verification.submit = recording_submit
    grads = step_gradients(trainer)
    before = tiny_gpt2(tokenizer)
    metrics = trainer.train_step()
    batch = trainer.last_batch
    trainer.close()
    assert submitted == [(1, 0, 4), (2, 4, 4), (3, 8, 4), (4, 12, 4)]
    assert metrics["samples"] == 16 and len(verifier.requests) == 4
    assert batch.samples.group_ids.tolist() == [g for g in range(4) for _ in range(4)]

    # On-policy: log π and the gradient are those of the weights the samples were drawn from.
    from trainer_client.rollout import token_logprobs

    s = batch.samples
    tokens = token_logprobs(before, s.sequences, s.attention_mask, s.response_mask)
    assert torch.allclose(batch.policy_logprobs, tokens.sum(1).detach(), atol=1e-4)
    assert_one_pi(batch, tokens, before, grads, cfg)


def test_a_slow_verifier_gives_the_same_step(tmp_path, tokenizer, problems):
    """Verdicts that arrive late (after the policy's forward) change nothing but the timing."""
    import time as _time

    def slow(code: str, answer: str) -> str:
        _time.sleep(0.02)
        return lenient(code, answer)

    results = []
    for name, rule in (("fast", lenient), ("slow", slow)):
        cfg = make_config(
            tmp_path / name, sampling={"batch_size": 4}, optim={"micro_batch_size": 4}
        )
        trainer = build(cfg, tokenizer, problems, FakeVerifier(rule), tracker=False)
        results.append((timeless(trainer.train_step()), params(trainer)))
        trainer.close()
    (fast, fast_params), (slow_metrics, slow_params) = results
    assert fast == slow_metrics
    for key, value in fast_params.items():
        assert torch.equal(value, slow_params[key]), key
