"""The verifier's HTTP client: many proofs in, one verdict per proof out, whatever the network does.

:class:`VerifierClient` sends ``POST /verify`` requests for a batch of proofs, split into chunks of
at most ``max_batch``, at most ``max_concurrency`` in flight, spread round-robin over one or more
base URLs. Connection errors, timeouts, 429, 502, 503 and 504 are retried with exponential backoff
(or the server's ``Retry-After``), failing over to the next base URL. A 413 halves the chunk. A
422 or 413 that names one proof (``loc = ["body", "proofs", i, field]``) settles that proof alone
(``invalid`` when its ``code`` was refused, e.g. empty; ``error`` for any other field) and sends
the rest of the chunk again, so one bad sample never costs its neighbours their verdicts.

A chunk that still fails after the retries does not raise: its proofs come back with
``verdict="error"`` and a reason ``client:<what>``. An ``error`` verdict (from the client or the
server) means *the system failed*, never *the proof is wrong*: a trainer drops such samples from
the target and counts them, instead of punishing the policy for an outage.

Both paths are real: :meth:`VerifierClient.verify` runs chunks on a thread pool over a shared
:class:`httpx.Client`, so it works the same from plain scripts and from inside a running event loop
(Jupyter); :meth:`VerifierClient.averify` runs them as tasks over a shared
:class:`httpx.AsyncClient`, bounded by an :class:`asyncio.Semaphore`.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
)

from trainer_client.wire import ProofRequest, Verdict, Verifier, VerifyResult, verify_non_empty

__all__ = [
    "RETRY_STATUSES",
    "ProofRequest",
    "Verdict",
    "VerificationError",
    "Verifier",
    "VerifierClient",
    "VerifyResult",
    "verify_non_empty",
]

logger = logging.getLogger(__name__)

# The wire types live in trainer_client.wire; they are re-exported here, where users of the
# client have always found them.

#: HTTP statuses that mean "try again later", not "your request is wrong".
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: The longest ``Retry-After`` the client honours; a larger one is capped to this.
MAX_RETRY_AFTER_S = 120.0


class VerificationError(RuntimeError):
    """Raised by ``verify``/``averify`` only when ``raise_on_error=True`` and a chunk failed."""

    def __init__(self, what: str, results: list[VerifyResult]) -> None:
        super().__init__(f"verification failed: {what}")
        self.what = what
        self.results = results


class _RetryableStatus(Exception):
    """A response that asks to be retried (429, 502, 503, 504)."""

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


class _ChunkTooLarge(Exception):
    """413: the server wants smaller batches."""


class _Rejected(Exception):
    """422/413 naming items of the chunk: ``{index: (field, message)}``."""

    def __init__(self, items: dict[int, tuple[str, str]]) -> None:
        super().__init__(f"rejected items {sorted(items)}")
        self.items = items


class _ChunkFailed(Exception):
    """A non-retryable failure of one chunk; its proofs become ``error`` results."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


@dataclass
class _Stats:
    requests: int = 0
    retries: int = 0
    errors: int = 0
    failovers: int = 0
    split_chunks: int = 0
    seconds_waiting: float = 0.0
    proofs: int = 0
    server_errors: int = 0


