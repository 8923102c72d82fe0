"""The sampler interface and what every backend shares (settings, call numbering, seeding).

Sampling is reproducible: with ``seed`` set, each call draws from its own generator seeded by
``(seed, number of earlier calls)``, so restoring :meth:`SamplerBase.state_dict` replays the same
samples without touching the global RNG the rest of training uses. Backends live one per module
(:mod:`.hf`, :mod:`.vllm`) behind :class:`Sampler`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import torch

from trainer_client.rollout.batch import Samples

__all__ = [
    "STREAM_PARTS",
    "ChunkedSampler",
    "Sampler",
    "SamplerBase",
    "TrainingSampler",
    "eos_ids",
    "eval_mode",
    "hand_out_at",
    "mix_seed",
    "model_device",
]


class Sampler(Protocol):
    """What the trainer and the evaluation ask of a backend: k completions per prompt."""

    def sample(self, prompts: Sequence[str], k: int) -> Samples: ...


class TrainingSampler(Sampler, Protocol):
    """A sampler the trainer can checkpoint: its state replays the same draws on resume."""

    def state_dict(self) -> dict[str, int]: ...

    def load_state_dict(self, state: dict[str, int]) -> None: ...


class ChunkedSampler(TrainingSampler, Protocol):
    """A backend that hands out whole prompt groups as they finish (:class:`SamplerBase`'s
    subclasses); the sample stage verifies a chunk while the rest is drawn."""

    stream: bool

    def sample_chunks(self, prompts: Sequence[str], k: int) -> Iterator[Samples]: ...


class SamplerBase:
    """What both samplers share: the sampling settings, the stream flag and the call counter.

    Each call's draws are seeded by ``(seed, call number)``, so :meth:`state_dict` (the number
    of calls so far) is all a checkpoint needs to replay the same samples.
    """

    def __init__(
        self,
        tokenizer: Any,
        *,
        temperature: float,
        top_p: float,
        max_new_tokens: int,
        seed: int | None,
        max_prompt_tokens: int | None,
        stream: bool,
    ) -> None:
        self.tokenizer = tokenizer
        self.temperature = temperature
        self.top_p = top_p
        self.max_new_tokens = max_new_tokens
        self.seed = seed
        self.max_prompt_tokens = max_prompt_tokens
        #: Hand out groups as they finish (``sample_chunks``; :class:`HFSampler` on its lean
        #: path); False: one chunk per call (under FSDP2 every process must draw the same
        #: number of chunks: each chunk's passes are collective there).
        self.stream = stream
        self.calls = 0

    def state_dict(self) -> dict[str, int]:
        return {"calls": self.calls}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.calls = int(state["calls"])

    def _start_call(self, prompts: Sequence[str], k: int) -> int:
        """Check a request and number the call (its draws' seed)."""
        if not prompts:
            raise ValueError("prompts: need at least one prompt")
        if k < 1:
            raise ValueError(f"k: need at least one sample per prompt, got {k}")
        call = self.calls
        self.calls += 1
        return call


#: A sampler call (a lean ``generate`` call, a vLLM call) hands out finished groups once at
#: least this fraction (1/N) of its groups are waiting. Each chunk costs the trainer a reference
#: pass and a forward of its own, so one chunk per finished group would spend on small batches
#: what overlapping the verifier saves; a handful still lets the verifier start on the first
#: quarter while the rest is drawn.
STREAM_PARTS = 4


def hand_out_at(n_groups: int) -> int:
    """How many finished groups a streaming call of ``n_groups`` waits for before handing them
    out: a :data:`STREAM_PARTS`-th, at least one."""
    return max(1, math.ceil(n_groups / STREAM_PARTS))


def eos_ids(tokenizer: Any) -> list[int]:
    eos = tokenizer.eos_token_id
    if eos is None:
        return []
    return list(eos) if isinstance(eos, list | tuple) else [int(eos)]


def mix_seed(seed: int, calls: int, chunk: int = 0) -> int:
    """A per-call (and per-chunk) seed; distinct calls and chunks get unrelated streams."""
    return (seed * 1_000_003 + calls * 7_919 + chunk * 104_729 + 12_345) % (2**63 - 1)


def model_device(model: Any) -> torch.device:
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")


@contextmanager
def eval_mode(model: Any) -> Iterator[None]:
    """Sample and score without dropout; put the model back the way it was."""
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        yield
    finally:
        if was_training:
            model.train()
