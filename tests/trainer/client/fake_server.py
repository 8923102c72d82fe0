"""An in-process fake of ``POST /verify`` with injectable faults, for httpx.MockTransport."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import httpx


def verdict_for(proof: dict) -> str:
    """The fake's judgement: deterministic from the code, so tests can predict every verdict."""
    code = proof["code"]
    if code.startswith("valid"):
        return "valid"
    if code.startswith("error"):
        return "error"
    return "invalid"


@dataclass
class FakeVerifier:
    """Answers ``/verify`` like the service does; ``faults`` are consumed one per request.

    A fault is ``"connect"`` (connection refused), ``"429"``/``"503"`` (with ``Retry-After``),
    ``"slow"`` (sleeps ``slow_s`` before answering, past the client's timeout), ``"500"``,
    ``"413"``, ``"garbage"`` (a 200 that is not JSON). ``max_batch`` answers 413 above it. Like
    the service, a proof with empty ``code`` gets a 422 naming it, ``code`` starting with "huge" a
    413 naming it, ``header == "bad"`` a 422 naming the header.
    ``reverse`` returns each chunk's results in reverse order; ``delays`` maps the first proof id
    of a chunk to seconds to wait, so chunks finish out of order.
    """

    faults: deque = field(default_factory=deque)
    retry_after: str = "0"
    slow_s: float = 1.0
    max_batch: int | None = None
    reverse: bool = True
    delays: dict[str, float] = field(default_factory=dict)
    requests: list[dict] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _begin(self, request: httpx.Request) -> tuple[str | None, dict]:
        body = json.loads(request.content)
        with self._lock:
            fault = self.faults.popleft() if self.faults else None
            self.requests.append(
                {
                    "host": request.url.host,
                    "path": request.url.path,
                    "auth": request.headers.get("authorization"),
                    "body": body,
                    "fault": fault,
                }
            )
        return fault, body

    def _answer(self, request: httpx.Request, fault: str | None, body: dict) -> httpx.Response:
        if fault == "connect":
            raise httpx.ConnectError("connection refused", request=request)
        if fault in ("429", "503"):
            return httpx.Response(
                int(fault), headers={"Retry-After": self.retry_after}, json={"detail": "busy"}
            )
        if fault == "500":
            return httpx.Response(500, json={"detail": "boom"})
        if fault == "413" or (self.max_batch and len(body["proofs"]) > self.max_batch):
            return httpx.Response(413, json={"detail": "batch too large"})
        if fault == "garbage":
            return httpx.Response(200, content=b"<html>")
        for i, p in enumerate(body["proofs"]):  # like the service: the first bad item only
            loc = ["body", "proofs", i]
            if not p["code"]:
                return httpx.Response(422, json=_error([*loc, "code"], "the answer is empty"))
            if p["code"].startswith("huge"):
                return httpx.Response(413, json=_error([*loc, "code"], "code too large"))
            if p.get("header") == "bad":
                return httpx.Response(422, json=_error([*loc, "header"], "unknown import"))
        results = [
            {
                "id": p["id"],
                "verdict": verdict_for(p),
                "reasons": [] if verdict_for(p) == "valid" else ["fake"],
                "messages": [],
                "axioms": ["propext"],
                "cached": False,
                "time_s": 0.01,
            }
            for p in body["proofs"]
        ]
        if self.reverse:
            results.reverse()
        return httpx.Response(200, json={"results": results, "checker_versions": {"fake": "1"}})

    def _delay(self, fault: str | None, body: dict) -> float:
        if fault == "slow":
            return self.slow_s
        first = body["proofs"][0]["id"] if body["proofs"] else ""
        return self.delays.get(first, 0.0)

    def handler(self, request: httpx.Request) -> httpx.Response:
        fault, body = self._begin(request)
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            delay = self._delay(fault, body)
            if delay:
                # MockTransport does not apply httpx's timeouts: emulate one past the limit.
                timeout = request.extensions.get("timeout", {}).get("read")
                if fault == "slow" and timeout is not None and delay > timeout:
                    time.sleep(timeout)
                    raise httpx.ReadTimeout("timed out", request=request)
                time.sleep(delay)
            return self._answer(request, fault, body)
        finally:
            with self._lock:
                self.in_flight -= 1

    async def ahandler(self, request: httpx.Request) -> httpx.Response:
        fault, body = self._begin(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            delay = self._delay(fault, body)
            if delay:
                # MockTransport does not apply httpx's timeouts: emulate one past the limit.
                timeout = request.extensions.get("timeout", {}).get("read")
                if fault == "slow" and timeout is not None and delay > timeout:
                    await asyncio.sleep(timeout)
                    raise httpx.ReadTimeout("timed out", request=request)
                await asyncio.sleep(delay)
            return self._answer(request, fault, body)
        finally:
            self.in_flight -= 1

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def async_transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.ahandler)


def _error(loc: list, msg: str) -> dict:
    return {"detail": [{"loc": loc, "msg": msg, "type": "invalid_input"}]}


def proofs(n: int, prefix: str = "p") -> list[dict]:
    """``n`` proofs whose verdicts cycle valid, invalid, error (see :func:`verdict_for`)."""
    kinds = ("valid", "wrong", "error")
    return [
        {"id": f"{prefix}{i}", "checker": "math", "code": f"{kinds[i % 3]}-{i}", "answer": "1"}
        for i in range(n)
    ]
