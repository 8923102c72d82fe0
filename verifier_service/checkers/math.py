"""The ``math`` checker: is a model's final answer equivalent to the reference answer?

Equivalence is decided by `math-verify <https://github.com/huggingface/Math-Verify>`_ (symbolic
and numeric comparison through SymPy), so ``3*8``, ``(2+4)*4`` and ``\\boxed{24}`` all match
``24``, and ``\\frac{1}{2}`` matches ``0.5``.

Why a process pool and not a thread: math-verify bounds its own work with ``SIGALRM``, which only
works on a main thread, and SymPy can run for minutes (``9^{9^{9^9}}``) while holding the GIL.
Each check therefore runs on the main thread of a worker process, under an interval timer set to
the job's budget. A timer can interrupt SymPy anywhere (even inside a lazy import), so the
workers that ran out of time are replaced; a worker stuck where no signal reaches it (a huge
integer power in C) is caught by a second deadline (budget + :data:`STUCK_GRACE_S`) and killed.
The event loop never runs SymPy, and checks use every core instead of one GIL.

A round trip to a worker costs about as much as a short answer, so answers are sent several per
job (:data:`DEFAULT_BATCH` at most, an equal share of the queue per worker). Each still runs under
its own timer, and the worker writes which answer it is on, and since when, to shared memory: the
service gives each answer its own deadline, and knows which answer a dead or stuck worker was on.
That answer runs again alone; the job's other answers are queued again, never given its verdict.

Workers start from a fork server (never by forking the service), so a script that uses this
checker directly needs the usual ``if __name__ == "__main__":`` guard of multiprocessing code.

Comparisons run with :mod:`~verifier_service.checkers.math_shortcuts` installed: an exact proof
that a symbolic answer differs from the reference, instead of SymPy's ``simplify``, where one
exists (the same verdicts, several times faster on a policy's wrong answers).

What is read from the text, and how it is compared, is the strict reading of
:mod:`verifier_service.checkers.math_answer`: exactly one final answer (the last ``\\boxed{…}``,
an explicit final-answer line, or a bare expression that must parse as a whole), of the
reference's kind, with its relation signs, percent and units compared and its value compared
exactly. A completion that offers several answers, hedges or retracts is ``invalid``
(``ambiguous_answer``). The reference is read in :meth:`MathChecker.prepare`, in the service
process and without SymPy: one the checker cannot read is refused there (HTTP 422).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import importlib.metadata
import logging
import multiprocessing
import multiprocessing.connection
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import SimpleNamespace
from typing import Any, ClassVar

from verifier_service.checkers.base import Checker, InvalidInput, Job, Policy
from verifier_service.checkers.math_answer import Refused, read_answer, read_reference
from verifier_service.settings import VerifierSettings
from verifier_service.verdicts import Outcome, Verdict

logger = logging.getLogger(__name__)

#: Extra seconds past the budget before a worker counts as stuck (in C code, where the timer
#: cannot reach it) and its pool is killed. Generous, so a worker still warming up never counts.
STUCK_GRACE_S = 10.0
#: Seconds a job may wait for a worker to start it (a fresh worker warms up first, slowly on a
#: loaded machine) before the pool counts as broken.
START_GRACE_S = 120.0
#: How often a job not yet started by its worker is looked at again.
_START_POLL_S = 0.05
#: Longest rendering of a parsed answer echoed back in ``messages``.
_ECHO_CHARS = 200
#: The reasons of an ``invalid`` verdict: all are the answer's fault, never the checker's.
INVALID_REASONS = frozenset(
    {"wrong_answer", "unparsable_answer", "ambiguous_answer", "uncomparable_answer"}
)
#: Revision of the strict rules; part of :attr:`MathChecker.version`, so that a verdict cached
#: under other rules is never served.
STRICT_RULES = 1
#: Most answers sent to a worker in one job (one round trip). A job is at most an equal share of
#: the queue per worker, so a lone answer still goes alone, at once.
DEFAULT_BATCH = 16
#: Fewest answers in a job while that many wait.
MIN_BATCH = 4
#: ``status`` of a result whose comparison raised inside the worker (the detail names it).
_RAISED = "raised"


class MathChecker(Checker):
    """Final-answer equivalence with math-verify, in a small pool of worker processes.

    ``workers`` defaults to ``min(4, CPUs)``: a short answer takes 3-8 ms, so each worker checks
    roughly 130-370 answers per second. ``address_space_mb`` caps each worker's memory
    (``RLIMIT_AS``; 0 disables) so a runaway expression fails alone instead of taking the host
    down.
    """

    name: ClassVar[str] = "math"

    def __init__(
        self,
        settings: VerifierSettings | None = None,
        *,
        workers: int | None = None,
        address_space_mb: int = 4096,
        batch_size: int = DEFAULT_BATCH,
    ) -> None:
        self.settings = settings or VerifierSettings()
        self.workers = workers if workers is not None else min(4, os.cpu_count() or 1)
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        self.address_space_mb = address_space_mb
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self._pool: ProcessPoolExecutor | None = None
        self._progress: Any = None
        self._slots_in_use: dict[int, set[int]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: collections.deque[_Pending] = collections.deque()
        self._running = 0
        self._exclusive = False
        self._pump_scheduled = False
        self._batches: set[asyncio.Future[None]] = set()
        #: Jobs sent to workers (round trips), each of one or more answers.
        self._round_trips = 0
        self._closed = False
        self._recycled = 0
        #: What a worker runs per job (a seam for tests; must be picklable by reference).
        self._work: Callable[[str, str, float], dict[str, Any]] = judge
        self._version = (
            f"math-verify {importlib.metadata.version('math-verify')}; strict {STRICT_RULES}"
        )

    @property
    def version(self) -> str:
        return self._version

    async def start(self) -> None:
        """Start the workers now (each warms up in its initializer), not at the first request."""
        self._closed = False
        await asyncio.gather(*self._spawn_workers())

    async def aclose(self) -> None:
        self._closed = True
        for pending in self._queue:
            _fail(pending, RuntimeError("the math checker is shutting down"))
        self._queue.clear()
        pool, self._pool = self._pool, None
        if pool is not None:
            _kill_pool(pool)

    def stats(self) -> dict[str, float]:
        return {
            "workers": float(self.workers),
            "busy": float(self._running),  # workers with a job
            "pools_recycled": float(self._recycled),
        }

    def prepare(
        self,
        *,
        code: str,
        header: str | None,
        statement: str | None,
        answer: str | None,
        timeout_s: float,
        policy: Policy,
    ) -> Job:
        if answer is None or not answer.strip():
            raise InvalidInput("answer", "the math checker needs a reference answer")
        if not code or not code.strip():
            raise InvalidInput("code", "the answer to check is empty")
        if not timeout_s > 0:
            raise InvalidInput("timeout_s", f"must be > 0, got {timeout_s}")
        try:
            read_reference(answer.strip())
        except Refused as refused:
            raise InvalidInput(
                "answer", f"the math checker cannot read this reference answer: {refused.message}"
            ) from refused
        # Header, statement and Lean policy mean nothing here; dropping them lets requests that
        # differ only there share one cache entry.
        return Job(
            checker=self.name,
            code=code.strip(),
            answer=answer.strip(),
            timeout_s=timeout_s,
            policy=Policy(),
        )

    async def check(self, job: Job) -> Outcome:
        assert job.answer is not None, "prepare() guarantees an answer"
        started = time.perf_counter()
        try:
            result = await self._judge(job.code, job.answer, job.timeout_s)
        except asyncio.TimeoutError:
            return Outcome.timeout(job.timeout_s, time_s=time.perf_counter() - started)
        except Exception as exc:  # a fault of ours or of math-verify, never the answer's
            logger.error("math checker failed: %s: %s", type(exc).__name__, exc)
            return Outcome.error(
                f"math_verify_failed: {type(exc).__name__}: {exc}",
                time_s=time.perf_counter() - started,
            )
        if result["status"] == _RAISED:  # an exception inside the worker, kept by name
            logger.error("math checker failed: %s", result["detail"])
            return Outcome.error(
                f"math_verify_failed: {result['detail']}", time_s=time.perf_counter() - started
            )
        return _outcome(result, job.timeout_s)

    # --- the pool -----------------------------------------------------------------------------
    #
    # Answers wait in one queue. Whenever a worker is free, the queue's head goes to it as one
    # job of several answers (a round trip to a worker costs about as much as a short answer).
    # Inside the worker each answer runs under its own timer and reports its progress (which
    # answer, since when) in shared memory, so the service still gives each answer its own
    # deadline and knows which answer a dead or stuck worker was on:
    # - the answer that was running is a *suspect*: it runs again alone, with nothing else in
    #   the pool, so a second death is its own (``error``, as a single answer's was);
    # - an answer past its deadline (stuck in C, where its timer cannot reach) is ``timeout``,
    #   and its pool is killed;
    # - the batch's other answers, and those of batches that died beside it, are innocent:
    #   they go back to the head of the queue, not charged a retry;
    # - an answer whose own timer fired is ``timeout`` (as a single answer was); the answers
    #   after it are queued again, on fresh workers.

    async def _judge(self, code: str, answer: str, budget_s: float) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        self._bind(loop)
        pending = _Pending(code, answer, budget_s, loop.create_future())
        self._queue.append(pending)
        self._schedule_pump()
        return await pending.future

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Queue state belongs to one event loop (a test suite may run several in turn)."""
        if self._loop is not loop:
            self._loop = loop
            self._queue = collections.deque()
            self._running = 0
            self._exclusive = False
            self._pump_scheduled = False

    def _schedule_pump(self) -> None:
        # On the next turn of the loop, not now: the other answers of a request reach check()
        # in this same turn, and should share round trips with this one.
        if not self._pump_scheduled:
            self._pump_scheduled = True
            asyncio.get_running_loop().call_soon(self._pump)

    def _pump(self) -> None:
        """Hand queued answers to free workers, several per round trip."""
        self._pump_scheduled = False
        while self._queue and not self._exclusive and self._running < self.workers:
            head = self._queue[0]
            if head.future.done():  # its caller went away
                self._queue.popleft()
                continue
            if head.suspect:
                if self._running:  # a suspect runs alone: wait for the pool to drain
                    return
                batch = [self._queue.popleft()]
                self._exclusive = True
            else:
                batch = self._take_batch()
            self._running += 1
            task = asyncio.ensure_future(self._run_batch(batch))
            self._batches.add(task)
            task.add_done_callback(self._batches.discard)

    def _take_batch(self) -> list[_Pending]:
        """The next job: an equal share of the queue for each worker, in ``2 * workers`` parts
        so that a slow answer does not hold back a whole half of it; at least
        :data:`MIN_BATCH` (a queue's tail in ever smaller jobs would cost a round trip each),
        at most ``batch_size``."""
        innocent = sum(1 for p in self._queue if not p.suspect)
        share = -(-innocent // (2 * self.workers))
        size = max(1, min(self.batch_size, max(share, MIN_BATCH)))
        batch: list[_Pending] = []
        while self._queue and len(batch) < size and not self._queue[0].suspect:
            pending = self._queue.popleft()
            if not pending.future.done():
                batch.append(pending)
        return batch

    async def _run_batch(self, batch: list[_Pending]) -> None:
        exclusive = self._exclusive and len(batch) == 1 and batch[0].suspect
        try:
            if batch:
                await self._run_in_pool(batch)
        except Exception as exc:  # a fault of ours: every answer of the job is an error
            logger.exception("math checker: a job of %d answers failed", len(batch))
            for pending in batch:
                _fail(pending, exc)
        finally:
            self._running -= 1
            if exclusive:
                self._exclusive = False
            self._schedule_pump()

    async def _run_in_pool(self, batch: list[_Pending]) -> None:
        pool = self._current_pool()
        progress = self._progress
        slot = self._free_slot(pool)
        progress[2 * slot] = -1.0  # not started yet
        progress[2 * slot + 1] = time.monotonic()
        items = [(p.code, p.answer, p.budget_s) for p in batch]
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(pool, _judge_batch, self._work, items, slot)
        self._round_trips += 1
        self._slots_in_use.setdefault(id(pool), set()).add(slot)
        try:
            stuck = await _watch(future, progress, slot, [p.budget_s for p in batch])
        finally:
            self._slots_in_use[id(pool)].discard(slot)
        if stuck is not None:
            future.add_done_callback(_discard_outcome)  # it fails when the pool is killed
            if stuck < 0:
                self._replace_pool(pool, "no worker started a job", kill=True)
                for pending in batch:
                    _fail(pending, RuntimeError(f"no worker started within {START_GRACE_S} s"))
                return
            self._replace_pool(pool, "a worker ignored its time limit", kill=True)
            _fail(batch[stuck], asyncio.TimeoutError())
            self._requeue(batch[:stuck] + batch[stuck + 1 :])
            return
        try:
            results = future.result()
        except BrokenProcessPool as exc:
            # A worker died (killed, out of memory, a crash in C) or its pool was killed under
            # it. The answer it was on is suspect; the others are innocent.
            self._replace_pool(pool, "a worker died", kill=True)
            if self._closed:
                for pending in batch:
                    _fail(pending, exc)
                return
            running = int(progress[2 * slot])
            current = min(max(running, 0), len(batch) - 1)
            culprit = batch[current]
            if culprit.suspect:  # it broke a pool twice, the second time alone
                _fail(culprit, exc)
            else:
                culprit.suspect = True
            self._requeue([*batch[:current], culprit, *batch[current + 1 :]])
            return
        for pending, result in zip(batch, results, strict=False):
            if not pending.future.done():
                pending.future.set_result(result)
        if results and results[-1]["status"] == "timeout":
            # An answer's timer interrupted SymPy anywhere, even inside a lazy import: that
            # worker's state cannot be trusted. The answers after it go to fresh workers, and
            # the old pool finishes the jobs it has, then exits.
            self._replace_pool(pool, "a check ran out of time", kill=False)
            self._requeue(batch[len(results) :])

    def _requeue(self, pendings: list[_Pending]) -> None:
        """Put answers back at the head of the queue, suspects first, in their order."""
        for pending in reversed(sorted(pendings, key=lambda p: not p.suspect)):
            if not pending.future.done():
                self._queue.appendleft(pending)

    def _free_slot(self, pool: ProcessPoolExecutor) -> int:
        used = self._slots_in_use.get(id(pool), set())
        return next(slot for slot in range(self.workers) if slot not in used)

    def _current_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            context = _mp_context()
            # One (answer index, start time) pair per job in flight, written by the worker.
            progress = context.Array("d", 2 * self.workers, lock=False)
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=context,
                initializer=_init_worker,
                initargs=(self.address_space_mb, progress),
            )
            self._progress = progress
            self._slots_in_use.pop(id(self._pool), None)
        return self._pool

    def _replace_pool(self, pool: ProcessPoolExecutor, why: str, *, kill: bool) -> None:
        """Send new jobs to fresh workers; ``kill`` the old ones now or let them finish."""
        if self._pool is pool:
            self._pool = None
            self._recycled += 1
            for warming in self._spawn_workers():  # nobody awaits these; a failure is no news
                warming.add_done_callback(_discard_outcome)
        if kill:  # also for a pool replaced earlier: its stuck worker must not live on
            logger.warning("math checker: %s; killing its workers", why)
            _kill_pool(pool)
        else:
            logger.info("math checker: %s; replacing its workers", why)
            pool.shutdown(wait=False)

    def _spawn_workers(self) -> list[asyncio.Future[Any]]:
        """Start every worker of the current pool now; they warm up off the request path."""
        pool = self._current_pool()
        loop = asyncio.get_running_loop()
        return [loop.run_in_executor(pool, abs, 0) for _ in range(self.workers)]


