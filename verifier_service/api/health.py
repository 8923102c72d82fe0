"""``/health`` (alive), ``/ready`` (able to serve) and ``/metrics`` (Prometheus).

All three are open even when API keys are configured: orchestrators and scrapers probe them
without credentials, and they reveal nothing about proofs.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from verifier_service.api.encoding import json_response
from verifier_service.api.schemas import HealthResponse, ReadyResponse
from verifier_service.api.verify import get_service
from verifier_service.lean.sandbox import sandbox_report
from verifier_service.metrics import CONTENT_TYPE_LATEST
from verifier_service.service import VerificationService

__all__ = ["router"]

router = APIRouter(tags=["operations"])

#: Seconds ``/ready`` waits for the cache to answer a ping.
CACHE_PING_TIMEOUT_S = 2.0


@router.get("/health", response_model=HealthResponse, summary="Liveness")
async def health() -> dict[str, str]:
    """200 while the process serves HTTP; says nothing about Lean (see `/ready`)."""
    return {"status": "ok"}


@router.get(
    "/ready",
    response_model=ReadyResponse,
    summary="Readiness",
    responses={503: {"model": ReadyResponse, "description": "Not ready; the body says why."}},
)
async def ready(service: VerificationService = Depends(get_service)) -> Response:
    """200 when every enabled checker is ready and the cache answers; else 503 saying what's
    missing (e.g. Lean workers still importing Mathlib, Redis unreachable)."""
    cache = service.cache
    ping = getattr(cache, "ping", None)
    if ping is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ping(), CACHE_PING_TIMEOUT_S)
    state = service.readiness()
    is_ready = service.ready(state)
    body = {
        "ready": is_ready,
        "checkers": state["checkers"],
        "cache": state["cache"],
        "cache_backend": getattr(cache, "backend", None),
        "sandbox": sandbox_report(service.checkers),
    }
    return json_response(body, 200 if is_ready else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
