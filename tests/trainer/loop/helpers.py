"""Helpers for the loop's unit tests: a tiny random GPT-2, a fake verifier, a small config."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from tests.trainer.models import tiny_gpt2
from trainer_client.client import VerifyResult
from trainer_client.config import TrainConfig
from trainer_client.losses import reinforce_loss
from trainer_client.objectives import compute_advantages

__all__ = [
    "FakeVerifier",
    "assert_one_pi",
    "lenient",
    "make_config",
    "make_trainer",
    "step_gradients",
    "tiny_gpt2",
]


@dataclass
class FakeVerifier:
    """In-process verifier: ``rule(code, answer)`` gives the verdict; records every request."""

    rule: Callable[[str, str], str]
    requests: list[list[dict]] = field(default_factory=list)

    def verify(self, proofs: Sequence[dict]) -> list[VerifyResult]:
        self.requests.append([dict(p) for p in proofs])
        return [VerifyResult(id=p["id"], verdict=self.rule(p["code"], p["answer"])) for p in proofs]

    @property
    def stats(self) -> dict[str, float]:
        return {"requests": float(len(self.requests))}


def lenient(code: str, answer: str) -> str:
    """Accepts about half of a random model's completions, so every step has a signal."""
    return "valid" if any(ch in code for ch in "13579") else "invalid"


def make_config(tmp_path, **sections) -> TrainConfig:
    data = {
        "model": {"name_or_path": "in-memory"},
        "data": {"path": "in-memory"},
        "sampling": {"k": 4, "prompts_per_step": 4, "max_new_tokens": 6, "max_prompt_tokens": 16},
        "loss": {"objective": "alpha_dpg", "alpha": 0.5},
        "optim": {"lr": 1e-2, "warmup_steps": 0, "micro_batch_size": 8},
        "logging": {"tensorboard": False, "progress": False},
        "run": {"output_dir": str(tmp_path), "name": "run", "max_steps": 3, "save_every": 0},
    }
    for section, values in sections.items():
        data[section] = {**data.get(section, {}), **values}
    return TrainConfig.from_dict(copy.deepcopy(data))


def make_trainer(cfg: TrainConfig, tokenizer, problems, *, model=None, verifier=None, **kwargs):
    """A :class:`~trainer_client.loop.Trainer` over :func:`tiny_gpt2` (or ``model``) and a
    lenient :class:`FakeVerifier` (or ``verifier``); ``kwargs`` go to the Trainer."""
    from trainer_client.loop import Trainer

    return Trainer(
        cfg,
        model=tiny_gpt2(tokenizer) if model is None else model,
        tokenizer=tokenizer,
        problems=problems,
        verifier=FakeVerifier(lenient) if verifier is None else verifier,
        **kwargs,
    )


def step_gradients(trainer) -> dict[str, torch.Tensor]:
    """Filled, at every optimiser step of ``trainer``, with the policy's gradients just before
    the step applies them (clipping included): what the step's micro-batches accumulated."""
    grads: dict[str, torch.Tensor] = {}
    model = trainer.unwrapped_model

    def record(optimizer, args, kwargs):
        grads.update({n: p.grad.clone() for n, p in model.named_parameters()})

    trainer.optimizer.optimizer.register_step_pre_hook(record)
    return grads


def assert_one_pi(batch, tokens, before, grads, cfg: TrainConfig) -> None:
    """The step's advantages and gradient are those of ``tokens``, the per-token ``log π`` of
    ``before`` (the weights the samples were drawn from): one π for pseudo-reward and gradient.
    ``grads`` are the step's gradients, recorded just before the optimiser stepped."""
    s = batch.samples
    expected = compute_advantages(
        "alpha_dpg",
        policy_logprobs=tokens.sum(1).detach(),
        base_logprobs=batch.base_logprobs,
        verified=batch.verified,
        group_ids=s.group_ids,
        alpha=cfg.loss.alpha,
    )
    assert torch.allclose(batch.advantages, expected.values.float(), atol=1e-5)
    reinforce_loss(tokens, s.response_mask, batch.advantages, cfg.l_max).backward()
    assert any(p.grad.abs().sum() > 0 for p in before.parameters())
    for name, p in before.named_parameters():
        assert torch.allclose(grads[name], p.grad, atol=1e-6, rtol=1e-4), name
