"""A pool of warm Lean REPL processes, keyed by the imports they ran.

Importing Mathlib costs seconds to a minute and gigabytes per process, and imports cannot be undone,
so a worker belongs to one *import set* (a header's leading ``import`` lines) for its whole life.
The rest of a header (``open``, ``set_option``, ...) is an environment derived inside the worker
from its import environment by one REPL command, built once per distinct rest and reused by its
env number; each worker keeps at most ``derived_envs`` of them, least recently used evicted. A
proof always runs on the env of exactly its own header (:attr:`LeanWorker.header_env` during the
lease). A rest that does not elaborate is that header's :class:`HeaderFailed`, remembered like a
failing import, and the worker goes on serving.

:class:`ReplPool` hands out workers warm for the requested header's imports, converts idle
workers of other import sets (least recently used first, sets without demand first) when it is
full, queues requests first-come first-served when every worker is busy, and keeps itself at
size: a worker killed for a timeout, found crashed, or recycled (too many proofs, too much memory)
is replaced in the background. Imports run under their own timeout and are never charged to a
proof: a lease is granted only once the worker's imports are warm.

**Work-conserving.** An idle worker does not stay idle while proofs wait: an import set with no
demand (no proof waiting and none asked for within :attr:`ReplPool.demand_window_s`) gives its
workers, the last one included, to the import sets that wait. An import set with demand keeps its
last worker, so a client sending proofs one at a time never pays an import between them.

**Reply integrity.** A worker whose replies cannot be the REPL's (see :mod:`.repl`) is killed and
replaced, never handed out again, and counted in ``protocol_violations``. A lease that sent
commands ends with :meth:`LeanWorker.sync`, which proves every reply the body read was the
REPL's, and then checks that nothing followed. If either fails, or the body raised
:class:`ProtocolViolation` (the trusted programs' nonce checks raise it too), the lease raises it
and the worker dies, so the proof's verdict is ``error`` whatever the body concluded. A new
worker syncs once after its header, so a REPL that does not answer the sync as expected fails
at start-up, loudly, instead of failing every proof.

**Header churn.** Any client can send imports nobody asked for before, and each set costs an
import (with Mathlib: a minute and gigabytes). So the *protected* import sets (those of the headers
given to :meth:`ReplPool.start`, the operator's ``SIEVE_LEAN_PREWARM_HEADERS``, and up to
``hot_import_sets`` learned from traffic: the sets with the most sustained demand) are guarded:
while proofs of a protected set wait, every other import set together holds at most
``other_headers_share`` of the pool (at least one worker, and never so many that a protected set
is left without one). New import sets then evict each other inside that share, and a protected
set with demand never waits for someone else's import. A protected set takes a worker back from
the share only when it has none left, or when no other proof is waiting. What the pool remembers
per header (headers that failed to elaborate, :mod:`.header_failures`) is bounded by count and
bytes, and expires; so is what it remembers per import set (demand, imports started).

Usage::

    pool = ReplPool(["lake", "env", "repl"], workers=4, cwd="/opt/mathlib")
    await pool.start(prewarm_headers=["import Mathlib"])
    async with pool.lease("import Mathlib\nopen Real", acquire_timeout_s=60) as worker:
        reply = await worker.send({"cmd": proof, "env": worker.header_env}, timeout_s=60)
    await pool.aclose()
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import resource
import shlex
import time
import weakref
from collections import Counter, OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from verifier_service.lean.header import split_imports
from verifier_service.lean.header_failures import HeaderFailures
from verifier_service.lean.repl import (
    HeaderFailed,
    LeanWorker,
    PoolUnavailable,
    ProtocolViolation,
    ReplCrashed,
    ReplError,
    ReplTimeout,
)
from verifier_service.lean.replies import shift_lines
from verifier_service.lean.sandbox import Launch, Sandbox, UidSandbox, Unconfined, detect
from verifier_service.settings import VerifierSettings

__all__ = [
    "HeaderFailed",
    "HeaderFailures",
    "ImportSetStats",
    "LeanWorker",
    "PoolStats",
    "PoolUnavailable",
    "ProtocolViolation",
    "ReplCrashed",
    "ReplError",
    "ReplPool",
    "ReplTimeout",
]

logger = logging.getLogger(__name__)

#: The pool's defaults are those of ``SIEVE_LEAN_*``: a pool built in code runs as the service's.
_SETTINGS = VerifierSettings.model_fields


@dataclass
class PoolStats:
    """A snapshot of the pool, for ``/metrics`` and logs."""

    size: int
    busy: int
    idle: int
    starting: int
    restarts: int
    timeouts: int
    recycled: int
    crashes: int
    #: Normalised import set (a header's imports) -> workers warm for it (idle or busy).
    headers: dict[str, int] = field(default_factory=dict)
    #: Leases waiting for a worker.
    waiting: int = 0
    #: Idle workers killed to make room for another header.
    evictions: int = 0
    #: Workers (warm or warming) held by headers outside the prewarm set, and the most they may.
    other_header_workers: int = 0
    other_header_limit: int = 0
    #: Headers remembered as failing to elaborate, and the bytes that memory holds.
    failed_headers: int = 0
    failed_header_bytes: int = 0
    #: Workers killed because a reply could not be the REPL's (forged, unframed, out of order).
    protocol_violations: int = 0
    #: Environments derived for the rest of a header (after its imports), and those evicted.
    derived_envs: int = 0
    derived_evictions: int = 0
    #: Import sets learned from traffic that are protected like the prewarmed ones.
    hot_import_sets: int = 0


@dataclass
class ImportSetStats:
    """One import set's gauges for ``/metrics`` (labelled by :attr:`label`)."""

    #: A short digest of the normalised import set: a bounded, safe label.
    label: str
    #: The normalised import set (its ``import`` lines joined by ``,``), cut to 200 characters.
    imports: str
    workers: int
    waiting: int
    imports_started: int
    protected: bool


