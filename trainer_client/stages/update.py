"""Stage 4, update: the loss, its backward pass, and the optimiser step.

The loss (:meth:`UpdateStage.loss`) is the same for every objective: the REINFORCE loss with
constant length normalisation of the method notes (step 6), plus ``β ·`` the k3 KL penalty to
the reference when ``loss.kl_coef > 0``. Gradients accumulate over micro-batches of whole prompt
groups (scaled by the fp16 loss scaler, :mod:`.precision`); :meth:`UpdateStage.step` unscales,
clips, steps AdamW and the schedule, and pushes the new weights
to a sampler that keeps its own copy (vLLM).
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from accelerate import Accelerator
from transformers import get_scheduler

from trainer_client.config import TrainConfig
from trainer_client.losses import kl_penalty, reinforce_loss
from trainer_client.stages.precision import Precision

__all__ = ["UpdateStage", "build_optimizer", "build_scheduler"]


class UpdateStage:
    """Owns the prepared model, optimiser and schedule."""

    def __init__(
        self,
        config: TrainConfig,
        *,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        accelerator: Accelerator,
        precision: Precision | None = None,
    ) -> None:
        self.config = config
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.accelerator = accelerator
        self.precision = precision or Precision(accelerator)

    def loss(
        self,
        tokens: torch.Tensor,
        response_mask: torch.Tensor,
        advantages: torch.Tensor,
        ref_tokens: torch.Tensor | None,
        *,
        share: float,
    ) -> torch.Tensor:
        """A micro-batch's part of the step's loss (``share``: its fraction of the samples)."""
        cfg = self.config
        device = tokens.device
        l_max = cfg.l_max
        loss = reinforce_loss(tokens, response_mask, advantages.to(device), l_max) * share
        if cfg.loss.kl_coef > 0:
            assert ref_tokens is not None, "a KL penalty needs the reference's token log-probs"
            kl = kl_penalty(tokens, ref_tokens.to(device), response_mask, l_max)
            loss = loss + cfg.loss.kl_coef * kl * share
        return loss

    def sync(self, last: bool) -> AbstractContextManager:
        """Wrap a micro-batch's forward and backward: gradients sync only on the last one."""
        return nullcontext() if last else self.accelerator.no_sync(self.model)

    def backward(self, loss: torch.Tensor) -> torch.Tensor:
        """Backward of a micro-batch's loss (scaled in fp16); returns the unscaled loss, detached
        and on its device: reading it here would wait for the backward on a GPU, once per
        micro-batch, so the caller sums the tensors and reads the step's loss once."""
        self.precision.backward(loss)
        return loss.detach()

    def step(self, sampler: Any = None) -> tuple[float, float]:
        """Clip, step the optimiser and schedule; returns ``(grad norm, learning rate)``.

        A ``sampler`` with ``load_weights`` (vLLM) gets the policy's new weights.
        """
        cfg = self.config
        acc = self.accelerator
        grad_norm = math.nan
        self.precision.unscale(self.optimizer)
        if cfg.optim.max_grad_norm is not None:
            grad_norm = float(acc.clip_grad_norm_(self.model.parameters(), cfg.optim.max_grad_norm))
        lr = self.scheduler.get_last_lr()[0]
        self.precision.step(self.optimizer)
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if sampler is not None and hasattr(sampler, "load_weights"):
            sampler.load_weights(acc.unwrap_model(self.model).named_parameters())
        return grad_norm, lr


def build_optimizer(
    model: torch.nn.Module, config: TrainConfig, *, fused: bool | None = None
) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters. ``fused``: torch's fused kernel (CPU and CUDA), one
    pass over all parameters instead of a loop of small ops per tensor: on a small model the
    loop is most of the optimiser's time. None leaves torch's default (foreach on CUDA)."""
    optim = config.optim
    params = [p for p in model.parameters() if p.requires_grad]
    extra = {"fused": True} if fused else {}
    return torch.optim.AdamW(
        params,
        lr=optim.lr,
        betas=optim.betas,
        eps=optim.eps,
        weight_decay=optim.weight_decay,
        **extra,
    )


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> Any:
    """Linear warm-up, then constant / linear decay / cosine (``transformers`` schedules)."""
    optim = config.optim
    total = max(1, config.run.max_steps)
    warmup = (
        optim.warmup_steps if optim.warmup_steps is not None else round(optim.warmup_ratio * total)
    )
    name = {"constant": "constant_with_warmup", "linear": "linear", "cosine": "cosine"}[
        optim.schedule
    ]
    return get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=total)
