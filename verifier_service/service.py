"""The verification service: from a batch of proofs to one result per proof, without HTTP.

What happens to a batch, in order:

1. every item is normalised by its checker's ``prepare`` (bad input raises :class:`InvalidItem`
   before anything runs, so a 422 never leaves half a batch checked);
2. the whole batch is looked up in the verdict cache with one ``get_many``;
3. what is left is de-duplicated against itself and against checks already in flight for other
   requests (a joiner awaits the owner's future instead of checking again);
4. admission control: if the new checks would push the number of pending proofs above
   ``settings.max_pending`` the batch is refused (:class:`QueueFull`, HTTP 429) rather than
   queued behind an ever-growing wait; and so is a batch that would push its client's own
   pending proofs above ``settings.pending_quota`` (:class:`QuotaExceeded`), so that one client
   cannot fill the queue for all;
5. the new checks run as tasks owned by the service, not by the request, bounded per checker by
   a semaphore: a client that disconnects does not cancel work that others joined, and the
   result still reaches the cache;
6. new cacheable outcomes are written back with one ``set_many``.

A fault in one item's check (an exception, a crashed process) makes that item ``error`` and
leaves the rest of the batch alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import time
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from verifier_service.cache import VerdictCache, cache_key, usable
from verifier_service.checkers.base import Checker, InvalidInput, Job, Policy
from verifier_service.metrics import ServiceMetrics
from verifier_service.settings import VerifierSettings
from verifier_service.verdicts import Outcome, Verdict

if TYPE_CHECKING:
    from collections.abc import Awaitable

__all__ = [
    "UNENCODABLE",
    "UNENCODABLE_MESSAGE",
    "BatchTooLarge",
    "InvalidItem",
    "ProofItem",
    "ProofLike",
    "ProofResult",
    "QueueFull",
    "QuotaExceeded",
    "VerificationService",
]

logger = logging.getLogger("verifier_service.service")

#: Concurrent checks per checker when nothing else says otherwise (math-verify is CPU-bound).
DEFAULT_CONCURRENCY = 4
#: Characters of a client's identity kept for its quota (a key's index, or an address).
MAX_CLIENT_CHARS = 64

#: How to enable a built-in checker that this deployment did not load.
ENABLE_HINTS = {
    "lean4": "set SIEVE_LEAN_REPL to the command that starts a Lean REPL (and SIEVE_LEAN_CWD to "
    "its Mathlib project) to enable it",
    "math": "add it to SIEVE_CHECKERS to enable it",
}


#: Text no encoder can write (lone UTF-16 surrogates): it must never reach a checker's process.
#: The API's body parser and error encoder use the same pattern and message.
UNENCODABLE = re.compile("[\ud800-\udfff]")
UNENCODABLE_MESSAGE = "text that cannot be encoded as UTF-8 (a lone surrogate such as \\ud800)"


def _unencodable_field(item: ProofLike, fields: Sequence[str]) -> str | None:
    """The first of ``fields`` whose text UTF-8 cannot encode, or None."""
    for field in fields:
        value = getattr(item, field)
        if isinstance(value, str) and UNENCODABLE.search(value):
            return field
    return None


def unknown_checker_message(name: str, enabled: Sequence[str]) -> str:
    """Why ``name`` cannot check anything here: not a checker at all, or one not enabled."""
    listed = ", ".join(sorted(enabled)) or "none"
    hint = ENABLE_HINTS.get(name)
    if hint is not None:
        return f"checker {name!r} is not enabled on this deployment: {hint}; enabled: {listed}"
    return f"unknown checker {name!r}; enabled: {listed}"


class ProofLike(Protocol):
    """Anything with a proof's fields: a :class:`ProofItem`, or the API's validated model."""

    @property
    def id(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def checker(self) -> str: ...
    @property
    def header(self) -> str | None: ...
    @property
    def statement(self) -> str | None: ...
    @property
    def answer(self) -> str | None: ...
    @property
    def timeout_s(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class ProofItem:
    """One proof as a client sent it, before its checker normalised it."""

    id: str
    code: str
    checker: str = "lean4"
    header: str | None = None
    statement: str | None = None
    answer: str | None = None
    #: ``None``: the deployment's default budget.
    timeout_s: float | None = None


@dataclass(slots=True)
class ProofResult:
    """The answer for one :class:`ProofItem`."""

    id: str
    outcome: Outcome
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The ``/verify`` wire form (``budget_s`` is an internal detail of the cache)."""
        o = self.outcome
        return {
            "id": self.id,
            "verdict": o.verdict.value,
            "reasons": o.reasons,
            "messages": o.messages,
            "axioms": o.axioms,
            "cached": self.cached,
            "time_s": o.time_s,
        }


