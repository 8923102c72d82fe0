"""π and a scored the same way: one function, one dtype, one autocast, in every precision."""

from __future__ import annotations

import pytest
import torch

from tests.trainer.loop.helpers import (
    assert_one_pi,
    make_config,
    make_trainer,
    step_gradients,
    tiny_gpt2,
)
from trainer_client.rollout.scoring import _nucleus, token_logprobs


@pytest.fixture
def fresh_accelerate():
    """accelerate keeps one process-wide state; each precision needs its own."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


def build(cfg, tokenizer, problems, precision="no"):
    from accelerate import Accelerator

    return make_trainer(
        cfg, tokenizer, problems, accelerator=Accelerator(mixed_precision=precision, cpu=True)
    )


@pytest.mark.parametrize("precision", ["no", "bf16", "fp16"])
def test_first_step_log_ratio_is_zero_in_every_precision(
    tmp_path, tokenizer, problems, fresh_accelerate, precision
):
    cfg = make_config(tmp_path, optim={"mixed_precision": precision, "micro_batch_size": 8})
    trainer = build(cfg, tokenizer, problems, precision)
    before = {k: v.clone() for k, v in trainer.unwrapped_model.state_dict().items()}
    metrics = trainer.train_step()
    batch = trainer.last_batch
    trainer.close()
    assert metrics["policy/ref_logratio_max_abs"] <= 1e-3
    assert torch.isfinite(torch.tensor(metrics["loss"]))
    after = trainer.unwrapped_model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    if precision == "fp16":  # accelerate does not scale on a CPU: the trainer's own scaler does
        assert trainer.precision.scaler is not None and trainer.precision.loss_scale > 0
    if precision == "bf16":
        # The check can fail: the same reference scored in fp32, outside the autocast (what the
        # trainer did before), is far from the bf16 policy.
        reference = trainer.reference.model
        s = batch.samples
        with torch.no_grad():
            fp32 = token_logprobs(reference, s.sequences, s.attention_mask, s.response_mask)
        assert (fp32.sum(1) - batch.policy_logprobs).abs().max() > 1e-3


def test_one_pi_at_temperature_and_top_p(tmp_path, tokenizer, problems, fresh_accelerate):
    """The pseudo-reward and the gradient use the same tempered, nucleus-filtered log π."""
    cfg = make_config(
        tmp_path, sampling={"temperature": 0.7, "top_p": 0.9}, optim={"max_grad_norm": None}
    )
    trainer = build(cfg, tokenizer, problems)
    grads = step_gradients(trainer)
    trainer.train_step()
    batch = trainer.last_batch
    trainer.close()
    before = tiny_gpt2(tokenizer)
    s = batch.samples
    tokens = token_logprobs(
        before, s.sequences, s.attention_mask, s.response_mask, temperature=0.7, top_p=0.9
    )
    assert torch.isfinite(tokens).all()
    assert torch.allclose(batch.policy_logprobs, tokens.sum(1).detach(), atol=1e-4)
    untempered = token_logprobs(before, s.sequences, s.attention_mask, s.response_mask)
    assert not torch.allclose(tokens.sum(1), untempered.sum(1), atol=1e-2)
    # log a is the base model itself, untempered.
    assert torch.allclose(batch.base_logprobs, untempered.sum(1).detach(), atol=1e-4)
    assert_one_pi(batch, tokens, before, grads, cfg)


def test_nucleus_matches_transformers_warpers():
    from transformers.generation.logits_process import (
        TemperatureLogitsWarper,
        TopPLogitsWarper,
    )

    torch.manual_seed(0)
    logits = torch.randn(3, 5, 40) * 3
    sampled = logits.argmax(-1)
    ours = _nucleus(logits / 0.8, 0.7, sampled)
    flat = logits.reshape(-1, 40)
    theirs = TopPLogitsWarper(0.7)(None, TemperatureLogitsWarper(0.8)(None, flat.clone()))
    assert torch.equal(torch.isinf(ours).reshape(-1, 40), torch.isinf(theirs))
    assert torch.isinf(ours).any() and (~torch.isinf(ours)).sum(-1).min() >= 1
    # The sampled token is kept even when the filter (run in other numerics) would drop it.
    least = logits.argmin(-1)
    kept = _nucleus(logits, 0.5, least)
    assert torch.isfinite(kept.gather(-1, least.unsqueeze(-1))).all()


def test_fp16_loss_scale_survives_a_resume(tmp_path, tokenizer, problems, fresh_accelerate):
    cfg = make_config(tmp_path, optim={"mixed_precision": "fp16"})
    trainer = build(cfg, tokenizer, problems, "fp16")
    scaler = trainer.precision.scaler
    scaler.load_state_dict({**scaler.state_dict(), "scale": 1024.0})  # as after overflows
    trainer.train_step()
    scale = trainer.precision.loss_scale
    ckpt = trainer.save()
    trainer.close()
    resumed = build(cfg, tokenizer, problems, "fp16")
    assert resumed.precision.loss_scale != scale
    resumed.load(ckpt)
    assert resumed.precision.loss_scale == scale == 1024.0
    resumed.close()
