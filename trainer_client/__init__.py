"""Sieve's trainer: move a prover LLM toward its verifier-filtered base distribution.

Rooms: :mod:`~trainer_client.client` (the verifier's HTTP client), :mod:`~trainer_client.data`,
:mod:`~trainer_client.rollout`, :mod:`~trainer_client.reference`, :mod:`~trainer_client.losses`,
:mod:`~trainer_client.loop` (the ``Trainer``, wiring the step's stages in
:mod:`~trainer_client.stages`: sample → verify → score → update), :mod:`~trainer_client.evaluation`.
"""

from trainer_client.client import VerifierClient

__all__ = ["VerifierClient"]
__version__ = "0.1.0"
