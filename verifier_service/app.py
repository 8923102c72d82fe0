"""The ASGI application: :func:`create_app` wires settings, checkers, cache and routes.

``uvicorn --factory verifier_service.app:create_app`` serves it with settings from ``SIEVE_*``;
``sieve-verifier serve`` does the same with flags on top.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from verifier_service import __version__
from verifier_service.api import (
    ApiKeyMiddleware,
    BodyLimitMiddleware,
    RequestMetricsMiddleware,
    api_key_dependency,
    health,
    install_error_handlers,
    kimina,
    verify,
)
from verifier_service.api.docs import ASSETS_PATH, install_docs
from verifier_service.api.redaction import install_redaction
from verifier_service.cache import VerdictCache, build_cache
from verifier_service.checkers import build_checkers
from verifier_service.checkers.base import Checker
from verifier_service.lean.sandbox import sandbox_report
from verifier_service.metrics import ServiceMetrics
from verifier_service.service import VerificationService
from verifier_service.settings import VerifierSettings

__all__ = ["create_app"]

logger = logging.getLogger("verifier_service.app")

DESCRIPTION = """\
Lean 4 proof checking (and final-answer checking) as a service.

`POST /verify` checks a batch: one result per proof, in order. `invalid` means the proof is
wrong; `timeout`/`error` mean the system did not decide. Verdicts are cached per checker version;
identical proofs in flight are checked once. `POST /api/check` speaks kimina-lean-server's schema.
"""


def create_app(
    settings: VerifierSettings | None = None,
    *,
    checkers: Mapping[str, Checker] | None = None,
    cache: VerdictCache | None = None,
) -> FastAPI:
    """A ready-to-serve app. ``checkers``/``cache`` default to what ``settings`` describe.

    The app owns them: its lifespan starts the checkers (in the background: Lean warms while
    ``/health`` already answers) and closes checkers and cache at shutdown.
    """
    settings = settings if settings is not None else VerifierSettings()
    if checkers is None:
        checkers = build_checkers(settings)
    if cache is None:
        cache = build_cache(settings)
    metrics = ServiceMetrics()
    service = VerificationService(checkers, cache, settings=settings, metrics=metrics)
    sandbox = sandbox_report(checkers)
    metrics.sandbox_mode.labels(sandbox["mode"]).set(1)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        details = ", ".join(f"{k}={v}" for k, v in sandbox.items() if k != "mode")
        logger.info(
            "sieve verifier %s starting: checkers %s; Lean sandbox %s%s; cache %s",
            __version__,
            ", ".join(checkers) or "none",
            sandbox["mode"],
            f" ({details})" if details else "",
            getattr(cache, "backend", None) or "none",
        )
        await service.start()
        try:
            yield
        finally:
            await service.aclose()

    app = FastAPI(
        title="Sieve verifier",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by install_docs, without a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.service = service
    app.state.metrics = metrics
    install_error_handlers(app)
    install_redaction(settings.api_keys)
    # Outermost last: metrics count every answer; the key is checked before the body is read,
    # and the body limit applies to authenticated clients too.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    open_paths = [route.path for route in health.router.routes]  # type: ignore[attr-defined]
    open_paths += install_docs(app)
    app.add_middleware(
        ApiKeyMiddleware,
        api_keys=settings.api_keys,
        open_paths=open_paths,
        open_prefixes=[ASSETS_PATH + "/"],
        route_paths=lambda: list(app.openapi()["paths"]),
    )
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    protected = [Depends(api_key_dependency(settings.api_keys))] if settings.api_keys else []
    app.include_router(verify.router, dependencies=protected)
    app.include_router(kimina.router, dependencies=protected)
    app.include_router(health.router)
    return app
