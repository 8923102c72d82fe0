"""Optional bearer-token authentication, checked before a request's body is read.

With ``SIEVE_API_KEYS`` set, every route except the open ones needs ``Authorization: Bearer <key>``
(kimina clients may send ``X-Auth-Token: <key>`` instead). ``/health``, ``/ready``, ``/metrics`` and
the schema and its docs pages stay open for orchestrators, scrapers and readers; they reveal no
proofs.

:class:`ApiKeyMiddleware` is plain ASGI and sits outside FastAPI's routing: FastAPI reads and parses
the body before any dependency runs, so a key checked in a dependency lets a client without one
make the service buffer and parse up to ``SIEVE_MAX_BODY_BYTES`` and learn from a 422 what the body
should look like. Here a request without a valid key is answered 401 before its body is received.

The presented token is compared with every configured key by :func:`hmac.compare_digest`, so
neither a match nor its position leaks through timing, and no key or token is ever logged. The
key's position in ``SIEVE_API_KEYS`` (never the key) identifies the client for its quota.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import NamedTuple

from fastapi import Header, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from verifier_service.api.encoding import json_response
from verifier_service.api.errors import ApiError, error_body

__all__ = ["CLIENT_SCOPE_KEY", "ApiKeyMiddleware", "api_key_dependency", "client_identity"]

logger = logging.getLogger("verifier_service.api.auth")

#: Where :class:`ApiKeyMiddleware` leaves the authenticated client's identity in the ASGI scope.
CLIENT_SCOPE_KEY = "sieve.client"

_bearer = HTTPBearer(auto_error=False, description="One of the server's `SIEVE_API_KEYS`.")
_REFUSAL = "a valid API key is required: send 'Authorization: Bearer <key>'"


def _match(token: str | None, keys: Sequence[bytes]) -> int | None:
    """Index of the key ``token`` equals, comparing with every key (no early exit)."""
    if not token:
        return None
    presented = token.encode("utf-8", "surrogateescape")
    found: int | None = None
    for index, key in enumerate(keys):
        if hmac.compare_digest(presented, key) and found is None:
            found = index
    return found


def _token(authorization: str | None, x_auth_token: str | None) -> str | None:
    """The bearer token of ``Authorization``, else of kimina's ``X-Auth-Token``."""
    if authorization:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    if x_auth_token:
        return x_auth_token.removeprefix("Bearer ").strip() or None
    return None


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def client_identity(request: Request) -> str:
    """Who asks, for per-client quotas: ``key#N`` (the N-th API key) or ``addr:HOST``."""
    identity = request.scope.get(CLIENT_SCOPE_KEY)
    if identity:
        return identity
    client = request.client
    return f"addr:{client.host}" if client is not None else "anonymous"


class _RouteLabel(NamedTuple):
    """Stands in for the route a refused request never reached, for the request metrics."""

    path: str


class ApiKeyMiddleware:
    """401 for a request without a valid key to any path not in ``open_paths``/``open_prefixes``.

    Everything else is protected, so a route added later is protected by default.
    ``route_paths`` (called once, when first needed) lists the app's route templates; it only
    labels a refused request with its route in the request metrics.
    """

    def __init__(
        self,
        app: ASGIApp,
        api_keys: Sequence[str],
        open_paths: Collection[str] = (),
        open_prefixes: Sequence[str] = (),
        route_paths: Callable[[], Collection[str]] | None = None,
    ) -> None:
        self.app = app
        self.keys = [key.encode() for key in api_keys if key]
        self.open_paths = frozenset(open_paths)
        self.open_prefixes = tuple(open_prefixes)
        self._route_paths = route_paths
        self._known: frozenset[str] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys:
            await self.app(scope, receive, send)
            return
        path = _route_path(scope)
        if path in self.open_paths or path.startswith(self.open_prefixes):
            await self.app(scope, receive, send)
            return
        headers = {k: v for k, v in scope["headers"] if k in (b"authorization", b"x-auth-token")}
        authorization = headers.get(b"authorization")
        x_auth_token = headers.get(b"x-auth-token")
        token = _token(
            authorization.decode("latin-1") if authorization is not None else None,
            x_auth_token.decode("latin-1") if x_auth_token is not None else None,
        )
        index = _match(token, self.keys)
        if index is not None:
            scope[CLIENT_SCOPE_KEY] = f"key#{index}"
            await self.app(scope, receive, send)
            return
        logger.info("refused a request: %s API key", "invalid" if token else "missing")
        if path in self._known_paths():
            scope["route"] = _RouteLabel(path)
        response = json_response(
            error_body(["header", "authorization"], _REFUSAL, "unauthorized"),
            401,
            headers={"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)  # the body is never received

    def _known_paths(self) -> frozenset[str]:
        if self._known is None:
            self._known = frozenset(self._route_paths() if self._route_paths else ())
        return self._known


def api_key_dependency(
    api_keys: Sequence[str],
) -> Callable[..., Awaitable[None]]:
    """A FastAPI dependency that documents the bearer scheme in OpenAPI and enforces it.

    :class:`ApiKeyMiddleware` has already refused requests without a key by the time this runs;
    the check here only matters for an app assembled without the middleware.
    """
    keys = [key.encode() for key in api_keys if key]

    async def require_api_key(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Security(_bearer),
        x_auth_token: str | None = Header(None, include_in_schema=False),
    ) -> None:
        if request.scope.get(CLIENT_SCOPE_KEY):
            return
        token = credentials.credentials if credentials is not None else None
        token = _token(None, x_auth_token) if token is None else token
        if _match(token, keys) is not None:
            return
        logger.info("refused a request: %s API key", "invalid" if token else "missing")
        raise ApiError(
            401,
            ["header", "authorization"],
            _REFUSAL,
            "unauthorized",
            headers={"WWW-Authenticate": "Bearer"},
        )

    return require_api_key