@dataclasses.dataclass(eq=False)
class _Pending:
    """One answer waiting for, or in, a worker."""

    code: str
    answer: str
    budget_s: float
    future: asyncio.Future[dict[str, Any]]
    #: It was running when its worker died: it runs again alone, and a second death is its own.
    suspect: bool = False


def _fail(pending: _Pending, exc: BaseException) -> None:
    if not pending.future.done():
        pending.future.set_exception(exc)


async def _watch(
    future: asyncio.Future[Any], progress: Any, slot: int, budgets: list[float]
) -> int | None:
    """Wait for a job; the index of its answer that overran its deadline, or ``None``
    (``-1``: no worker started the job within :data:`START_GRACE_S`).

    Each answer's deadline is its own budget plus :data:`STUCK_GRACE_S` from when the worker
    started it (read from ``progress``). Time before a worker starts the job (a fresh one warms
    up first) is not charged to any answer.
    """
    while True:
        index = int(progress[2 * slot])
        since = progress[2 * slot + 1]
        if index < 0:
            deadline = since + START_GRACE_S
        else:
            deadline = since + budgets[min(index, len(budgets) - 1)] + STUCK_GRACE_S
        left = deadline - time.monotonic()
        if left > 0:
            # Until the worker starts the job nothing wakes us when it does: look again soon.
            wait = min(left, _START_POLL_S) if index < 0 else left
            done, _ = await asyncio.wait({future}, timeout=wait)
            if done:
                return None
            continue
        if int(progress[2 * slot]) == index and progress[2 * slot + 1] == since:
            return index


