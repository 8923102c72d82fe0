"""Request metrics as a plain ASGI middleware (no per-request task or body buffering)."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from verifier_service.metrics import ServiceMetrics

__all__ = ["RequestMetricsMiddleware"]


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
