"""JSON responses built without a second validation pass.

FastAPI validates a returned object against the route's ``response_model`` and then encodes it; for
a fully cached batch of 1,000 proofs that costs more than the lookup itself. Routes here build plain
dicts in the documented shape and hand them to pydantic-core's Rust encoder.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic_core import to_json
from starlette.responses import Response

__all__ = ["json_response"]


def json_response(
    payload: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """``payload`` (dicts, lists, str, numbers) as an ``application/json`` response."""
    return Response(
        to_json(payload), status_code=status_code, headers=headers, media_type="application/json"
    )
