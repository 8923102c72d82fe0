"""Optional bearer-token authentication.

With ``SIEVE_API_KEYS`` set, the proof-checking routes need ``Authorization: Bearer <key>``
(kimina clients may send ``X-Auth-Token: <key>`` instead). ``/health``, ``/ready`` and
``/metrics`` stay open for orchestrators and scrapers; they reveal no proofs.

The presented token is compared with every configured key by :func:`hmac.compare_digest`, so
neither a match nor its position leaks through timing, and no key or token is ever logged.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence

from fastapi import Header, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from verifier_service.api.errors import ApiError

__all__ = ["api_key_dependency"]

logger = logging.getLogger("verifier_service.api.auth")

_bearer = HTTPBearer(auto_error=False, description="One of the server's `SIEVE_API_KEYS`.")


def _matches(token: str, keys: Sequence[bytes]) -> bool:
    presented = token.encode()
    found = False
    for key in keys:  # no early exit: every key is compared
        found |= hmac.compare_digest(presented, key)
    return found


def api_key_dependency(
    api_keys: Sequence[str],
) -> Callable[..., Awaitable[None]]:
    """A FastAPI dependency that refuses requests without one of ``api_keys`` (401)."""
    keys = [key.encode() for key in api_keys if key]

    async def require_api_key(
        credentials: HTTPAuthorizationCredentials | None = Security(_bearer),
        x_auth_token: str | None = Header(None, include_in_schema=False),
    ) -> None:
        token = credentials.credentials if credentials is not None else None
        if token is None and x_auth_token:
            token = x_auth_token.removeprefix("Bearer ").strip()
        if token and _matches(token, keys):
            return
        logger.info("refused a request: %s API key", "invalid" if token else "missing")
        raise ApiError(
            401,
            ["header", "authorization"],
            "a valid API key is required: send 'Authorization: Bearer <key>'",
            "unauthorized",
            headers={"WWW-Authenticate": "Bearer"},
        )

    return require_api_key
