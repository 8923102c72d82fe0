"""``POST /verify``: Sieve's own batch API."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from verifier_service.api.auth import client_identity
from verifier_service.api.body import StrictJsonRoute
from verifier_service.api.encoding import json_response
from verifier_service.api.schemas import ERROR_RESPONSES, VerifyRequest, VerifyResponse
from verifier_service.service import VerificationService, policy_from

__all__ = ["get_service", "router"]

router = APIRouter(tags=["verify"], route_class=StrictJsonRoute)


def get_service(request: Request) -> VerificationService:
    return request.app.state.service


@router.post(
    "/verify",
    response_model=VerifyResponse,
    summary="Check a batch of proofs",
    responses={status: ERROR_RESPONSES[status] for status in (401, 413, 422, 429)},
)
async def verify(
    body: VerifyRequest, request: Request, service: VerificationService = Depends(get_service)
) -> Response:
    """One result per proof, in request order, ids echoed.

    `invalid` means the proof is wrong; `timeout` and `error` mean the system did not decide
    (retry an `error`). Identical proofs are checked once: repeats are answered from the cache
    (`cached: true`) or join the check already running.
    """
    policy = (
        None if body.policy is None else policy_from(body.policy.allow_sorry, body.policy.axioms)
    )
    results = await service.verify(body.proofs, policy, client=client_identity(request))
    versions = service.checker_versions
    payload = {
        "results": [r.to_dict() for r in results],
        "checker_versions": {name: versions[name] for name in {p.checker for p in body.proofs}},
    }
    return json_response(payload)
