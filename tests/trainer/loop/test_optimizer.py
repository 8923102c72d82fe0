"""The trainer's AdamW: fused outside FSDP2, and the same step as the per-tensor loop."""

from __future__ import annotations

import torch

from tests.trainer.loop.helpers import make_config, make_trainer, tiny_gpt2
from trainer_client.stages.update import build_optimizer


def test_the_single_process_trainer_uses_fused_adamw(tmp_path, tokenizer, problems):
    trainer = make_trainer(make_config(tmp_path), tokenizer, problems)
    assert trainer.optimizer.optimizer.defaults["fused"] is True
    trainer.close()


def test_fused_and_looped_adamw_take_the_same_step(tmp_path, tokenizer):
    cfg = make_config(tmp_path)
    models = [tiny_gpt2(tokenizer), tiny_gpt2(tokenizer)]
    optimizers = [build_optimizer(models[0], cfg, fused=True), build_optimizer(models[1], cfg)]
    assert optimizers[1].defaults["fused"] is None
    start = [p.detach().clone() for p in models[0].parameters()]
    torch.manual_seed(1)
    grads = [torch.randn_like(p) for p in models[0].parameters()]
    for _ in range(3):
        for model, optimizer in zip(models, optimizers, strict=True):
            for p, g in zip(model.parameters(), grads, strict=True):
                p.grad = g.clone()
            optimizer.step()
    assert all(not torch.equal(p, q) for p, q in zip(models[0].parameters(), start, strict=True))
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)