def _outcome(result: dict[str, Any], budget_s: float) -> Outcome:
    status, time_s = result["status"], result["time_s"]
    messages = [
        {"severity": "info", "data": f"{side} parsed as {result[side]}"}
        for side in ("answer", "reference")
        if result.get(side) is not None
    ]
    if status == "valid":
        return Outcome(Verdict.VALID, messages=messages, time_s=time_s)
    if result.get("detail"):
        messages.append({"severity": "info", "data": f"why: {result['detail']}"})
    if status in INVALID_REASONS:
        return Outcome(Verdict.INVALID, [status], messages=messages, time_s=time_s)
    if status == "timeout":
        return Outcome.timeout(budget_s, time_s=time_s)
    # "unparsable_reference": the request's fault, not the model's; never cached.
    return Outcome(Verdict.ERROR, [status], messages=messages, time_s=time_s)


def _discard_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _kill_pool(pool: ProcessPoolExecutor) -> None:
    """Kill a pool's processes now, even ones stuck in C code, and shut the pool down."""
    kill_workers = getattr(pool, "kill_workers", None)  # Python >= 3.14; shuts down too
    if kill_workers is not None:
        kill_workers()
        return
    # Before shutdown(), which forgets the processes (and would wait forever for a stuck one).
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        with contextlib.suppress(Exception):
            process.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def _mp_context() -> multiprocessing.context.BaseContext:
    # Never fork the service itself (threads, sockets, an event loop); the fork server is a
    # clean process that has math-verify imported once, so new workers start in milliseconds.
    if sys.platform != "win32" and "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["math_verify", "verifier_service.checkers.math"])
        return context
    return multiprocessing.get_context("spawn")


