"""The HTTP layer: routes, wire schemas, authentication, error shapes and request metrics.

Routes are thin: they translate JSON to :class:`~verifier_service.service.ProofItem` and results
back; everything else lives in :class:`~verifier_service.service.VerificationService`.

* ``POST /verify`` (:mod:`.verify`): Sieve's batch API.
* ``POST /api/check`` (:mod:`.kimina`): kimina-lean-server compatible.
* ``GET /health``, ``/ready``, ``/metrics`` (:mod:`.health`): operations, never behind a key.
* ``GET /docs``, ``/redoc`` (:mod:`.docs`): the schema's pages, with assets served locally.

Around the routes: :mod:`.auth` checks the key before the body is read, :mod:`.body` parses bodies
strictly (422, never 400 or 500), :mod:`.errors` gives every error one shape, and
:mod:`.redaction` keeps secrets out of the logs.
"""

from __future__ import annotations

from verifier_service.api import health, kimina, verify
from verifier_service.api.auth import ApiKeyMiddleware, api_key_dependency
from verifier_service.api.errors import ApiError, install_error_handlers
from verifier_service.api.middleware import BodyLimitMiddleware, RequestMetricsMiddleware

__all__ = [
    "ApiError",
    "ApiKeyMiddleware",
    "BodyLimitMiddleware",
    "RequestMetricsMiddleware",
    "api_key_dependency",
    "health",
    "install_error_handlers",
    "kimina",
    "verify",
]
