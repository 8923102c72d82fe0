"""The verification pipeline: from a batch of proofs to one result per proof, without HTTP.

What happens to a batch, in order:

1. every item is checked (:mod:`.validation`) and normalised by its checker's ``prepare``; bad
   input raises :class:`InvalidItem` before anything runs, so a 422 never leaves half a batch
   checked. Jobs already prepared once come from a memo (:mod:`.memo`);
2. the whole batch is looked up in the verdict cache with one ``get_many``;
3. what is left is de-duplicated against itself and against checks already in flight for other
   requests (:mod:`.flights`: a joiner awaits the owner's future instead of checking again);
4. admission control (:mod:`.admission`): if the new checks would push the number of pending
   proofs above ``settings.max_pending`` the batch is refused (:class:`QueueFull`, HTTP 429)
   rather than queued behind an ever-growing wait; and so is a batch that would push its
   client's own pending proofs above ``settings.pending_quota`` (:class:`QuotaExceeded`), so that
   one client cannot fill the queue for all;
5. the new checks run as tasks owned by the service, not by the request, bounded per checker by
   a semaphore: a client that disconnects does not cancel work that others joined, and the
   result still reaches the cache;
6. new cacheable outcomes are written back with one ``set_many``.

A fault in one item's check (an exception, a crashed process) makes that item ``error`` and
leaves the rest of the batch alone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from verifier_service.cache import VerdictCache, cache_key, usable
from verifier_service.checkers.base import Checker, InvalidInput, Job, Policy
from verifier_service.metrics import ServiceMetrics
from verifier_service.service.admission import Admission, client_identity
from verifier_service.service.errors import BatchTooLarge, InvalidItem
from verifier_service.service.flights import Flight, Flights
from verifier_service.service.memo import PreparedJobs
from verifier_service.service.proofs import ProofLike, ProofResult
from verifier_service.service.validation import validate_item, validate_text
from verifier_service.settings import VerifierSettings
from verifier_service.verdicts import Outcome, Verdict

if TYPE_CHECKING:
    from collections.abc import Awaitable

__all__ = ["DEFAULT_CONCURRENCY", "VerificationService", "default_concurrency"]

logger = logging.getLogger("verifier_service.service")

#: Concurrent checks per checker when nothing else says otherwise (math-verify is CPU-bound).
DEFAULT_CONCURRENCY = 4


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
        self._flights = Flights()
        self._prepared = PreparedJobs(prepared_cache_chars)
        self._admission = Admission(self.settings, self.metrics)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._starting: dict[str, asyncio.Task[None]] = {}
        self._start_failures: dict[str, str] = {}
        self._closed = False
        self.metrics.watch(
            pending=lambda: float(self._admission.pending),
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
        return self._admission.pending

    def pending_of(self, client: str) -> int:
        """Proofs ``client`` launched that are still pending (what its quota counts)."""
        return self._admission.pending_of(client)

    @property
    def pending_clients(self) -> int:
        """Clients with at least one proof pending (the size of the per-client state)."""
        return len(self._admission.clients)

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

        Raises :class:`InvalidItem` (or :class:`BatchTooLarge`) for the first item the client must
        fix. A job prepared before comes from the memo, without asking its checker again.
        """
        settings = self.settings
        namespace = settings.cache_namespace
        versions = self.checker_versions
        memo = self._prepared
        prepared: list[tuple[Job, str] | Outcome] = []
        for index, item in enumerate(items):
            budget = validate_item(index, item, self.checkers, settings)
            checker = self.checkers[item.checker]
            version = versions[item.checker]
            raw = memo.key(item, version, budget, policy)
            hit = memo.get(raw)
            if hit is not None:
                prepared.append(hit)
                continue
            # The HTTP layer refuses such text already; library callers get the same answer.
            validate_text(index, item)
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
            memo.put(raw, job, key)
        return prepared

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
            client = client_identity(client)
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
            outcome = outcomes[i]
            if outcome is not None:
                outcomes[i] = self.checkers[job.checker].present(job, outcome)
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

    async def _run_misses(
        self,
        misses: dict[str, list[int]],
        jobs: Mapping[int, Job],
        outcomes: list[Outcome | None],
        client: str | None,
    ) -> None:
        # Everything from here to the launch is synchronous: no other request can slip in
        # between the admission check and the reservation of queue slots.
        plan: list[tuple[str, list[int], Job, Flight | None]] = []
        new = 0
        for key, indices in misses.items():
            # Identical jobs in one batch run once, with the largest budget any of them asked.
            job = max((jobs[i] for i in indices), key=lambda j: j.timeout_s)
            flight = self._flights.find(key, job.timeout_s)
            new += flight is None
            plan.append((key, indices, job, flight))

        self._admission.admit(new, client)

        owned: list[Flight] = []
        waits: list[tuple[list[int], Flight]] = []
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

    def _launch(self, key: str, job: Job, client: str | None = None) -> Flight:
        """Open a flight for ``job``, charge ``client`` for it and start the check."""
        flight = self._flights.open(key, job.timeout_s, client)
        self._admission.charge(client)
        self._spawn(self._check(flight, self.checkers[job.checker], job))
        return flight

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Future[Any]:
        """Run ``coro`` as a task the service owns (cancelled only by :meth:`aclose`)."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _check(self, flight: Flight, checker: Checker, job: Job) -> None:
        """Run one check; always resolves ``flight.future``, whatever happens."""
        outcome: Outcome | None = None
        try:
            outcome = await self._timed_check(checker, job)
        finally:
            self._admission.release(flight.client)
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

    async def _store_when_done(self, owned: list[Flight]) -> None:
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
            self._flights.retire(owned)