class VerifierClient:
    """A client of Sieve's ``POST /verify`` (usable by any RL stack: it only speaks HTTP).

    ``proofs`` are ``/verify`` items: dicts with ``id``, ``checker``, ``code`` and optionally
    ``header``, ``statement``, ``answer``, ``timeout_s``. Results come back in input order, one per
    proof, with the same ids. ``timeout_s`` bounds each HTTP request (the server's own per-proof
    budget is ``timeout_s`` in the proof). ``retries`` is the number of *extra* attempts per chunk.
    ``transport``/``async_transport`` replace the network (``httpx.MockTransport`` in tests).
    """

    def __init__(
        self,
        base_urls: str | Sequence[str],
        *,
        api_key: str | None = None,
        timeout_s: float = 300.0,
        max_batch: int = 64,
        max_concurrency: int = 8,
        retries: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        policy: dict | None = None,
        raise_on_error: bool = False,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        # "http://a:8000,http://b:8000" (an env var, a CLI flag) is several URLs.
        urls = base_urls.split(",") if isinstance(base_urls, str) else list(base_urls)
        urls = [u.strip() if isinstance(u, str) else u for u in urls]
        if not urls or not all(isinstance(u, str) and u.strip() for u in urls):
            raise ValueError("base_urls: give at least one non-empty URL")
        for name, value in (("max_batch", max_batch), ("max_concurrency", max_concurrency)):
            if value < 1:
                raise ValueError(f"{name}: must be >= 1, got {value}")
        if retries < 0:
            raise ValueError(f"retries: must be >= 0, got {retries}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s: must be > 0, got {timeout_s}")
        self.base_urls = [u.rstrip("/") for u in urls]
        self.timeout_s = timeout_s
        self.max_batch = max_batch
        self.max_concurrency = max_concurrency
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.policy = policy
        self.raise_on_error = raise_on_error
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._limits = httpx.Limits(
            max_connections=max_concurrency * 2, max_keepalive_connections=max_concurrency
        )
        self._transport = transport
        self._async_transport = async_transport
        self._client: httpx.Client | None = None
        self._aclient: httpx.AsyncClient | None = None
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._lock = threading.Lock()
        self._next_url = 0
        self._stats = _Stats()

    # ----------------------------------------------------------------------------------------
    # Public API

    def verify(self, proofs: Sequence[Mapping[str, Any]]) -> list[VerifyResult]:
        """Verify ``proofs``; chunks run concurrently on a thread pool. Safe in a running loop."""
        items = _validated(proofs)
        chunks = list(self._chunks(items))
        if not chunks:
            return []
        client = self._sync_client()
        if len(chunks) == 1:
            outputs = [self._run_chunk(client, *chunks[0])]
        else:
            with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(chunks))) as pool:
                outputs = list(pool.map(lambda c: self._run_chunk(client, *c), chunks))
        return self._collect(items, outputs)

    async def averify(self, proofs: Sequence[Mapping[str, Any]]) -> list[VerifyResult]:
        """Verify ``proofs`` as concurrent tasks, at most ``max_concurrency`` requests at once."""
        items = _validated(proofs)
        chunks = list(self._chunks(items))
        if not chunks:
            return []
        client, semaphore = self._async_client()

        async def run(url_index: int, chunk: list[dict]) -> list[VerifyResult]:
            async with semaphore:
                return await self._arun_chunk(client, url_index, chunk)

        outputs = await asyncio.gather(*(run(i, c) for i, c in chunks))
        return self._collect(items, list(outputs))

    @property
    def stats(self) -> dict[str, float]:
        """Counters since construction: requests, retries, errors (proofs the client gave up on),
        failovers, split_chunks (413s), seconds_waiting (in backoff), proofs, server_errors."""
        with self._lock:
            return dict(vars(self._stats))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        if self._aclient is not None and self._aloop is asyncio.get_running_loop():
            await self._aclient.aclose()
        self._aclient = None
        self._aloop = None
        self._semaphore = None
        self.close()

    def __enter__(self) -> VerifierClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> VerifierClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ----------------------------------------------------------------------------------------
    # Chunks and results

    def _chunks(self, items: list[dict]) -> Iterator[tuple[int, list[dict]]]:
        """Consecutive chunks, each with the base URL it starts on (round-robin)."""
        for start in range(0, len(items), self.max_batch):
            with self._lock:
                url_index = self._next_url
                self._next_url = (self._next_url + 1) % len(self.base_urls)
            yield url_index, items[start : start + self.max_batch]

    def _collect(self, items: list[dict], outputs: list[list[VerifyResult]]) -> list[VerifyResult]:
        by_id = {r.id: r for chunk in outputs for r in chunk}
        results = [by_id[item["id"]] for item in items]
        client_errors = sum(1 for r in results if r.failed and _is_client_reason(r))
        with self._lock:
            self._stats.proofs += len(results)
            self._stats.errors += client_errors
            self._stats.server_errors += sum(1 for r in results if r.failed) - client_errors
        if self.raise_on_error and client_errors:
            what = next(r.reasons[0] for r in results if r.failed and _is_client_reason(r))
            raise VerificationError(what, results)
        return results

    def _body(self, chunk: list[dict]) -> dict[str, Any]:
        body: dict[str, Any] = {"proofs": chunk}
        if self.policy is not None:
            body["policy"] = self.policy
        return body

    def _parse(self, response: httpx.Response, chunk: list[dict]) -> list[VerifyResult]:
        """Results for ``chunk`` from a response, matched by id (the server may reorder them)."""
        status = response.status_code
        if status in RETRY_STATUSES:
            raise _RetryableStatus(status, _retry_after(response.headers.get("Retry-After")))
        if status in (413, 422):
            rejected = _rejected_items(response, len(chunk))
            if rejected:
                raise _Rejected(rejected)
        if status == 413:
            raise _ChunkTooLarge()
        if status != 200:
            raise _ChunkFailed(f"http_{status}{_detail(response)}")
        try:
            payload = response.json()
            by_id = {str(r["id"]): VerifyResult.from_json(r) for r in payload["results"]}
        except (ValueError, KeyError, TypeError) as exc:
            raise _ChunkFailed(f"bad_response: {type(exc).__name__}") from None
        return [
            by_id.get(item["id"]) or VerifyResult.client_error(item["id"], "missing_result")
            for item in chunk
        ]

    # ----------------------------------------------------------------------------------------
    # Sync path

    def _sync_client(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    timeout=self.timeout_s,
                    headers=self._headers,
                    limits=self._limits,
                    transport=self._transport,
                )
            return self._client

    def _run_chunk(
        self, client: httpx.Client, url_index: int, chunk: list[dict]
    ) -> list[VerifyResult]:
        attempt = _Attempt(url_index)
        try:
            for tried in Retrying(**self._retry_kwargs(attempt)):
                with tried:
                    url = self._url(attempt)
                    self._count_request()
                    response = client.post(f"{url}/verify", json=self._body(chunk))
                    return self._parse(response, chunk)
        except _ChunkTooLarge:
            return self._split(chunk, lambda half: self._run_chunk(client, url_index, half))
        except _Rejected as exc:
            rest = [item for i, item in enumerate(chunk) if i not in exc.items]
            done = self._run_chunk(client, url_index, rest) if rest else []
            return _merge(chunk, exc.items, done)
        except Exception as exc:
            return self._give_up(chunk, exc)
        raise AssertionError("unreachable")  # pragma: no cover

    # ----------------------------------------------------------------------------------------
    # Async path

    def _async_client(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        if self._aclient is None or self._aloop is not loop:
            # An AsyncClient belongs to the loop that made it; a new loop (a second
            # asyncio.run) gets a new client. The old one's sockets died with its loop.
            self._aclient = httpx.AsyncClient(
                timeout=self.timeout_s,
                headers=self._headers,
                limits=self._limits,
                transport=self._async_transport,
            )
            self._aloop = loop
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
        assert self._semaphore is not None
        return self._aclient, self._semaphore

    async def _arun_chunk(
        self, client: httpx.AsyncClient, url_index: int, chunk: list[dict]
    ) -> list[VerifyResult]:
        attempt = _Attempt(url_index)
        try:
            async for tried in AsyncRetrying(**self._retry_kwargs(attempt)):
                with tried:
                    url = self._url(attempt)
                    self._count_request()
                    response = await client.post(f"{url}/verify", json=self._body(chunk))
                    return self._parse(response, chunk)
        except _ChunkTooLarge:
            halves = _halves(chunk)
            if halves is None:
                return self._give_up(chunk, _ChunkFailed("http_413"))
            self._count_split()
            parts = await asyncio.gather(
                *(self._arun_chunk(client, url_index, half) for half in halves)
            )
            return [r for part in parts for r in part]
        except _Rejected as exc:
            rest = [item for i, item in enumerate(chunk) if i not in exc.items]
            done = await self._arun_chunk(client, url_index, rest) if rest else []
            return _merge(chunk, exc.items, done)
        except Exception as exc:
            return self._give_up(chunk, exc)
        raise AssertionError("unreachable")  # pragma: no cover

    # ----------------------------------------------------------------------------------------
    # Retries, failover, failures (shared by both paths)

    def _retry_kwargs(self, attempt: _Attempt) -> dict[str, Any]:
        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _RetryableStatus) and exc.retry_after is not None:
                return min(exc.retry_after, MAX_RETRY_AFTER_S)
            # Exponential backoff with jitter, so many clients do not retry in lockstep.
            exponential = self.backoff_s * 2 ** (state.attempt_number - 1)
            return min(exponential + random.uniform(0, self.backoff_s), self.max_backoff_s)

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            seconds = state.next_action.sleep if state.next_action else 0.0
            with self._lock:
                self._stats.retries += 1
                self._stats.seconds_waiting += seconds
                if len(self.base_urls) > 1:
                    self._stats.failovers += 1
            attempt.url_index += 1  # fail over: the next attempt goes to the next base URL
            logger.info("verify: %s; retrying in %.2fs", _describe(exc), seconds)

        return {
            "stop": stop_after_attempt(self.retries + 1),
            "wait": wait,
            "retry": retry_if_exception_type((httpx.TransportError, _RetryableStatus)),
            "before_sleep": before_sleep,
            "reraise": True,
        }

    def _url(self, attempt: _Attempt) -> str:
        return self.base_urls[attempt.url_index % len(self.base_urls)]

    def _count_request(self) -> None:
        with self._lock:
            self._stats.requests += 1

    def _count_split(self) -> None:
        with self._lock:
            self._stats.split_chunks += 1

    def _split(
        self, chunk: list[dict], run: Callable[[list[dict]], list[VerifyResult]]
    ) -> list[VerifyResult]:
        halves = _halves(chunk)
        if halves is None:
            return self._give_up(chunk, _ChunkFailed("http_413"))
        self._count_split()
        return [r for half in halves for r in run(half)]

    def _give_up(self, chunk: list[dict], exc: BaseException) -> list[VerifyResult]:
        what = _describe(exc)
        logger.warning("verify: giving up on %d proof(s): %s", len(chunk), what)
        return [VerifyResult.client_error(item["id"], what) for item in chunk]


