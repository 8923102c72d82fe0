"""Mixed precision for the step: one autocast for π and ``a``, and the fp16 loss scaler.

``optim.mixed_precision`` is handed to ``accelerate``: on GPUs it autocasts the forward passes and,
for ``fp16``, scales the loss with its ``GradScaler`` (the paper's recipe: actor and reference in
fp16 through the same forward, with a loss scaler). ``accelerate`` does neither for ``fp16`` on a
CPU, so there this module autocasts to float16 itself and keeps its own ``torch.amp.GradScaler``.

Both the policy's and the reference's scores are computed under :meth:`Precision.autocast`: the
pseudo-reward exponentiates ``log π − log a``, so a precision gap between the two passes would
become gradient.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import torch
from accelerate import Accelerator

__all__ = ["Precision"]


class Precision:
    """The autocast context, backward, unscale and optimiser step of one mixed-precision mode."""

    def __init__(self, accelerator: Accelerator) -> None:
        self.accelerator = accelerator
        self.mode = str(accelerator.mixed_precision)
        self.device_type = accelerator.device.type
        #: fp16 where accelerate does not autocast or scale (a CPU): ours to do.
        self.own_fp16 = self.mode == "fp16" and getattr(accelerator, "scaler", None) is None
        self.scaler = torch.amp.GradScaler(self.device_type) if self.own_fp16 else None

    def autocast(self) -> AbstractContextManager:
        if self.own_fp16:
            return torch.autocast(device_type=self.device_type, dtype=torch.float16)
        return self.accelerator.autocast()

    def backward(self, loss: torch.Tensor) -> None:
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            self.accelerator.backward(loss)

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Bring the gradients back to their true scale (before clipping)."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """Step the optimiser; with a scaler, a step with inf/NaN gradients is skipped."""
        if self.scaler is not None:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()

    def _active_scaler(self) -> Any:
        """Ours (fp16 on a CPU) or accelerate's (fp16 on a GPU), if any."""
        return self.scaler if self.scaler is not None else getattr(self.accelerator, "scaler", None)

    @property
    def loss_scale(self) -> float | None:
        """The current fp16 loss scale, or None without a scaler."""
        scaler = self._active_scaler()
        return None if scaler is None else float(scaler.get_scale())

    def state_dict(self) -> dict[str, Any]:
        scaler = self._active_scaler()
        return {} if scaler is None else {"grad_scaler": scaler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        scaler = self._active_scaler()
        if scaler is not None and state.get("grad_scaler"):
            scaler.load_state_dict(state["grad_scaler"])