class InvalidItem(ValueError):
    """Item ``index`` cannot be checked at all; ``field`` names the culprit (HTTP 422)."""

    def __init__(self, index: int, field: str, message: str) -> None:
        super().__init__(f"proofs[{index}].{field}: {message}")
        self.index = index
        self.field = field
        self.message = message


class BatchTooLarge(ValueError):
    """The batch could never be admitted, whatever the load (HTTP 413)."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


class QueueFull(RuntimeError):
    """Admitting the batch would exceed ``max_pending`` (HTTP 429, retry later)."""

    def __init__(self, pending: int, requested: int, limit: int, retry_after_s: int) -> None:
        super().__init__(
            f"{pending} proofs pending, {requested} more requested, limit {limit}; "
            f"retry in {retry_after_s} s"
        )
        self.pending = pending
        self.requested = requested
        self.limit = limit
        self.retry_after_s = retry_after_s


class QuotaExceeded(QueueFull):
    """Admitting the batch would exceed the client's own ``pending_quota`` (HTTP 429)."""

    def __init__(self, pending: int, requested: int, limit: int, retry_after_s: int) -> None:
        super().__init__(pending, requested, limit, retry_after_s)
        self.args = (
            f"this client has {pending} proofs pending, {requested} more requested, quota "
            f"max_pending_per_key={limit}; retry in {retry_after_s} s",
        )


@dataclass(slots=True)
class _Flight:
    """One check in progress; identical jobs with no larger budget join it.

    ``client`` launched it and is charged for it against its quota until it ends; clients that
    join an identical check add no work and are not charged.
    """

    key: str
    budget_s: float
    future: asyncio.Future[Outcome]
    client: str | None = None


def _exceeds(code: str, header: str | None, limit: int) -> bool:
    """Whether ``header + code`` is over ``limit`` UTF-8 bytes, encoding only when in doubt."""
    chars = len(code) + (len(header) if header else 0)
    if chars > limit:  # at least one byte per character
        return True
    if chars * 4 <= limit:  # at most four bytes per character
        return False
    size = len(code.encode("utf-8", "surrogatepass"))
    return size + len((header or "").encode("utf-8", "surrogatepass")) > limit


def default_concurrency(name: str, settings: VerifierSettings) -> int:
    """Lean and math checks all go through to their pools; others run a few at a time.

    The Lean pool queues waiting proofs per header and hands out workers itself, keeping the
    prewarmed headers' workers for them. A service-wide FIFO of ``lean_workers`` places in front
    of it would let proofs of new headers, waiting for an import, hold every place while a proof
    of a warm header waits behind them (head-of-line blocking under header churn). The pending
    limit (``SIEVE_MAX_PENDING``) still bounds the total. The math checker queues its answers
    itself too, and sends several to a worker per round trip: it must see a request's answers
    at once, not four at a time.
    """
    if name in ("lean4", "math"):
        return max(1, settings.max_pending)
    return DEFAULT_CONCURRENCY


