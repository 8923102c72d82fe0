"""Sieve's verifier: batched Lean 4 (and final-answer) proof checking over HTTP.

Rooms: :mod:`~verifier_service.api` (HTTP), :mod:`~verifier_service.service` (batching,
de-duplication, queueing), :mod:`~verifier_service.checkers` (what a verdict means per checker),
:mod:`~verifier_service.lean` (the REPL process pool), :mod:`~verifier_service.soundness` (rules a
Lean proof must pass), :mod:`~verifier_service.cache` (verdict cache).
"""

#: The version of the ``sieve`` distribution, both packages included: the one place it is written
#: (pyproject.toml reads it as ``dynamic``; ``trainer_client.__version__`` is this same object).
__version__ = "0.1.0"
