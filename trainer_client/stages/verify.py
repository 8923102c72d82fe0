"""Stage 2, verify: a chunk's proofs go to the verifier at once; this is where verdicts arrive.

:meth:`VerifyStage.submit` returns immediately with a :class:`PendingVerdicts`; the verifier works
on a background thread while the trainer samples, scores and runs forward passes. The time the
step spends blocked in :meth:`PendingVerdicts.result` is the step's verifier wait.

An empty completion is wrong without asking the service (which refuses empty code as bad input,
and a refusal must not read as a system error). A verdict of ``error`` is a system fault after the
client's retries, not a wrong proof: the score stage leaves such samples out of the target.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import torch

from trainer_client.config import TrainConfig
from trainer_client.data import RequestFn
from trainer_client.stages.sample import SampledChunk
from trainer_client.wire import ProofRequest, Verifier, verify_non_empty

__all__ = ["PendingVerdicts", "Verdicts", "VerifyStage"]


@dataclass
class Verdicts:
    """One chunk's verdicts, row by row: ``verified`` (Lean accepts) and ``failed`` (error)."""

    verified: torch.Tensor
    failed: torch.Tensor
    #: Seconds from submission to the last verdict.
    latency_s: float

    @classmethod
    def concat(cls, parts: list[Verdicts]) -> Verdicts:
        return cls(
            verified=torch.cat([p.verified for p in parts]),
            failed=torch.cat([p.failed for p in parts]),
            latency_s=max((p.latency_s for p in parts), default=0.0),
        )


class PendingVerdicts:
    """Verdicts on their way; :meth:`result` blocks until they are in and counts the wait."""

    def __init__(self, future: Future[Verdicts]) -> None:
        self._future = future
        #: Seconds callers spent blocked in :meth:`result`.
        self.wait_s = 0.0

    def done(self) -> bool:
        return self._future.done()

    def result(self) -> Verdicts:
        start = time.perf_counter()
        try:
            return self._future.result()
        finally:
            self.wait_s += time.perf_counter() - start


class VerifyStage:
    """Sends chunks of proofs to ``verifier`` on background threads."""

    def __init__(
        self,
        verifier: Verifier,
        config: TrainConfig,
        *,
        request_fn: RequestFn,
        process_index: int = 0,
        workers: int = 1,
    ) -> None:
        self.verifier = verifier
        self.config = config
        self.request_fn = request_fn
        self.process_index = process_index
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sieve-verify")

    def proofs(self, chunk: SampledChunk, step: int) -> list[ProofRequest]:
        """The verifier's requests for a chunk; ids are unique per step, process and row."""
        k = self.config.sampling.k
        return [
            self.request_fn(
                chunk.problems[i // k],
                chunk.prompts[i // k],
                text,
                id=f"{step}-{self.process_index}-{chunk.row_offset + i}",
                timeout_s=self.config.verifier.proof_timeout_s,
            )
            for i, text in enumerate(chunk.samples.texts)
        ]

    def submit(self, chunk: SampledChunk, step: int) -> PendingVerdicts:
        """Start verifying ``chunk``; returns at once."""
        return PendingVerdicts(self._pool.submit(self._verify, self.proofs(chunk, step)))

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _verify(self, proofs: list[ProofRequest]) -> Verdicts:
        start = time.perf_counter()
        results = verify_non_empty(self.verifier, proofs)
        latency = time.perf_counter() - start
        verified = torch.tensor([bool(r.ok) for r in results], dtype=torch.bool)
        failed = torch.tensor([bool(r.failed) for r in results], dtype=torch.bool)
        return Verdicts(verified=verified, failed=failed, latency_s=latency)
