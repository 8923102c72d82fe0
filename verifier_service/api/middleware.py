"""Plain ASGI middlewares (no per-request task or body buffering): request metrics, body limit."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from verifier_service.api.encoding import json_response
from verifier_service.api.errors import error_body
from verifier_service.metrics import ServiceMetrics

__all__ = ["BodyLimitMiddleware", "RequestMetricsMiddleware"]


class RequestMetricsMiddleware:
    """Counts requests by route template, method and status, and times them.

    The route *template* (``/verify``), not the raw path, labels the series, so a scan of random
    URLs cannot blow up the number of series: unmatched paths share the label ``unmatched``.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(
                template, scope["method"], status, time.perf_counter() - start
            )


class BodyLimitMiddleware:
    """413 for a request body above ``max_bytes``, before it is read into memory.

    The per-proof and per-batch limits apply only once the JSON is parsed, and FastAPI reads
    the body before any dependency (the API-key check included) runs; this bounds what any
    client, authenticated or not, can make the service buffer. A declared ``Content-Length``
    is refused at once. A chunked body is counted as it streams in: past the limit the app sees
    the body end there, and whatever it answers to that stub is replaced by the 413.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.max_bytes <= 0:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        too_large = False

        async def counting_receive() -> Message:
            nonlocal received, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    too_large = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        async def guarded_send(message: Message) -> None:
            if not too_large:
                await send(message)
            elif message["type"] == "http.response.start":
                await self._refuse(scope, receive, send)

        await self.app(scope, counting_receive, guarded_send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = error_body(
            ["body"], f"request body above {self.max_bytes} bytes (max_body_bytes)", "too_large"
        )
        await json_response(body, 413)(scope, receive, send)