@dataclass
class _Waiter:
    header: str
    #: The header's import set: the queue it waits in.
    imports: str
    future: asyncio.Future[LeanWorker]


def import_set_label(imports: str) -> str:
    """The ``/metrics`` label of an import set: 12 hex digits of its digest."""
    return hashlib.blake2b(imports.encode("utf-8", "surrogatepass"), digest_size=6).hexdigest()


class _Demand:
    """Proofs asked for per import set, decayed over ``window_s``: who needs workers now, and
    which sets have sustained demand. Bounded: the sets asked for longest ago are forgotten."""

    def __init__(self, window_s: float, max_entries: int = 256) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        # imports -> (decayed count, when last asked for); least recently asked for first
        self._entries: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def note(self, imports: str) -> None:
        now = time.monotonic()
        score, last = self._entries.pop(imports, (0.0, now))
        self._entries[imports] = (score * math.exp((last - now) / self.window_s) + 1.0, now)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def recent(self, imports: str) -> bool:
        """Asked for within the window."""
        entry = self._entries.get(imports)
        return entry is not None and time.monotonic() - entry[1] < self.window_s

    def score(self, imports: str) -> float:
        entry = self._entries.get(imports)
        if entry is None:
            return 0.0
        return entry[0] * math.exp((entry[1] - time.monotonic()) / self.window_s)

    def hottest(self, count: int, minimum: float) -> list[str]:
        """Up to ``count`` import sets whose decayed demand is at least ``minimum``, hottest
        first."""
        if count <= 0:
            return []
        scored = [(self.score(imports), imports) for imports in self._entries]
        ranked = sorted(scored, reverse=True)[:count]
        return [imports for score, imports in ranked if score >= minimum]


