"""Stage 1, sample: the step's prompts and the policy's k completions for each.

Every process advances the same seeded :class:`PromptStream` and keeps its own shard of the
step's prompts. Completions come in :class:`SampledChunk` s of whole prompt groups, so the verify
stage can send a chunk's proofs while the next chunk is being generated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from trainer_client.config import TrainConfig
from trainer_client.rollout.batch import Samples

__all__ = ["PromptStream", "SampleStage", "SampledChunk"]


class PromptStream:
    """Problems in a seeded order, epoch after epoch; its position is part of a checkpoint."""

    def __init__(self, size: int, *, seed: int = 0, shuffle: bool = True) -> None:
        if size < 1:
            raise ValueError("data: no problems to train on")
        self.size = size
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.position = 0
        self._order = self._permutation()

    def next(self, n: int) -> list[int]:
        """The indices of the next ``n`` problems."""
        picked: list[int] = []
        while len(picked) < n:
            if self.position == self.size:
                self.epoch += 1
                self.position = 0
                self._order = self._permutation()
            take = min(n - len(picked), self.size - self.position)
            picked.extend(self._order[self.position : self.position + take])
            self.position += take
        return picked

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self._order = self._permutation()

    def _permutation(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.size))
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return torch.randperm(self.size, generator=generator).tolist()


@dataclass
class SampledChunk:
    """Whole prompt groups of one step, as the sampler finished them.

    ``samples`` has its own layout (prompt width, response width) and chunk-local
    ``group_ids``; ``problems`` and ``prompts`` are its groups' own, in its order.
    ``row_offset`` counts the rows of the step's earlier chunks (it makes proof ids unique; it
    is not a position in prompt order).
    """

    problems: list[Any]
    prompts: list[str]
    samples: Samples
    row_offset: int

    def __len__(self) -> int:
        return len(self.samples)


class SampleStage:
    """Picks this process's prompts for a step and draws their completions."""

    def __init__(
        self,
        sampler: Any,
        problems: Sequence[Any],
        config: TrainConfig,
        *,
        process_index: int = 0,
        num_processes: int = 1,
        prompt_fn: Callable[[Any], str],
    ) -> None:
        self.sampler = sampler
        self.problems = list(problems)
        self.config = config
        self.process_index = process_index
        self.num_processes = num_processes
        self.prompt_fn = prompt_fn
        self.stream = PromptStream(
            len(self.problems), seed=config.run.seed, shuffle=config.data.shuffle
        )

    def next_problems(self) -> list[Any]:
        """This process's shard of the step's prompts (every process advances the same stream)."""
        total = self.config.sampling.prompts_per_step
        indices = self.stream.next(total)
        shard = indices[self.process_index :: self.num_processes]
        if not shard:
            raise ValueError(
                f"sampling.prompts_per_step={total} is smaller than the "
                f"{self.num_processes} processes"
            )
        return [self.problems[i] for i in shard]

    def chunks(self, problems: Sequence[Any]) -> Iterator[SampledChunk]:
        """The completions for ``problems``, chunk by chunk, as the sampler finishes them.

        A sampler with ``sample_chunks`` (:class:`~trainer_client.rollout.HFSampler`,
        :class:`~trainer_client.rollout.VLLMSampler`) hands out whole prompt groups as soon as
        they are complete (its chunks name their prompts in ``Samples.prompt_indices``; without
        them a chunk is the next groups in prompt order); any other sampler's one batch is a
        single chunk. The generator draws the next chunk only when asked for it.
        """
        k = self.config.sampling.k
        prompts = [self.prompt_fn(p) for p in problems]
        if hasattr(self.sampler, "sample_chunks"):
            parts: Iterator[Samples] = self.sampler.sample_chunks(prompts, k)
        else:
            parts = iter([self.sampler.sample(prompts, k)])
        row = group = 0
        for samples in parts:
            n_groups = len(samples) // k
            which = samples.prompt_indices
            if which is None:
                which = list(range(group, group + n_groups))
            if len(which) != n_groups:
                raise RuntimeError(
                    f"sampler: a chunk of {n_groups} groups names {len(which)} prompts"
                )
            yield SampledChunk(
                problems=[problems[i] for i in which],
                prompts=[prompts[i] for i in which],
                samples=samples,
                row_offset=row,
            )
            row += len(samples)
            group += n_groups
