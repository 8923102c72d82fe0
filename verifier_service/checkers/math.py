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
import contextlib
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
#: Longest rendering of a parsed answer echoed back in ``messages``.
_ECHO_CHARS = 200
#: The reasons of an ``invalid`` verdict: all are the answer's fault, never the checker's.
INVALID_REASONS = frozenset(
    {"wrong_answer", "unparsable_answer", "ambiguous_answer", "uncomparable_answer"}
)
#: Revision of the strict rules; part of :attr:`MathChecker.version`, so that a verdict cached
#: under other rules is never served.
STRICT_RULES = 1


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
    ) -> None:
        self.settings = settings or VerifierSettings()
        self.workers = workers if workers is not None else min(4, os.cpu_count() or 1)
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        self.address_space_mb = address_space_mb
        self._pool: ProcessPoolExecutor | None = None
        self._slots: asyncio.Semaphore | None = None
        self._slots_loop: asyncio.AbstractEventLoop | None = None
        self._busy = 0
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
        await asyncio.gather(*self._spawn_workers())

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            _kill_pool(pool)

    def stats(self) -> dict[str, float]:
        return {
            "workers": float(self.workers),
            "busy": float(self._busy),
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
            logger.exception("math checker failed")
            return Outcome.error(
                f"math_verify_failed: {type(exc).__name__}: {exc}",
                time_s=time.perf_counter() - started,
            )
        return _outcome(result, job.timeout_s)

    # --- the pool -----------------------------------------------------------------------------

    async def _judge(self, code: str, answer: str, budget_s: float) -> dict[str, Any]:
        # Wait for a free worker first, so time spent queued is not charged to the budget.
        async with self._free_worker():
            self._busy += 1
            try:
                return await self._judge_in_pool(code, answer, budget_s)
            finally:
                self._busy -= 1

    async def _judge_in_pool(self, code: str, answer: str, budget_s: float) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            pool = self._current_pool()
            future = loop.run_in_executor(pool, self._work, code, answer, budget_s)
            try:
                result = await asyncio.wait_for(future, budget_s + STUCK_GRACE_S)
            except asyncio.TimeoutError:
                self._replace_pool(pool, "a worker ignored its time limit", kill=True)
                raise
            except BrokenProcessPool:
                # The pool was killed under us (another job's worker was stuck) or a worker
                # died; the job is innocent until it breaks a fresh pool too.
                self._replace_pool(pool, "a worker died", kill=True)
                if attempt == 2:
                    raise
                continue
            if result["status"] == "timeout":
                # The timer interrupted SymPy anywhere, even inside a lazy import: that worker's
                # state cannot be trusted. Its pool finishes the jobs it has, then exits.
                self._replace_pool(pool, "a check ran out of time", kill=False)
            return result
        raise AssertionError("unreachable")

    def _free_worker(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots_loop is not loop:
            self._slots, self._slots_loop = asyncio.Semaphore(self.workers), loop
        return self._slots

    def _current_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=_mp_context(),
                initializer=_init_worker,
                initargs=(self.address_space_mb,),
            )
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


def _init_worker(address_space_mb: int) -> None:
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