class ReplPool:
    """Warm REPL processes for any number of headers, at most ``workers`` at a time."""

    #: Least seconds between two memory checks of one worker: measuring a process tree reads
    #: ``/proc`` for every process on the machine (milliseconds), too slow for every lease.
    rss_check_interval_s: float = 1.0
    #: Seconds over which demand counts: an import set asked for within it keeps its last worker,
    #: and its demand decays over it.
    demand_window_s: float = 30.0
    #: Decayed proofs (over :attr:`demand_window_s`) that make an import set hot.
    hot_min_proofs: float = 8.0

    def __init__(
        self,
        command: Sequence[str],
        *,
        workers: int,
        cwd: str | None = None,
        header_timeout_s: float = _SETTINGS["lean_header_timeout_s"].default,
        max_proofs_per_worker: int = _SETTINGS["lean_max_proofs_per_worker"].default,
        max_rss_mb: int = _SETTINGS["lean_max_rss_mb"].default,
        address_space_mb: int = _SETTINGS["lean_address_space_mb"].default,
        threads: int = _SETTINGS["lean_threads"].default,
        sandbox: Sandbox | UidSandbox | None = None,
        env: Mapping[str, str] | None = None,
        other_headers_share: float = _SETTINGS["lean_other_headers_share"].default,
        header_failures: HeaderFailures | None = None,
        derived_envs: int = _SETTINGS["lean_derived_envs"].default,
        hot_import_sets: int = _SETTINGS["lean_hot_import_sets"].default,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers: must be at least 1, got {workers}")
        if not 0.0 <= other_headers_share <= 1.0:
            raise ValueError(
                f"other_headers_share: must be between 0 and 1, got {other_headers_share}"
            )
        if threads < 1:
            raise ValueError(f"threads: must be at least 1, got {threads}")
        if header_timeout_s <= 0:
            raise ValueError(f"header_timeout_s: must be positive, got {header_timeout_s}")
        if derived_envs < 1:
            raise ValueError(f"derived_envs: must be at least 1, got {derived_envs}")
        if hot_import_sets < 0:
            raise ValueError(f"hot_import_sets: must be at least 0, got {hot_import_sets}")
        self.command = tuple(command)
        self.workers = workers
        self.cwd = cwd
        self.header_timeout_s = header_timeout_s
        self.max_proofs_per_worker = max_proofs_per_worker
        self.max_rss_mb = max_rss_mb
        self.address_space_mb = address_space_mb
        self.threads = threads
        self.sandbox = sandbox
        self.env = dict(env or {})
        self.other_headers_share = other_headers_share
        self.derived_envs = derived_envs
        self.hot_import_sets = hot_import_sets

        self._idle: OrderedDict[LeanWorker, None] = OrderedDict()  # least recently used first
        self._busy: set[LeanWorker] = set()
        self._starting: dict[asyncio.Task[None], str] = {}
        # Waiters by import set, each queue in arrival order and holding only pending waiters;
        # the import sets in order of their oldest waiter. Dispatch then costs the number of
        # import sets that can act, not the number of waiting proofs.
        self._queues: OrderedDict[str, deque[_Waiter]] = OrderedDict()
        self._slots: set[int] = set()
        self._failed = header_failures if header_failures is not None else HeaderFailures()
        self._background: set[asyncio.Task[None]] = set()
        self._retries: set[asyncio.Task[None]] = set()
        self._failed_starts = 0  # in a row; spaces out retries of prewarm headers
        self._prewarm: tuple[str, ...] = ()  # import sets of the prewarm headers
        self._prewarm_headers: tuple[str, ...] = ()
        self._warmed: set[str] = set()  # prewarm import sets that have had a warm worker
        self._prewarm_derived: set[str] = set()  # prewarm headers whose rest has elaborated
        self._demand = _Demand(self.demand_window_s)
        self._hot: tuple[str, ...] = ()  # learned protected import sets
        self._hot_checked = -math.inf
        # import set -> imports started for it; bounded like the demand (for /metrics)
        self._imports_started: OrderedDict[str, int] = OrderedDict()
        self._last_start_problem: str | None = None
        self._started = False
        self._closed = False
        self._counts: Counter[str] = Counter()
        self._rss_checked: weakref.WeakKeyDictionary[LeanWorker, float] = (
            weakref.WeakKeyDictionary()
        )
        try:
            self._cpus = sorted(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            self._cpus = []

    @classmethod
    def from_settings(cls, settings: VerifierSettings) -> ReplPool:
        """The pool ``SIEVE_LEAN_*`` describes; with no ``lean_repl`` it is never ready."""
        command = shlex.split(settings.lean_repl) if settings.lean_repl else []
        sandbox = None
        if command:
            sandbox = detect(
                settings.lean_sandbox,
                command=command,
                cwd=settings.lean_cwd,
                readonly_paths=settings.lean_readonly_paths,
                tmp_size_mb=settings.lean_tmp_size_mb,
                uid=settings.lean_sandbox_uid,
                gid=settings.lean_sandbox_gid,
                max_file_mb=settings.lean_max_file_mb,
                max_processes=settings.lean_max_processes,
                pass_env=settings.lean_pass_env,
            )
        return cls(
            command,
            workers=settings.lean_workers,
            cwd=settings.lean_cwd,
            header_timeout_s=settings.lean_header_timeout_s,
            max_proofs_per_worker=settings.lean_max_proofs_per_worker,
            max_rss_mb=settings.lean_max_rss_mb,
            address_space_mb=settings.lean_address_space_mb,
            threads=settings.lean_threads,
            sandbox=sandbox,
            other_headers_share=settings.lean_other_headers_share,
            derived_envs=settings.lean_derived_envs,
            hot_import_sets=settings.lean_hot_import_sets,
        )

    @property
    def other_header_limit(self) -> int:
        """The most workers that import sets outside the protected ones may hold at once while
        proofs of a protected import set wait.

        ``other_headers_share`` of the pool, at least one, and at most what leaves one worker per
        protected import set. With none protected every worker is shared; a pool too small to
        keep one worker per protected set and still serve others (one worker, one set) shares
        one. A share of 0 serves only the prewarm headers' import sets.
        """
        if self.other_headers_share <= 0 and self._prewarm:
            return 0
        protected = self._protected()
        if not protected:
            return self.workers
        share = math.floor(self.other_headers_share * self.workers + 1e-9)
        return max(1, min(share, self.workers - len(protected)))

    def _protected(self) -> tuple[str, ...]:
        """The import sets guarded against churn: the prewarm headers', then the hot ones."""
        return self._prewarm + self._hot

    def _note_demand(self, imports: str) -> None:
        """Count a proof asked for; now and then, learn which import sets are hot."""
        self._demand.note(imports)
        now = time.monotonic()
        rising = imports not in self._protected() and (
            self._demand.score(imports) >= self.hot_min_proofs
        )
        if self.hot_import_sets and (rising or now - self._hot_checked >= 0.25):
            self._hot_checked = now
            hottest = self._demand.hottest(
                self.hot_import_sets + len(self._prewarm), self.hot_min_proofs
            )
            learned = [i for i in hottest if i not in self._prewarm]
            self._hot = tuple(learned[: self.hot_import_sets])

    # --- life cycle ---------------------------------------------------------------------------

    async def start(self, prewarm_headers: Sequence[str] = ()) -> None:
        """Begin warming every slot for the import sets of ``prewarm_headers`` (round robin);
        returns at once. The rest of each prewarm header is derived in every worker of its
        import set as it warms. Headers must be normalised (the checker does)."""
        if self._closed:
            raise PoolUnavailable("the Lean pool is closed")
        self._started = True
        self._prewarm_headers = tuple(dict.fromkeys(prewarm_headers))
        self._prewarm = tuple(dict.fromkeys(split_imports(h)[0] for h in self._prewarm_headers))
        if not self.command:
            logger.warning(
                "no Lean REPL configured (SIEVE_LEAN_REPL): Lean proofs cannot be checked"
            )
            return
        for index in range(self.workers - self._live()):
            if self._prewarm:
                self._spawn(self._prewarm[index % len(self._prewarm)])

    async def aclose(self) -> None:
        """Kill every process (busy ones too) and wait until all are gone."""
        self._closed = True
        for queue in self._queues.values():
            for waiter in queue:
                if not waiter.future.done():
                    waiter.future.set_exception(PoolUnavailable("the Lean pool is closed"))
        self._queues.clear()
        starting = [*self._starting, *self._retries]
        for task in starting:
            task.cancel()
        await asyncio.gather(*starting, return_exceptions=True)
        self._starting.clear()  # tasks cancelled before they ran never reached their cleanup
        workers = [*self._idle, *self._busy]
        self._idle.clear()
        await asyncio.gather(*(worker.close() for worker in workers), return_exceptions=True)
        await asyncio.gather(*self._background, return_exceptions=True)

    # --- leasing ------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lease(self, header: str, *, acquire_timeout_s: float) -> AsyncIterator[LeanWorker]:
        """A worker warm for ``header``'s imports, for one proof; its
        :attr:`~LeanWorker.header_env` is the environment of exactly ``header`` (the import env,
        or the env derived from it for the header's rest). ``header`` is normalised.

        Raises :class:`HeaderFailed` if the header does not elaborate (its imports or its rest)
        and :class:`PoolUnavailable` if no worker is free within ``acquire_timeout_s`` (import
        time included) or the pool is closed or unconfigured. The worker goes back to the pool on
        exit, or is replaced if it died meanwhile.

        Raises :class:`ProtocolViolation` on exit when a reply the body read cannot have been the
        REPL's (the closing :meth:`~LeanWorker.sync` fails) or output no command asked for reached
        the worker; the worker is killed then, and whenever the body raises
        :class:`ProtocolViolation` itself.
        """
        worker = await self._acquire(header, acquire_timeout_s)
        try:
            try:
                await self._enter(worker, header)
            except HeaderFailed as exc:
                await self._synced(worker)  # the failure was the REPL's before it counts
                self._failed.put(header, exc.messages)
                raise
            yield worker
            if worker.alive and worker.unsynced:
                await worker.sync()
            worker.check_quiet()
        except ProtocolViolation as exc:
            worker.kill_for_protocol(str(exc))
            raise
        finally:
            self._release(worker)

    async def _enter(self, worker: LeanWorker, header: str) -> None:
        """Point ``worker.header_env`` at ``header``'s environment, deriving it if needed.

        A rest that does not elaborate is the header's failure (raised as
        :class:`HeaderFailed`, for the caller to remember once the worker has synced), not the
        worker's: the failing command stored nothing the worker keeps."""
        rest = split_imports(header)[1]
        worker.header_env = None
        if not rest:
            worker.header_env = worker.import_env
            return
        known = rest in worker.derived
        env, errors = await worker.derive(rest, self.header_timeout_s)
        if env is None:
            lines = header.count("\n") - rest.count("\n")  # the import lines before the rest
            messages = HeaderFailures.trim([shift_lines(m, lines) for m in errors], 16 << 10)
            logger.info("header %.60r does not elaborate after its imports", header)
            raise HeaderFailed(header, messages)
        self._counts["derived_envs"] += not known
        while len(worker.derived) > self.derived_envs:
            worker.derived.popitem(last=False)
            self._counts["derived_evictions"] += 1
        worker.header_env = env

    async def _acquire(self, header: str, timeout_s: float) -> LeanWorker:
        if self._closed:
            raise PoolUnavailable("the Lean pool is closed")
        if not self.command:
            raise PoolUnavailable("no Lean REPL configured (set SIEVE_LEAN_REPL)")
        imports = split_imports(header)[0]
        for known in (header, imports) if imports != header else (header,):
            messages = self._failed.get(known)
            if messages is not None:
                raise HeaderFailed(header, messages)
        if imports not in self._prewarm and self._prewarm and self.other_headers_share <= 0:
            raise PoolUnavailable(
                "this deployment serves only the headers in SIEVE_LEAN_PREWARM_HEADERS"
            )
        self._note_demand(imports)
        waiter = _Waiter(header, imports, asyncio.get_running_loop().create_future())
        self._queues.setdefault(imports, deque()).append(waiter)
        self._dispatch()
        try:
            await asyncio.wait({waiter.future}, timeout=timeout_s)
        except asyncio.CancelledError:
            self._abandon(waiter)
            raise
        if not waiter.future.done():
            self._abandon(waiter)
            raise PoolUnavailable(f"no Lean worker came free within {timeout_s:g}s")
        return waiter.future.result()

    @staticmethod
    async def _synced(worker: LeanWorker) -> None:
        """Prove every reply of the lease so far was the REPL's (else ProtocolViolation)."""
        if worker.alive and worker.unsynced:
            await worker.sync()
        worker.check_quiet()

    def _abandon(self, waiter: _Waiter) -> None:
        """Withdraw a waiter; a worker it was handed meanwhile goes straight back."""
        future = waiter.future
        if future.done():
            if not future.cancelled() and future.exception() is None:
                self._release(future.result(), used=False)
            return
        future.cancel()
        queue = self._queues.get(waiter.imports)
        if queue is not None:
            with contextlib.suppress(ValueError):
                queue.remove(waiter)
            if not queue:
                del self._queues[waiter.imports]

    def _release(self, worker: LeanWorker, *, used: bool = True) -> None:
        self._busy.discard(worker)
        if used:
            worker.proofs += 1
        if self._closed:
            self._in_background(worker.close())
        elif not worker.alive:
            if worker.death in ("timeout", "crash", "protocol"):
                self._count_death(worker)
            self._replace(worker)
        elif worker.proofs >= self.max_proofs_per_worker or self._too_big(worker):
            self._counts["recycled"] += 1
            worker.kill("recycled")
            self._replace(worker)
        else:
            self._idle[worker] = None
            self._dispatch()

    def _too_big(self, worker: LeanWorker) -> bool:
        if self.max_rss_mb <= 0:
            return False
        now = time.monotonic()
        if now - self._rss_checked.get(worker, -math.inf) < self.rss_check_interval_s:
            return False
        self._rss_checked[worker] = now
        return worker.rss_mb() > self.max_rss_mb

    # --- scheduling ---------------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Hand idle warm workers to the first waiter of their import set; then, for import sets
        still waiting (protected ones first, the others in order of their oldest waiter), start
        a worker in a free slot or convert the least recently used idle worker that may be
        converted (see :meth:`_victim`). While proofs of a protected import set wait, the other
        import sets hold at most :attr:`other_header_limit` workers between them."""
        if self._closed:
            return
        protected = self._protected()
        # The share grows past its limit while no protected proof waits; once one does, workers
        # of the share coming free go back to the protected sets, not to their own queue.
        reclaim = 0
        if any(imports in self._queues for imports in protected):
            held = Counter(worker.header for worker in [*self._idle, *self._busy])
            held.update(self._starting.values())
            reclaim = sum(n for h, n in held.items() if h not in protected)
            reclaim -= self.other_header_limit
        for worker in list(self._idle):
            if not worker.alive:  # died while idle; its watcher may not have run yet
                del self._idle[worker]
                self._count_death(worker)
                self._replace(worker, dispatch=False)
                continue
            queue = self._queues.get(worker.header)
            if queue:
                if reclaim > 0 and worker.header not in protected:
                    reclaim -= 1
                    continue  # left idle for a protected import set to convert below
                waiter = queue.popleft()
                if not queue:
                    del self._queues[worker.header]
                del self._idle[worker]
                self._busy.add(worker)
                waiter.future.set_result(worker)
        if not self._queues or (not self._idle and self._live() >= self.workers):
            return  # nobody waits, or there is nothing to start or convert
        coming = Counter(self._starting.values())
        live = Counter(worker.header for worker in [*self._idle, *self._busy])
        live.update(coming)
        limit = self.other_header_limit
        others = sum(n for h, n in live.items() if h not in protected)
        protected_waiting = [h for h in protected if h in self._queues]
        others_waiting = len(protected_waiting) < len(self._queues)
        imports_sets = [*protected_waiting, *(h for h in self._queues if h not in protected)]
        for imports in imports_sets:
            is_protected = imports in protected
            needed = len(self._queues[imports]) - coming[imports]
            while needed > 0:
                free = self._live() < self.workers
                if not free and not self._idle:
                    return
                # the share binds only while a protected import set's proofs wait
                under_limit = is_protected or others < limit or not protected_waiting
                if not under_limit and not any(w.header not in protected for w in self._idle):
                    return  # the share is full and busy: no other import set can act now
                if under_limit and free:
                    self._spawn(imports)
                else:
                    victim = self._victim(
                        imports, live, under_limit, others_waiting, others > limit, protected
                    )
                    if victim is None:
                        break
                    del self._idle[victim]
                    live[victim.header] -= 1
                    others -= victim.header not in protected
                    self._counts["evictions"] += 1
                    victim.kill("evicted")
                    self._in_background(victim.close())
                    self._slots.discard(victim.slot)
                    self._spawn(imports)
                live[imports] += 1
                others += not is_protected
                needed -= 1

    def _victim(
        self,
        imports: str,
        live: Counter[str],
        under_limit: bool,
        others_waiting: bool,
        over_limit: bool,
        protected: Sequence[str],
    ) -> LeanWorker | None:
        """The idle worker that ``imports`` may convert, if any: of the import sets with no
        demand first (:attr:`demand_window_s`), least recently used first.

        - A protected import set's worker goes only while the share has room (or no protected
          proof waits); and its last one only when that set has no demand, or when ``imports``
          has no worker and cannot get one otherwise (a protected set, or a pool too small to
          keep one per protected set and still serve others).
        - An import set outside the protected ones at its limit converts only workers of the
          share.
        - A protected import set takes a worker from the share only when it has none of its
          own, when no other proof waits, or when the share holds more than its limit (it grew
          while no protected proof waited); otherwise it waits for its own (a proof is cheaper
          than an import, and taking from the share would make the two evict each other).
        """
        is_protected = imports in protected
        tight = self.workers - len(protected) < self.other_header_limit
        starving = live[imports] == 0 and (is_protected or tight)
        candidates = [w for w in self._idle if w.alive and w.header != imports]
        candidates.sort(key=lambda w: self._demand.recent(w.header))  # stable: LRU within
        for worker in candidates:
            if worker.header in protected:
                idle_set = not self._demand.recent(worker.header)
                if under_limit and (live[worker.header] > 1 or starving or idle_set):
                    return worker
            elif not is_protected or live[imports] == 0 or not others_waiting or over_limit:
                return worker
        return None

    def _replace(self, worker: LeanWorker, *, dispatch: bool = True) -> None:
        """Reap a dead or retired worker and start another for its header, behind the scenes."""
        self._in_background(worker.close())
        self._slots.discard(worker.slot)
        if self._closed:
            return
        if dispatch:
            self._dispatch()
        if self._live() < self.workers:
            self._counts["restarts"] += 1
            self._spawn(worker.header, slot=worker.slot)

    def _live(self) -> int:
        return len(self._idle) + len(self._busy) + len(self._starting)

    # --- processes ----------------------------------------------------------------------------

    def _spawn(self, header: str, *, slot: int | None = None) -> None:
        """Start a worker for the import set ``header`` in ``slot`` (or the first free one)."""
        self._imports_started[header] = self._imports_started.pop(header, 0) + 1
        while len(self._imports_started) > self._demand.max_entries:
            self._imports_started.popitem(last=False)
        if slot is None or slot in self._slots:
            slot = next(i for i in range(len(self._slots) + 1) if i not in self._slots)
        self._slots.add(slot)
        task = asyncio.create_task(self._warm(header, slot), name=f"lean-warm-{slot}")
        self._starting[task] = header

    async def _warm(self, header: str, slot: int) -> None:
        """Start one process and import ``header`` (an import set); derive the rest of each
        prewarm header with these imports; hand it to the pool or report why not."""
        task = asyncio.current_task()
        worker: LeanWorker | None = None
        warm = False
        try:
            launch = self._launch()
            worker = await LeanWorker.spawn(
                launch.argv,
                header=header,
                slot=slot,
                cwd=self.cwd,
                env=launch.env,
                # the uid switch in preexec_fn: uvloop's subprocess refuses Popen's keywords
                preexec_fn=self._preexec(slot, launch),
            )
            await worker.import_header(self.header_timeout_s)
            failures: list[HeaderFailed] = []
            for full in self._prewarm_headers:
                if split_imports(full)[0] == header and full != header:
                    try:
                        await self._enter(worker, full)
                    except HeaderFailed as failure:  # that header's, shown in readiness
                        failures.append(failure)
                    else:
                        self._prewarm_derived.add(full)
            await worker.sync(self.header_timeout_s)
            for failed in failures:
                self._failed.put(failed.header, failed.messages)
        except HeaderFailed as exc:
            logger.warning("%.500s", exc)
            self._failed.put(header, exc.messages)
            messages = self._failed.get(header) or exc.messages
            self._fail_waiters(
                header, lambda waiter: HeaderFailed(waiter.header, messages), all_of_them=True
            )
        except (ReplError, OSError, ValueError) as exc:
            if isinstance(exc, ReplTimeout):
                self._counts["timeouts"] += 1
            elif isinstance(exc, ProtocolViolation):
                self._counts["protocol_violations"] += 1
            else:
                self._counts["crashes"] += 1
            problem = f"a Lean worker for header {header!r:.60} failed to start: {exc}"
            logger.error("%s", problem)
            self._last_start_problem = problem
            self._failed_starts += 1
            self._fail_waiters(header, lambda _: PoolUnavailable(problem), all_of_them=False)
            if header in self._prewarm:
                self._retry_later(header, min(60.0, 0.5 * 2**self._failed_starts))
        else:
            if not self._closed:
                self._idle[worker] = None
                if header in self._prewarm:  # only these matter to readiness; others are unbounded
                    self._warmed.add(header)
                self._last_start_problem = None
                self._failed_starts = 0
                self._in_background(self._watch(worker))
                warm = True
        finally:
            self._starting.pop(task, None)  # type: ignore[arg-type]
            if not warm:
                self._slots.discard(slot)
                if worker is not None:
                    await worker.close()
            self._dispatch()

    def _retry_later(self, header: str, delay_s: float) -> None:
        """Keep a configured header warm even if the REPL failed to start (it may be transient)."""

        async def retry() -> None:
            await asyncio.sleep(delay_s)
            if not self._closed and self._live() < self.workers:
                self._spawn(header)

        task = asyncio.create_task(retry(), name="lean-retry")
        self._retries.add(task)
        task.add_done_callback(self._retries.discard)

    async def _watch(self, worker: LeanWorker) -> None:
        """Notice a worker that dies while idle (e.g. the OOM killer) and replace it."""
        await worker.process.wait()
        if worker in self._idle and not self._closed:
            del self._idle[worker]
            self._count_death(worker)
            self._replace(worker)

    def _count_death(self, worker: LeanWorker) -> None:
        """Count a worker that died on its own account: timed out, crashed, or was caught
        with output that was not the REPL's (the idle reader kills it at the first byte)."""
        if worker.death == "timeout":
            self._counts["timeouts"] += 1
        elif worker.death == "protocol":
            self._counts["protocol_violations"] += 1
        else:
            self._counts["crashes"] += 1

    def _fail_waiters(
        self, header: str, error: Callable[[_Waiter], ReplError], *, all_of_them: bool
    ) -> None:
        """Fail the first (or every) waiter for the import set ``header``, each with its own
        exception."""
        queue = self._queues.get(header)
        while queue:
            waiter = queue.popleft()
            if not waiter.future.done():
                waiter.future.set_exception(error(waiter))
                if not all_of_them:
                    break
        if queue is not None and not queue:
            del self._queues[header]

    def _launch(self) -> Launch:
        """How the next process starts: argv, a cleared environment (the REPL never needs the
        service's variables, which hold secrets), credentials and rlimits of the sandbox."""
        confinement = self.sandbox if self.sandbox is not None else Unconfined()
        env = {**self.env, "LEAN_NUM_THREADS": str(self.threads)}
        return confinement.launch(self.command, cwd=self.cwd, env=env)

    def _preexec(self, slot: int, launch: Launch) -> Callable[[], None] | None:
        """rlimits, CPU affinity and the sandbox's hooks, applied between fork and exec."""
        more = []
        if self.address_space_mb > 0:
            more.append((resource.RLIMIT_AS, self.address_space_mb << 20))
        cpus: set[int] = set()
        if self._cpus and self.threads < len(self._cpus):
            first = slot * self.threads
            cpus = {self._cpus[(first + i) % len(self._cpus)] for i in range(self.threads)}
        return launch.preexec(more, cpus, switch_credentials=True)

    def _in_background(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- reporting ----------------------------------------------------------------------------

    def stats(self) -> PoolStats:
        headers = Counter(worker.header for worker in [*self._idle, *self._busy])
        self._failed.prune()
        live = Counter(headers)
        live.update(self._starting.values())
        protected = self._protected()
        return PoolStats(
            size=self.workers,
            busy=len(self._busy),
            idle=len(self._idle),
            starting=len(self._starting),
            restarts=self._counts["restarts"],
            timeouts=self._counts["timeouts"],
            recycled=self._counts["recycled"],
            crashes=self._counts["crashes"],
            headers=dict(headers),
            waiting=sum(len(queue) for queue in self._queues.values()),
            evictions=self._counts["evictions"],
            other_header_workers=sum(n for h, n in live.items() if h not in protected),
            other_header_limit=self.other_header_limit,
            failed_headers=len(self._failed),
            failed_header_bytes=self._failed.bytes,
            protocol_violations=self._counts["protocol_violations"],
            derived_envs=self._counts["derived_envs"],
            derived_evictions=self._counts["derived_evictions"],
            hot_import_sets=len(self._hot),
        )

    def import_set_stats(self) -> list[ImportSetStats]:
        """Per import set: workers (warm or warming), waiting proofs, imports started. Only the
        sets that have workers, waiters or a remembered count (bounded) are listed."""
        live = Counter(worker.header for worker in [*self._idle, *self._busy])
        live.update(self._starting.values())
        protected = set(self._protected())
        names = dict.fromkeys([*self._imports_started, *live, *self._queues])
        return [
            ImportSetStats(
                label=import_set_label(imports),
                imports=imports.replace("\n", ",")[:200],
                workers=live[imports],
                waiting=len(self._queues.get(imports, ())),
                imports_started=self._imports_started.get(imports, 0),
                protected=imports in protected,
            )
            for imports in names
        ]

    @property
    def ready(self) -> bool:
        """True once every prewarm header has had a warm worker (at once if none was asked)."""
        return not self.readiness()

    def readiness(self) -> dict[str, str]:
        """What is missing before the pool can serve; empty when ready."""
        if not self.command:
            return {"lean_repl": "no Lean REPL configured (set SIEVE_LEAN_REPL)"}
        if self._closed:
            return {"lean_pool": "closed"}
        if not self._started:
            return {"lean_pool": "not started"}
        missing = {}
        for header in self._prewarm_headers:
            imports, rest = split_imports(header)
            failure = self._failed.get(header) or self._failed.get(imports)
            if imports in self._warmed and (not rest or header in self._prewarm_derived):
                continue
            if failure is not None:
                errors = [str(m.get("data", "")) for m in failure if m.get("severity") == "error"]
                state = "does not elaborate: " + (errors[0] if errors else "error")
            else:
                state = "warming" + (
                    f" ({self._last_start_problem})" if self._last_start_problem else ""
                )
            missing[f"lean_header:{header}"] = state
        return missing