@dataclass
class _Attempt:
    """Which base URL the next attempt of one chunk goes to."""

    url_index: int


def _validated(proofs: Sequence[Mapping[str, Any]]) -> list[dict]:
    """The proofs as a list, with ids as strings; bad input raises naming the field."""
    items: list[dict] = []
    seen: set[str] = set()
    for i, proof in enumerate(proofs):
        if not isinstance(proof, dict):
            raise TypeError(f"proofs[{i}]: expected a dict, got {type(proof).__name__}")
        for name in ("id", "checker", "code"):
            if proof.get(name) is None:
                raise ValueError(f"proofs[{i}].{name}: missing")
        pid = str(proof["id"])
        if pid in seen:
            raise ValueError(f"proofs[{i}].id: duplicate id {pid!r}")
        seen.add(pid)
        items.append(proof if isinstance(proof["id"], str) else {**proof, "id": pid})
    return items


def _rejected_items(response: httpx.Response, size: int) -> dict[int, tuple[str, str]]:
    """Items a 422/413 names (``loc == ["body", "proofs", index, field]``), else nothing."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return {}
    items: dict[int, tuple[str, str]] = {}
    for entry in detail if isinstance(detail, list) else []:
        loc = entry.get("loc") if isinstance(entry, dict) else None
        if (
            isinstance(loc, list)
            and len(loc) >= 3
            and loc[:2] == ["body", "proofs"]
            and type(loc[2]) is int
            and 0 <= loc[2] < size
        ):
            field = str(loc[3]) if len(loc) > 3 else "item"
            items.setdefault(loc[2], (field, str(entry.get("msg", ""))[:200]))
    return items


def _merge(
    chunk: list[dict], rejected: dict[int, tuple[str, str]], done: list[VerifyResult]
) -> list[VerifyResult]:
    """Results for ``chunk``: the service's for the items it took, verdicts for the rejected.

    A proof whose ``code`` the service refuses (empty, too large) is the policy's doing: it is
    ``invalid``, so a trainer penalises it like any wrong proof. A refused ``header``,
    ``statement``, ``answer``... is the data's or the caller's doing: ``error``, dropped and
    counted, never blamed on the policy.
    """
    by_id = {r.id: r for r in done}
    results = []
    for i, item in enumerate(chunk):
        if i not in rejected:
            results.append(by_id[item["id"]])
            continue
        field, message = rejected[i]
        if field == "code":
            reason = f"rejected:code: {message}"
            results.append(VerifyResult(id=item["id"], verdict="invalid", reasons=[reason]))
        else:
            results.append(VerifyResult.client_error(item["id"], f"rejected:{field}: {message}"))
    return results


def _halves(chunk: list[dict]) -> tuple[list[dict], list[dict]] | None:
    if len(chunk) < 2:
        return None
    middle = len(chunk) // 2
    return chunk[:middle], chunk[middle:]


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)


def _detail(response: httpx.Response) -> str:
    """A short hint from an error body (FastAPI's ``detail``), e.g. the field a 422 names."""
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return ""
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        loc = ".".join(str(p) for p in detail[0].get("loc", []))
        return f": {loc}: {detail[0].get('msg', '')}"[:200]
    return f": {detail}"[:200] if detail else ""


def _describe(exc: BaseException | None) -> str:
    """The ``client:<what>`` part of an error result."""
    if isinstance(exc, _RetryableStatus):
        return f"http_{exc.status}"
    if isinstance(exc, _ChunkFailed):
        return exc.what
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connect_error"
    if isinstance(exc, httpx.TransportError):
        return f"transport_error: {type(exc).__name__}"
    return f"unexpected: {type(exc).__name__}: {exc}"[:200]


def _is_client_reason(result: VerifyResult) -> bool:
    return any(reason.startswith("client:") for reason in result.reasons)
