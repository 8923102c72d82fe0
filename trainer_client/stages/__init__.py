"""The four stages of a training step, one module each: sample → verify → score → update.

- :mod:`.sample`: which prompts this step trains on, and the policy's completions for them,
  delivered in chunks of whole prompt groups (:class:`~.sample.SampledChunk`).
- :mod:`.verify`: each chunk's proofs go to the verifier as soon as they exist; **verdicts arrive**
  in :meth:`~.verify.PendingVerdicts.result`.
- :mod:`.score`: ``log π`` and ``log a`` (one scoring function for both), the objective's
  advantages, and the step's metrics (:data:`~.score.METRICS`, a list to extend).
- :mod:`.update`: **the loss** (:meth:`~.update.UpdateStage.loss`), the backward pass, gradient
  clipping and the optimiser step.

:class:`~trainer_client.loop.Trainer` wires them; each stage is usable and testable alone.
"""

from trainer_client.stages.sample import PromptStream, SampledChunk, SampleStage
from trainer_client.stages.score import METRICS, ScoreStage, StepBatch
from trainer_client.stages.update import UpdateStage, build_optimizer, build_scheduler
from trainer_client.stages.verify import PendingVerdicts, Verdicts, VerifyStage

__all__ = [
    "METRICS",
    "PendingVerdicts",
    "PromptStream",
    "SampleStage",
    "SampledChunk",
    "ScoreStage",
    "StepBatch",
    "UpdateStage",
    "Verdicts",
    "VerifyStage",
    "build_optimizer",
    "build_scheduler",
]
