"""The client's request and reply types are the service's wire format, field for field.

``trainer_client`` does not import ``verifier_service`` (it talks HTTP), so nothing but this
test keeps :class:`~trainer_client.wire.ProofRequest` equal to the service's ``ProofIn`` and
:class:`~trainer_client.wire.VerifyResult` equal to its ``ProofResultOut``.
"""

from __future__ import annotations

import dataclasses
import json
import typing

import httpx
import pytest

schemas = pytest.importorskip(
    "verifier_service.api.schemas", reason="the verifier extra (pydantic models of the API)"
)

from trainer_client.client import VerifierClient  # noqa: E402
from trainer_client.wire import ProofRequest, VerifyResult  # noqa: E402


def _service_types(model: type) -> dict[str, object]:
    return {name: field.annotation for name, field in model.model_fields.items()}


def test_proof_request_is_proof_in():
    client = typing.get_type_hints(ProofRequest)
    assert client == _service_types(schemas.ProofIn)
    required = {n for n, f in schemas.ProofIn.model_fields.items() if f.is_required()}
    assert ProofRequest.__required_keys__ == required == {"id", "code"}


def test_verify_result_is_proof_result_out():
    client = typing.get_type_hints(VerifyResult)
    service = _service_types(schemas.ProofResultOut)
    assert set(client) == set(service)
    # The client keeps a verdict it does not know as a string (never a wrong proof of its
    # own making); every verdict the service can send is one.
    verdicts = typing.get_args(service.pop("verdict"))
    assert client.pop("verdict") is str
    assert verdicts == ("valid", "invalid", "timeout", "error")
    assert client == service


def test_the_client_speaks_the_service_request_and_reply():
    sent = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        parsed = schemas.VerifyRequest.model_validate(body)  # the service's own validation
        sent.append(parsed)
        results = [
            schemas.ProofResultOut(
                id=proof.id,
                verdict="valid",
                reasons=[],
                messages=[{"severity": "info", "data": "ok"}],
                axioms=["propext"],
                cached=True,
                time_s=0.25,
            )
            for proof in parsed.proofs
        ]
        reply = schemas.VerifyResponse(results=results, checker_versions={"math": "x"})
        return httpx.Response(200, json=reply.model_dump(mode="json"))

    proof: ProofRequest = {"id": "p1", "checker": "math", "code": "3*8", "answer": "24"}
    with VerifierClient("http://verifier", transport=httpx.MockTransport(handler)) as client:
        (result,) = client.verify([proof])
    assert sent[0].proofs[0].model_dump(exclude_unset=True) == proof
    expected = VerifyResult(
        id="p1",
        verdict="valid",
        messages=[{"severity": "info", "data": "ok"}],
        axioms=["propext"],
        cached=True,
        time_s=0.25,
    )
    assert result == expected
    assert [f.name for f in dataclasses.fields(VerifyResult)] == list(
        schemas.ProofResultOut.model_fields
    )