class VerificationService:
    """Owns the checkers and the verdict cache; answers batches of proofs.

    ``cache`` may be ``None`` (no caching, e.g. the ``check`` CLI command). ``concurrency``
    overrides the per-checker limit on simultaneous checks. ``prepared_cache_chars`` bounds the
    memo of normalised jobs by the characters it holds (0 disables it).
    """

    def __init__(
        self,
        checkers: Mapping[str, Checker],
        cache: VerdictCache | None = None,
        *,
        settings: VerifierSettings | None = None,
        metrics: ServiceMetrics | None = None,
        concurrency: Mapping[str, int] | None = None,
        prepared_cache_chars: int = 32 * 2**20,
    ) -> None:
        self.settings = settings if settings is not None else VerifierSettings()
        self.checkers: dict[str, Checker] = dict(checkers)
        self.cache = cache
        self.metrics = metrics if metrics is not None else ServiceMetrics()
        limits = dict(concurrency or {})
        self._limits = {
            name: asyncio.Semaphore(limits.get(name) or default_concurrency(name, self.settings))
            for name in self.checkers
        }
        self._inflight: dict[str, list[_Flight]] = {}
        # raw fields -> (job, cache key, characters held); bounded by characters, not entries,
        # because one proof may be 200 kB.
        self._prepared: OrderedDict[tuple[Any, ...], tuple[Job, str, int]] = OrderedDict()
        self._prepared_budget = prepared_cache_chars
        self._prepared_chars = 0
        self._pending = 0
        # client -> its flights still pending; a client leaves the map when its last one ends, so
        # it holds at most ``max_pending`` entries of at most MAX_CLIENT_CHARS characters.
        self._client_pending: dict[str, int] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._starting: dict[str, asyncio.Task[None]] = {}
        self._start_failures: dict[str, str] = {}
        self._closed = False
        self.metrics.watch(
            pending=lambda: float(self._pending),
            cache_up=lambda: float(self.cache is not None and bool(self.cache.healthy)),
            checkers=lambda: self.checkers,
        )

    # --- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every checker in the background and return at once.

        A Lean pool importing Mathlib takes minutes; the HTTP server must answer ``/health``
        meanwhile, and ``/ready`` reports what is still starting.
        """
        for name, checker in self.checkers.items():
            if name not in self._starting:
                self._starting[name] = asyncio.create_task(
                    self._start_checker(name, checker), name=f"start-{name}"
                )

    async def wait_started(self) -> None:
        """Wait until every checker's ``start`` returned (or failed)."""
        if self._starting:
            await asyncio.gather(*self._starting.values(), return_exceptions=True)

    async def _start_checker(self, name: str, checker: Checker) -> None:
        try:
            await checker.start()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("checker %s failed to start", name)
            self._start_failures[name] = f"start failed: {type(exc).__name__}: {exc}"

    async def aclose(self) -> None:
        """Stop background work, answer anything still in flight with ``error``, close all."""
        if self._closed:
            return
        self._closed = True
        for task in [*self._starting.values(), *self._tasks]:
            task.cancel()
        await asyncio.gather(*self._starting.values(), *self._tasks, return_exceptions=True)
        for name, checker in self.checkers.items():
            try:
                await checker.aclose()
            except Exception:
                logger.exception("checker %s failed to close", name)
        if self.cache is not None:
            try:
                await self.cache.aclose()
            except Exception:
                logger.exception("verdict cache failed to close")

    # --- introspection ----------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Proofs waiting for or running in a checker, across all requests."""
        return self._pending

    def pending_of(self, client: str) -> int:
        """Proofs ``client`` launched that are still pending (what its quota counts)."""
        return self._client_pending.get(client[:MAX_CLIENT_CHARS], 0)

    @property
    def pending_clients(self) -> int:
        """Clients with at least one proof pending (the size of the per-client state)."""
        return len(self._client_pending)

    @property
    def checker_versions(self) -> dict[str, str]:
        return {name: checker.version for name, checker in self.checkers.items()}

    def readiness(self) -> dict[str, Any]:
        """What is missing before the service can serve, per checker and for the cache.

        Empty dicts everywhere mean ready; see :meth:`ready`.
        """
        checkers: dict[str, dict[str, str]] = {}
        for name, checker in self.checkers.items():
            missing: dict[str, str] = {}
            task = self._starting.get(name)
            if name in self._start_failures:
                missing["start"] = self._start_failures[name]
            elif task is None:
                missing["start"] = "not started"
            elif not task.done():
                missing["start"] = "starting"
            try:
                missing.update(checker.readiness())
            except Exception as exc:
                missing["readiness"] = f"{type(exc).__name__}: {exc}"
            checkers[name] = missing
        if self.cache is None:
            cache: dict[str, str] = {}
        else:
            try:
                cache = dict(self.cache.readiness())
            except Exception as exc:
                cache = {"readiness": f"{type(exc).__name__}: {exc}"}
        return {"checkers": checkers, "cache": cache}

    @staticmethod
    def ready(readiness: Mapping[str, Any]) -> bool:
        return not readiness["cache"] and not any(readiness["checkers"].values())

    # --- verification -----------------------------------------------------------------------

    def _prepare(
        self, items: Sequence[ProofLike], policy: Policy
    ) -> list[tuple[Job, str] | Outcome]:
        """Each item as ``(job, cache key)``; an item whose ``prepare`` crashed is an ``error``.

        Raises :class:`InvalidItem` for the first item the client must fix. Prepared jobs are
        memoised by their raw fields: normalising a Lean header and statement costs far more than
        answering from the cache, and a resubmitted proof is exactly the case the cache serves.
        """
        settings = self.settings
        default_budget = settings.lean_default_timeout_s
        max_budget = settings.lean_max_timeout_s
        namespace = settings.cache_namespace
        versions = self.checker_versions
        # Hashing a tuple of plain values is several times cheaper than the dataclass's __hash__.
        policy_key = (policy.allow_sorry, policy.axioms)
        memo = self._prepared
        prepared: list[tuple[Job, str] | Outcome] = []
        for index, item in enumerate(items):
            field = _unencodable_field(item, ("id", "checker"))
            if field is not None:
                raise InvalidItem(index, field, UNENCODABLE_MESSAGE)
            checker = self.checkers.get(item.checker)
            if checker is None:
                raise InvalidItem(
                    index, "checker", unknown_checker_message(item.checker, list(self.checkers))
                )
            budget = default_budget if item.timeout_s is None else item.timeout_s
            if not 0 < budget <= max_budget:
                raise InvalidItem(
                    index, "timeout_s", f"must be > 0 and at most {max_budget:g} seconds"
                )
            if _exceeds(item.code, item.header, settings.max_code_bytes):
                raise BatchTooLarge(
                    ("body", "proofs", index, "code"),
                    f"header + code exceed max_code_bytes={settings.max_code_bytes}",
                )
            version = versions[item.checker]
            raw = (
                item.checker,
                version,
                item.code,
                item.header,
                item.statement,
                item.answer,
                budget,
                policy_key,
            )
            hit = memo.get(raw)
            if hit is not None:
                memo.move_to_end(raw)
                prepared.append(hit[:2])
                continue
            # The HTTP layer refuses such text already; library callers get the same answer.
            field = _unencodable_field(item, ("code", "header", "statement", "answer"))
            if field is not None:
                raise InvalidItem(index, field, UNENCODABLE_MESSAGE)
            try:
                job = checker.prepare(
                    code=item.code,
                    header=item.header,
                    statement=item.statement,
                    answer=item.answer,
                    timeout_s=budget,
                    policy=policy,
                )
            except InvalidInput as exc:
                raise InvalidItem(index, exc.field, exc.message) from exc
            except Exception as exc:
                logger.exception("checker %s failed to prepare item %d", item.checker, index)
                prepared.append(Outcome.error(f"prepare_exception:{type(exc).__name__}"))
                continue
            key = cache_key(job, version, namespace)
            prepared.append((job, key))
            self._memoise(raw, job, key)
        return prepared

    def _memoise(self, raw: tuple[Any, ...], job: Job, key: str) -> None:
        size = sum(len(part) for part in raw[2:6] if part) + len(job.code) + len(job.header)
        if size > self._prepared_budget:
            return
        self._prepared[raw] = (job, key, size)
        self._prepared_chars += size
        while self._prepared_chars > self._prepared_budget:
            _, (_, _, evicted) = self._prepared.popitem(last=False)
            self._prepared_chars -= evicted

    async def verify(
        self,
        items: Sequence[ProofLike],
        policy: Policy | None = None,
        *,
        client: str | None = None,
    ) -> list[ProofResult]:
        """Check a batch; one result per item, in order, ids preserved (duplicates allowed).

        ``client`` identifies who asks (the API passes the API key's index or the client's
        address); its pending proofs are bounded by ``settings.pending_quota``. ``None``: a
        caller of the library itself, bound only by ``max_pending``.
        """
        if client is not None:
            client = client[:MAX_CLIENT_CHARS]
        if self._closed:
            raise RuntimeError("the verification service is closed")
        policy = policy if policy is not None else Policy()
        if len(items) > self.settings.max_batch_size:
            raise BatchTooLarge(
                ("body", "proofs"),
                f"{len(items)} proofs, more than max_batch_size={self.settings.max_batch_size}",
            )
        prepared = self._prepare(items, policy)
        outcomes: list[Outcome | None] = [None] * len(items)
        cached = [False] * len(items)
        jobs: dict[int, Job] = {}
        keys: dict[int, str] = {}
        for i, entry in enumerate(prepared):
            if isinstance(entry, Outcome):
                outcomes[i] = entry
            else:
                jobs[i], keys[i] = entry
        hits: Counter[str] = Counter()
        misses: dict[str, list[int]] = {}
        stored = await self._cache_get([keys[i] for i in jobs])
        for i, outcome in zip(jobs, stored, strict=True):
            if outcome is not None and usable(outcome, jobs[i].timeout_s):
                outcomes[i] = outcome
                cached[i] = True
                hits[jobs[i].checker] += 1
            else:
                misses.setdefault(keys[i], []).append(i)
        self._count_cache(hits, misses, jobs)

        if misses:
            await self._run_misses(misses, jobs, outcomes, client)

        for i, job in jobs.items():  # positions in the client's own text (a cached outcome too)
            if outcomes[i] is not None:
                outcomes[i] = self.checkers[job.checker].present(job, outcomes[i])
        results = [
            ProofResult(item.id, outcome if outcome is not None else Outcome.error("lost"), hit)
            for item, outcome, hit in zip(items, outcomes, cached, strict=True)
        ]
        self._count_verdicts(items, results)
        return results

    # --- internals --------------------------------------------------------------------------

    async def _cache_get(self, keys: list[str]) -> list[Outcome | None]:
        if self.cache is None or not keys:
            return [None] * len(keys)
        try:
            return await self.cache.get_many(keys)
        except Exception:
            logger.warning("verdict cache lookup failed; checking uncached", exc_info=True)
            return [None] * len(keys)

    async def _cache_set(self, items: list[tuple[str, Outcome]]) -> None:
        if self.cache is None or not items:
            return
        try:
            await self.cache.set_many(items)
        except Exception:
            logger.warning("verdict cache write failed", exc_info=True)

    def _count_cache(
        self, hits: Counter[str], misses: Mapping[str, list[int]], jobs: Mapping[int, Job]
    ) -> None:
        if self.cache is None:
            return
        for checker, n in hits.items():
            self.metrics.cache_hits.labels(checker).inc(n)
        missed: Counter[str] = Counter()
        for indices in misses.values():
            for i in indices:
                missed[jobs[i].checker] += 1
        for checker, n in missed.items():
            self.metrics.cache_misses.labels(checker).inc(n)

    def _count_verdicts(self, items: Sequence[ProofLike], results: list[ProofResult]) -> None:
        counts = Counter(
            (item.checker, r.outcome.verdict) for item, r in zip(items, results, strict=True)
        )
        for (checker, verdict), n in counts.items():
            self.metrics.proofs.labels(checker, verdict.value).inc(n)

    def _find_flight(self, key: str, budget_s: float) -> _Flight | None:
        for flight in self._inflight.get(key, ()):
            if flight.budget_s >= budget_s:
                return flight
        return None

    async def _run_misses(
        self,
        misses: dict[str, list[int]],
        jobs: Mapping[int, Job],
        outcomes: list[Outcome | None],
        client: str | None,
    ) -> None:
        # Everything from here to the launch is synchronous: no other request can slip in
        # between the admission check and the reservation of queue slots.
        plan: list[tuple[str, list[int], Job, _Flight | None]] = []
        new = 0
        for key, indices in misses.items():
            # Identical jobs in one batch run once, with the largest budget any of them asked.
            job = max((jobs[i] for i in indices), key=lambda j: j.timeout_s)
            flight = self._find_flight(key, job.timeout_s)
            new += flight is None
            plan.append((key, indices, job, flight))

        self._admit(new, client)

        owned: list[_Flight] = []
        waits: list[tuple[list[int], _Flight]] = []
        joins: Counter[str] = Counter()
        for key, indices, job, flight in plan:
            if flight is None:
                flight = self._launch(key, job, client)
                owned.append(flight)
                joins[job.checker] += len(indices) - 1
            else:
                joins[job.checker] += len(indices)
            waits.append((indices, flight))
        for checker, n in joins.items():
            if n:
                self.metrics.dedup_joins.labels(checker).inc(n)

        try:
            done = await asyncio.gather(*(asyncio.shield(f.future) for _, f in waits))
        except asyncio.CancelledError:
            # The client went away: the checks go on (others may have joined them) and their
            # outcomes still reach the cache.
            if owned:
                self._spawn(self._store_when_done(owned))
            raise
        for (indices, _), outcome in zip(waits, done, strict=True):
            for i in indices:
                outcomes[i] = outcome
        if owned:
            # Shielded: a client leaving now must not cancel the write-back half-way.
            await asyncio.shield(self._spawn(self._store_when_done(owned)))

    def _admit(self, new: int, client: str | None) -> None:
        """Refuse ``new`` checks for ``client`` that could never run (413) or not now (429)."""
        if not new:
            return
        settings = self.settings
        limit = settings.max_pending
        if new > limit:
            raise BatchTooLarge(
                ("body", "proofs"), f"{new} distinct new proofs, more than max_pending={limit}"
            )
        quota = settings.pending_quota if client is not None else 0
        if quota:
            if new > quota:
                raise BatchTooLarge(
                    ("body", "proofs"),
                    f"{new} distinct new proofs, more than max_pending_per_key={quota}",
                )
            held = self._client_pending.get(client, 0)  # type: ignore[arg-type]
            if held + new > quota:
                self.metrics.rejected.labels("client_quota").inc()
                raise QuotaExceeded(held, new, quota, settings.retry_after_s)
        if self._pending + new > limit:
            self.metrics.rejected.labels("queue_full").inc()
            raise QueueFull(self._pending, new, limit, settings.retry_after_s)

    def _launch(self, key: str, job: Job, client: str | None = None) -> _Flight:
        flight = _Flight(key, job.timeout_s, asyncio.get_running_loop().create_future(), client)
        self._inflight.setdefault(key, []).append(flight)
        self._pending += 1
        if client is not None:
            self._client_pending[client] = self._client_pending.get(client, 0) + 1
        self._spawn(self._check(flight, self.checkers[job.checker], job))
        return flight

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Future[Any]:
        """Run ``coro`` as a task the service owns (cancelled only by :meth:`aclose`)."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _check(self, flight: _Flight, checker: Checker, job: Job) -> None:
        """Run one check; always resolves ``flight.future``, whatever happens."""
        outcome: Outcome | None = None
        try:
            outcome = await self._timed_check(checker, job)
        finally:
            self._pending -= 1
            if flight.client is not None:
                left = self._client_pending.pop(flight.client, 1) - 1
                if left > 0:
                    self._client_pending[flight.client] = left
            if outcome is None:  # cancelled: the service is shutting down
                outcome = Outcome.error("service_shutting_down")
            if not flight.future.done():
                flight.future.set_result(outcome)

    async def _timed_check(self, checker: Checker, job: Job) -> Outcome:
        limit = self._limits[job.checker]
        try:
            await asyncio.wait_for(limit.acquire(), self.settings.lean_acquire_timeout_s)
        except asyncio.TimeoutError:
            return Outcome.error("queue_timeout")
        start = time.perf_counter()
        try:
            outcome = await checker.check(job)
        except Exception as exc:
            logger.exception("checker %s raised on a proof", job.checker)
            outcome = Outcome.error(f"checker_exception:{type(exc).__name__}")
        finally:
            limit.release()
        elapsed = time.perf_counter() - start
        self.metrics.check_latency.labels(job.checker).observe(elapsed)
        if not isinstance(outcome, Outcome):
            logger.error("checker %s returned %r instead of an Outcome", job.checker, outcome)
            return Outcome.error("checker_returned_no_outcome", time_s=elapsed)
        budget = outcome.budget_s
        if outcome.verdict is Verdict.TIMEOUT and budget is None:
            budget = job.timeout_s
        return dataclasses.replace(outcome, time_s=round(elapsed, 6), budget_s=budget)

    async def _store_when_done(self, owned: list[_Flight]) -> None:
        """Write the owned outcomes back in one round trip, then retire their flights.

        The flights stay joinable until the cache has them, so an identical request arriving in
        between joins the finished flight instead of checking again.
        """
        try:
            if owned:
                outcomes = await asyncio.gather(*(asyncio.shield(f.future) for f in owned))
                await self._cache_set(
                    [
                        (f.key, o)
                        for f, o in zip(owned, outcomes, strict=True)
                        if o.verdict.cacheable
                    ]
                )
        finally:
            for flight in owned:
                flights = self._inflight.get(flight.key)
                if flights is None:
                    continue
                with contextlib.suppress(ValueError):
                    flights.remove(flight)
                if not flights:
                    del self._inflight[flight.key]


def policy_from(allow_sorry: bool, axioms: Sequence[str] | None) -> Policy:
    """A :class:`Policy` from wire fields; ``None`` axioms means the default trusted set."""
    if axioms is None:
        return Policy(allow_sorry=allow_sorry)
    return Policy(allow_sorry=allow_sorry, axioms=tuple(axioms))
