"""What the trainer sends a verifier and reads back, and the protocol any verifier meets.

:class:`ProofRequest` is one item of ``POST /verify`` and :class:`VerifyResult` one result, field
for field the service's ``ProofIn`` and ``ProofResultOut`` (a test holds them equal, since the
trainer does not import the service). :class:`Verifier` is all the loop and the evaluation need
of a verifier: the HTTP client, or a test double whose results meet :class:`Verdict`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict

__all__ = [
    "ProofRequest",
    "Verdict",
    "Verifier",
    "VerifyResult",
    "verify_non_empty",
]


class _RequiredProofFields(TypedDict):
    id: str
    code: str


class ProofRequest(_RequiredProofFields, total=False):
    """One item of ``POST /verify``: the service's ``ProofIn`` (``verifier_service/api/
    schemas.py``), field for field; a test holds the two equal."""

    checker: str
    header: str | None
    statement: str | None
    answer: str | None
    timeout_s: float | None


class Verdict(Protocol):
    """What the trainer reads of a result (:class:`VerifyResult`, or a test double's)."""

    @property
    def verdict(self) -> str: ...

    @property
    def ok(self) -> bool:
        """The proof is verified."""
        ...

    @property
    def failed(self) -> bool:
        """The system could not judge it: not a wrong proof."""
        ...


class Verifier(Protocol):
    """What the trainer and the evaluation need of a verifier: :class:`VerifierClient`, or a
    test double; one result per proof, in order."""

    def verify(self, proofs: Sequence[ProofRequest]) -> Sequence[Verdict]: ...


def verify_non_empty(verifier: Verifier, proofs: Sequence[ProofRequest]) -> list[Verdict]:
    """``verifier.verify(proofs)``, with proofs of empty ``code`` judged ``invalid`` here.

    A completion with nothing in it is a wrong answer, not a question for the service, which
    refuses empty ``code`` as malformed input (a 422 the client would have to settle item by
    item). Results keep the order of ``proofs``.
    """
    results: list[Verdict | None] = [None] * len(proofs)
    sent = [i for i, proof in enumerate(proofs) if str(proof.get("code") or "").strip()]
    answers = verifier.verify([proofs[i] for i in sent]) if sent else []
    if len(answers) != len(sent):
        raise RuntimeError(f"verifier answered {len(answers)} results for {len(sent)} proofs")
    for i, answer in zip(sent, answers, strict=True):
        results[i] = answer
    return [
        VerifyResult(id=str(proofs[i].get("id")), verdict="invalid", reasons=["empty"])
        if result is None
        else result
        for i, result in enumerate(results)
    ]


@dataclass(frozen=True)
class VerifyResult:
    """The verdict on one proof, as the service (or, on failure, the client) gives it."""

    id: str
    verdict: str
    reasons: list[str] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    axioms: list[str] | None = None
    cached: bool = False
    time_s: float = 0.0

    @property
    def ok(self) -> bool:
        """The proof is verified."""
        return self.verdict == "valid"

    @property
    def failed(self) -> bool:
        """The system could not judge the proof (after the retries): not a wrong proof."""
        return self.verdict == "error"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VerifyResult:
        return cls(
            id=str(data["id"]),
            verdict=str(data["verdict"]),
            reasons=list(data.get("reasons") or []),
            messages=list(data.get("messages") or []),
            axioms=None if data.get("axioms") is None else list(data["axioms"]),
            cached=bool(data.get("cached", False)),
            time_s=float(data.get("time_s") or 0.0),
        )

    @classmethod
    def client_error(cls, id: str, what: str) -> VerifyResult:
        return cls(id=id, verdict="error", reasons=[f"client:{what}"])
