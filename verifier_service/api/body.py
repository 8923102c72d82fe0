"""Request bodies parsed strictly, so bad input is a 422 naming its place and never a 500.

FastAPI's own parsing turns a body that is not UTF-8, JSON nested too deep for the parser, or an
integer of 5,000 digits into ``400 There was an error parsing the body``, in a shape no other error
of this API has. And JSON may spell text that no encoder can write: a lone surrogate
(``"\\ud800"``) is valid JSON, becomes a Python ``str``, and fails only later, when the reply
echoes it (a 500) or when it is written to a Lean process (a dead worker). :class:`StrictJsonRoute`
parses the body itself before FastAPI looks at it and refuses all of these with the API's one error
shape: ``{"detail": [{"loc": ["body", "proofs", 3, "code"], "msg": ..., "type": ...}]}``.

The check for unencodable text costs nothing on ordinary bodies: only a ``\\uD8xx``-``\\uDFxx``
escape in the raw bytes can produce a surrogate (strict UTF-8 decoding refuses encoded ones), so the
parsed body is walked only when the bytes contain one.
"""

from __future__ import annotations

import email.message
import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.datastructures import DefaultPlaceholder
from fastapi.routing import APIRoute
from starlette.responses import Response

from verifier_service.api.errors import ApiError, encodable
from verifier_service.service import UNENCODABLE, UNENCODABLE_MESSAGE

__all__ = ["StrictJsonRoute", "parse_json_body"]

#: A JSON escape that decodes to half a surrogate pair (paired halves are fine, lone ones are not).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


def _refuse(loc: list[str | int], msg: str, type_: str) -> ApiError:
    return ApiError(422, loc, msg, type_)


def parse_json_body(raw: bytes) -> Any:
    """``raw`` as JSON, or :class:`ApiError` 422 saying what is wrong and where.

    Refused: bytes that are not UTF-8, text that is not JSON, nesting deeper than the parser's
    stack allows (about 1,000 levels; no valid request has more than 5), numbers Python will not
    convert, and any string (object keys included) that cannot be encoded as UTF-8; the last names
    the string's place in ``loc``.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        message = f"the body is not UTF-8 (byte {exc.start}): JSON must be UTF-8"
        raise _refuse(["body"], message, "json_invalid") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _refuse(["body", exc.pos], f"JSON decode error: {exc.msg}", "json_invalid") from None
    except RecursionError:
        raise _refuse(["body"], "JSON nested too deeply", "json_too_deep") from None
    except ValueError as exc:  # e.g. an integer beyond sys.get_int_max_str_digits()
        raise _refuse(["body"], f"JSON value refused: {exc}", "json_invalid") from None
    if _SURROGATE_ESCAPE.search(raw) is not None:
        _refuse_unencodable(value)
    return value


def _refuse_unencodable(value: Any) -> None:
    """422 for the first string (or key) that UTF-8 cannot encode, walked without recursion.

    Depth-first in document order, so the error names the first culprit a reader would find.
    """
    stack: list[tuple[Any, list[str | int]]] = [(value, ["body"])]
    while stack:
        node, loc = stack.pop()
        if isinstance(node, str):
            if UNENCODABLE.search(node):
                raise _unencodable(loc)
            continue
        if isinstance(node, dict):
            for key in node:
                if UNENCODABLE.search(key):
                    raise _unencodable([*loc, encodable(key)])
            children = list(node.items())
        elif isinstance(node, list):
            children = list(enumerate(node))
        else:
            continue
        stack.extend((child, [*loc, key]) for key, child in reversed(children))


def _unencodable(loc: list[str | int]) -> ApiError:
    return _refuse(loc, UNENCODABLE_MESSAGE, "string_unencodable")


def _wants_json(request: Request, strict_content_type: bool) -> bool:
    """Whether FastAPI will parse the body as JSON: ``*/json`` or ``*/…+json``, or no content type
    on a route that is not ``strict_content_type`` (FastAPI's default is strict)."""
    content_type = request.headers.get("content-type")
    if not content_type:
        return not strict_content_type
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


class StrictJsonRoute(APIRoute):
    """An :class:`~fastapi.routing.APIRoute` whose JSON body goes through :func:`parse_json_body`.

    The parsed value is left where FastAPI looks for it (``request._json``), so the body is
    decoded once and FastAPI's validation and error handling stay as they are. A body FastAPI
    will not read as JSON is not parsed here either.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler
        strict = self.strict_content_type
        strict_content_type = strict.value if isinstance(strict, DefaultPlaceholder) else strict

        async def strict_json_handler(request: Request) -> Response:
            if _wants_json(request, strict_content_type):
                raw = await request.body()
                if raw:
                    request._json = parse_json_body(raw)
            return await handler(request)

        return strict_json_handler
