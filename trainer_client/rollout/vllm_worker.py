"""The mix-in vLLM gives its workers (``worker_extension_cls``) so the trainer can load weights.

vLLM's documented way to reach into its workers is an extension class, named by its import
path when the engine is built, whose methods ``LLM.collective_rpc`` then calls on every worker.
This module must stay importable without vLLM (the trainer names it; only the worker loads it).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["SieveWorkerExtension"]


class SieveWorkerExtension:
    """Methods vLLM adds to each worker; ``self`` is the worker (``self.model_runner``)."""

    def sieve_load_weights(self, weights: Sequence[tuple[str, torch.Tensor]]) -> int:
        """Load Hugging Face-named tensors into the worker's model; returns how many.

        The model's own ``load_weights`` maps the names (it fuses q/k/v and gate/up itself) and
        copies into its parameters, casting to the engine's dtype and device.
        """
        self.model_runner.model.load_weights(weights=list(weights))  # type: ignore[attr-defined]
        return len(weights)
