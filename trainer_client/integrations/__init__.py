"""Sieve inside other training stacks: TRL (:mod:`.trl`) and verl (:mod:`.verl`).

Each adapter is a thin layer over :class:`trainer_client.VerifierClient` (connection pooling,
chunking, retries, failover) and :func:`trainer_client.data.proof_request`, so a proof is judged
exactly as in Sieve's own loop. Neither module imports its framework at import time: TRL is only
needed to train with it, and verl only to register the ``alpha_dpg`` advantage estimator.
"""
