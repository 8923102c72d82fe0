"""Sieve's trainer: move a prover LLM toward its verifier-filtered base distribution.

Rooms: :mod:`~trainer_client.client` (the verifier's HTTP client) and
:mod:`~trainer_client.wire` (what it sends and reads back), :mod:`~trainer_client.data`,
:mod:`~trainer_client.rollout` (samplers, one backend per module, and the one scoring
function), :mod:`~trainer_client.reference`, :mod:`~trainer_client.objectives` (the registry) and
:mod:`~trainer_client.losses`, :mod:`~trainer_client.loop` (the ``Trainer``, wiring the step's
stages in :mod:`~trainer_client.stages`: sample → verify → score → update),
:mod:`~trainer_client.build` (a ``Trainer`` from a config), :mod:`~trainer_client.train` (the
CLI), :mod:`~trainer_client.evaluation`.
"""

from trainer_client.client import VerifierClient

# One distribution, one version: written once, in verifier_service/__init__.py (pyproject reads
# it from there too). That module imports nothing, so this costs no verifier dependency.
from verifier_service import __version__

__all__ = ["VerifierClient", "__version__"]
