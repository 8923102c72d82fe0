"""The verification service: from a batch of proofs to one result per proof, without HTTP.

The API, the ``check`` command and the trainer's local verifier all go through
:class:`VerificationService`; this package is what they import. Its rooms:

- :mod:`.pipeline`: :class:`VerificationService`, the batch from prepare to cache write-back;
- :mod:`.proofs`: the proof a client sends (:class:`ProofItem`) and its :class:`ProofResult`;
- :mod:`.errors`: the four refusals, each with its HTTP status;
- :mod:`.validation`: what makes an item uncheckable before a checker sees it;
- :mod:`.memo`: jobs already prepared, so a resubmitted proof skips ``prepare``;
- :mod:`.flights`: checks in progress, so that identical proofs are checked once;
- :mod:`.admission`: the pending counts, and the refusal of a batch that would overflow them.
"""

from __future__ import annotations

from verifier_service.service.admission import MAX_CLIENT_CHARS
from verifier_service.service.errors import BatchTooLarge, InvalidItem, QueueFull, QuotaExceeded
from verifier_service.service.pipeline import (
    DEFAULT_CONCURRENCY,
    VerificationService,
    default_concurrency,
)
from verifier_service.service.proofs import ProofItem, ProofLike, ProofResult, policy_from
from verifier_service.service.validation import (
    ENABLE_HINTS,
    UNENCODABLE,
    UNENCODABLE_MESSAGE,
    unknown_checker_message,
)

__all__ = [
    "DEFAULT_CONCURRENCY",
    "ENABLE_HINTS",
    "MAX_CLIENT_CHARS",
    "UNENCODABLE",
    "UNENCODABLE_MESSAGE",
    "BatchTooLarge",
    "InvalidItem",
    "ProofItem",
    "ProofLike",
    "ProofResult",
    "QueueFull",
    "QuotaExceeded",
    "VerificationService",
    "default_concurrency",
    "policy_from",
    "unknown_checker_message",
]
