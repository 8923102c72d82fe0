"""Every error the API returns has one JSON shape: ``{"detail": [{"loc", "msg", "type"}]}``.

``loc`` names the culprit the way FastAPI's validation errors do (``["body", "proofs", 3,
"code"]``), so a client handles a 413 for one oversized proof like a 422 for a missing field.
Validation errors do not echo the offending input back: a batch of 1,000 proofs with one typo
would otherwise return its whole body. Text in an error that UTF-8 cannot encode (a lone surrogate
in a field name) is written as an escape, so an error about bad input is never itself a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from verifier_service.api.encoding import json_response
from verifier_service.service import (
    UNENCODABLE,
    BatchTooLarge,
    InvalidItem,
    QueueFull,
    QuotaExceeded,
)

__all__ = ["ApiError", "error_body", "install_error_handlers"]

logger = logging.getLogger("verifier_service.api")


def encodable(text: str) -> str:
    """``text`` with every lone surrogate written as ``\\udxxx``, so it can be sent as UTF-8."""
    return UNENCODABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _safe(part: object) -> str | int:
    if isinstance(part, int) and not isinstance(part, bool):
        return part
    return encodable(str(part))


def error_body(loc: Sequence[object], msg: str, type_: str) -> dict[str, object]:
    return {"detail": [{"loc": [_safe(p) for p in loc], "msg": encodable(msg), "type": type_}]}


class ApiError(Exception):
    """An error response raised from a route or dependency."""

    def __init__(
        self,
        status_code: int,
        loc: Sequence[str | int],
        msg: str,
        type_: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(msg)
        self.status_code = status_code
        self.loc = list(loc)
        self.msg = msg
        self.type = type_
        self.headers = dict(headers or {})


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return json_response(
        error_body(exc.loc, exc.msg, exc.type), exc.status_code, headers=exc.headers or None
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    detail = [
        {
            "loc": [_safe(p) for p in err.get("loc", ())],
            "msg": encodable(str(err.get("msg", ""))),
            "type": str(err.get("type", "value_error")),
        }
        for err in exc.errors()
    ]
    return json_response({"detail": detail}, 422)


async def _invalid_item(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidItem)
    loc = ["body", "proofs", exc.index, exc.field]
    return json_response(error_body(loc, exc.message, "invalid_input"), 422)


async def _too_large(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BatchTooLarge)
    return json_response(error_body(exc.loc, exc.message, "too_large"), 413)


async def _queue_full(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, QueueFull)
    type_ = "quota_exceeded" if isinstance(exc, QuotaExceeded) else "queue_full"
    return json_response(
        error_body(["body", "proofs"], str(exc), type_),
        429,
        headers={"Retry-After": str(exc.retry_after_s)},
    )


_HTTP_ERROR_TYPES = {404: "not_found", 405: "method_not_allowed"}


async def _http_error(request: Request, exc: Exception) -> Response:
    """Routing's own errors (404, 405 with its ``Allow`` header) in the same shape."""
    assert isinstance(exc, HTTPException)
    type_ = _HTTP_ERROR_TYPES.get(exc.status_code, "http_error")
    return json_response(
        error_body([], str(exc.detail), type_), exc.status_code, headers=exc.headers or None
    )


async def _unhandled(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return json_response(error_body([], "internal server error", "internal_error"), 500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(InvalidItem, _invalid_item)
    app.add_exception_handler(BatchTooLarge, _too_large)
    app.add_exception_handler(QueueFull, _queue_full)
    app.add_exception_handler(Exception, _unhandled)