# --- what runs inside a worker process ---------------------------------------------------------


class _OutOfTime(BaseException):
    """Raised by the interval timer inside a worker.

    A ``BaseException``, like ``KeyboardInterrupt``, so that no ``except Exception`` inside
    SymPy or math-verify can swallow it and let the work run on past its budget.
    """


#: This worker's shared progress array: ``(answer index, start time)`` per job slot.
_PROGRESS: Any = None


def _init_worker(address_space_mb: int, progress: Any = None) -> None:
    global _PROGRESS
    _PROGRESS = progress
    # The service process handles Ctrl-C and shuts the pool down; workers must not die first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()
    # We enforce the budget ourselves, so math-verify's "timeout disabled" notice is noise.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    if address_space_mb > 0:
        with contextlib.suppress(ImportError, ValueError, OSError):
            import resource

            limit = address_space_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # Load the LaTeX grammar and SymPy's lazily imported parts now: not during a request, and
    # not where a timer could interrupt an import half-way.
    for code, answer in _WARM_UP:
        judge(code, answer, 60.0)


def _exit_with_parent() -> None:
    """Exit when the service process dies, however it dies.

    Pool workers otherwise block forever on their task queue after a ``kill -9`` of the service
    (and keep the fork server alive with them).
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


_WARM_UP = (
    ("1", "1"),
    ("\\frac{1}{2}", "0.5"),
    ("The answer is $\\boxed{\\sqrt{2}\\pi}$.", "\\sqrt{2}\\cdot\\pi"),
    ("x = 2^{10}", "1024"),
    ("(1, 2]", "\\{1, 2\\}"),
    ("2**3", "8"),
)


def _judge_batch(
    work: Callable[[str, str, float], dict[str, Any]],
    items: list[tuple[str, str, float]],
    slot: int,
) -> list[dict[str, Any]]:
    """Judge several answers in turn, each under its own timer; runs in a worker process.

    Before each answer the worker writes which one it starts, and when, to its ``slot`` of the
    shared progress array: the service reads it to give each answer its own deadline and to
    know which answer a dead worker was on. Stops after an answer that ran out of time (the
    interrupted worker is not trusted with more); the service queues the rest again. An
    exception on one answer is that answer's result (``status`` ``raised``), not the job's.
    """
    results: list[dict[str, Any]] = []
    for index, (code, answer, budget_s) in enumerate(items):
        if _PROGRESS is not None:
            _PROGRESS[2 * slot + 1] = time.monotonic()
            _PROGRESS[2 * slot] = float(index)
        try:
            result = work(code, answer, budget_s)
        except Exception as exc:
            result = {"status": _RAISED, "detail": f"{type(exc).__name__}: {exc}", "time_s": 0.0}
        results.append(result)
        if result["status"] == "timeout":
            break
    if _PROGRESS is not None:
        _PROGRESS[2 * slot] = float(len(items))
    return results


def _on_alarm(signum: int, frame: object) -> None:
    raise _OutOfTime


def judge(code: str, answer: str, budget_s: float) -> dict[str, Any]:
    """Compare ``code`` with ``answer`` within ``budget_s`` seconds; runs in a worker process.

    Returns ``{"status", "time_s", "answer", "reference", "detail"}`` with ``status`` ``valid``,
    one of :data:`INVALID_REASONS`, ``unparsable_reference`` (only for a caller that skipped
    :meth:`MathChecker.prepare`) or ``timeout``; ``detail`` says why an answer was refused. An
    exception inside math-verify on the answer is the answer's (``unparsable_answer`` or
    ``uncomparable_answer``); any other failure raises (and becomes ``error``).
    """
    started = time.perf_counter()
    result: dict[str, Any] = {"answer": None, "reference": None}
    try:
        with _time_limit(budget_s):
            result["status"] = _compare(code, answer, result)
    except _OutOfTime:  # also when the timer fires while being disarmed
        result["status"] = "timeout"
    result["time_s"] = time.perf_counter() - started
    return result


@functools.cache
def _lib() -> SimpleNamespace:
    """The comparison (math-verify, SymPy) and the shortcuts, imported once per worker.

    Imported on first use, not with this module: the service process never needs them. Looked
    up once: ``from package import name`` inside a function runs the import machinery on every
    call.
    """
    from verifier_service.checkers import math_shortcuts
    from verifier_service.checkers.math_answer.compare import compare, parse_core

    return SimpleNamespace(compare=compare, parse_core=parse_core, shortcuts=math_shortcuts)


def _compare(code: str, answer: str, result: dict[str, Any]) -> str:
    lib = _lib()
    lib.shortcuts.install()
    try:
        reference = read_reference(answer)
    except Refused as refused:  # prepare() refuses these; a direct caller gets a status
        result["detail"] = refused.message
        return "unparsable_reference"
    try:
        gold = _extract_reference(answer)
    except Exception as exc:  # read by our reader, not by math-verify: the request's to fix
        result["detail"] = f"math-verify: {type(exc).__name__}: {exc}"
        return "unparsable_reference"
    result["reference"] = _echo(gold)
    if not gold:
        return "unparsable_reference"
    try:
        candidate = read_answer(code)
    except Refused as refused:
        result["detail"] = refused.message
        return refused.reason
    judgement = lib.compare(reference, candidate, gold)
    result["answer"] = _echo(judgement.answer) if judgement.answer else None
    result["detail"] = judgement.detail
    return judgement.status


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`_OutOfTime` in this thread after ``seconds`` (main thread, POSIX only)."""
    if (
        not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        yield  # elsewhere only the service's outer deadline applies
        return
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# A bare expression: one line, no LaTeX delimiters or \boxed, and no English words (a run of two
# or more letters that is not a \command or a function name).
_DELIMITERS = ("$", "\\(", "\\[", "\\boxed", "\n")
_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")
_FUNCTIONS = frozenset({"sqrt", "sin", "cos", "tan", "log", "ln", "exp"})


def is_bare_expression(text: str) -> bool:
    """Whether ``text`` is a single expression, to be parsed as a whole rather than searched."""
    if any(marker in text for marker in _DELIMITERS):
        return False
    return all(word.group() in _FUNCTIONS for word in _WORD.finditer(text))


def extract(text: str) -> list[Any]:
    """What math-verify reads from the final answer of ``text`` under the strict reading;
    ``[]`` when there is none, more than one, or it is not mathematics."""
    try:
        shape = read_answer(text)
    except Refused:
        return []
    if shape.kind == "text":
        return []
    return _lib().parse_core(shape.core)


@functools.lru_cache(maxsize=4096)
def _extract_reference(answer: str) -> list[Any]:
    """math-verify's parse of a reference answer (its strict reading's core), kept: a step
    sends the same reference with each of a prompt's k samples, and SymPy objects are
    immutable, so sharing them is safe."""
    return _lib().parse_core(read_reference(answer).core)


def _echo(found: list[Any]) -> str | None:
    if not found:
        return None
    text = str(found[0])
    return text if len(text) <= _ECHO_CHARS else text[: _ECHO_CHARS - 1] + "…"


__all__ = ["MathChecker", "extract", "is_bare_expression", "judge"]
