"""``POST /verify``: Sieve's own batch API."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from verifier_service.api.encoding import json_response
from verifier_service.api.schemas import ErrorResponse, VerifyRequest, VerifyResponse
from verifier_service.service import VerificationService, policy_from

__all__ = ["get_service", "router"]

router = APIRouter(tags=["verify"])


def get_service(request: Request) -> VerificationService:
    return request.app.state.service


@router.post(
    "/verify",
    response_model=VerifyResponse,
    summary="Check a batch of proofs",
    responses={
        401: {"model": ErrorResponse, "description": "Missing or invalid API key."},
        413: {
            "model": ErrorResponse,
            "description": "More proofs than `max_batch_size`, or one proof's header + code "
            "above `max_code_bytes`.",
        },
        422: {"model": ErrorResponse, "description": "Malformed request; `loc` names the field."},
        429: {
            "model": ErrorResponse,
            "description": "Too many proofs pending; retry after `Retry-After` seconds.",
        },
    },
)
async def verify(
    body: VerifyRequest, service: VerificationService = Depends(get_service)
) -> Response:
    """One result per proof, in request order, ids echoed.

    `invalid` means the proof is wrong; `timeout` and `error` mean the system did not decide
    (retry an `error`). Identical proofs are checked once: repeats are answered from the cache
    (`cached: true`) or join the check already running.
    """
    policy = (
        None if body.policy is None else policy_from(body.policy.allow_sorry, body.policy.axioms)
    )
    results = await service.verify(body.proofs, policy)
    versions = service.checker_versions
    payload = {
        "results": [r.to_dict() for r in results],
        "checker_versions": {name: versions[name] for name in {p.checker for p in body.proofs}},
    }
    return json_response(payload)
