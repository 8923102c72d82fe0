"""Verifier throughput, measured end to end on loopback. Prints figures; asserts nothing.

(a) **Service overhead.** Proofs per second through HTTP (``sieve-verifier serve`` as a real
    uvicorn process with default settings, so prewarmed for ``import Mathlib\nimport Aesop``; an
    httpx client sending 200 distinct proofs in batches of 20, 4 requests at a time) divided by
    proofs per second of the same REPL double driven directly by a
    :class:`~verifier_service.lean.pool.ReplPool` prewarmed for the proofs' own header (2
    concurrent leases). Both sides run 2 REPL processes answering each command after ``--delay``
    seconds, and both do the Lean work the ``lean4`` checker does per proof: the trusted parse
    program on the header's env, the proof on it, the statement program (once per worker, header
    and statement), the target program and ``#print axioms`` on the proof's env. Measured for
    proofs with no header (the service must lend its prewarmed workers) and with the paper's
    header (:data:`PAPER_HEADER`: the prewarmed imports, then ``set_option`` and ``open``, which
    the prewarmed workers serve on a derived env, with no import of their own), each against a
    fresh service. Target: ratio >= 0.97.

(b) **Cached verdicts per second.** One replica answers a 1,000-proof batch that is fully cached
    (after a warm-up request that checks it), with the in-process cache and, when a
    ``redis-server`` binary or a Redis on 127.0.0.1:6379 is available, with Redis.
    Target: >= 20,000 verdicts/s.

(c) **Warm workers under header churn.** One client sends proofs of the prewarmed header one at a
    time while ``--churn-clients`` others keep sending proofs whose headers (and imports: a
    header that differs only after its imports shares the prewarmed workers) nobody asked for
    before; every import takes ``--header-delay`` seconds. The figure is the p99 latency
    of the prewarmed-header proofs divided by the median latency of the same proofs with no churn
    (the proof's own check time). Measured twice: against the pool directly (leases doing the
    lean4 checker's Lean work), and end to end over HTTP. Target: <= 2.

Every figure of (a) and (b) is the median of ``--repeats`` runs after a warm-up; (c) is one
run. Usage::

    python benchmarks/verifier_bench.py [--delay 0.05] [--repeats 3] [--only a,b,c]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from verifier_service.launcher import free_port, serve_subprocess  # noqa: E402
from verifier_service.lean import trusted  # noqa: E402
from verifier_service.lean.header import normalise_header  # noqa: E402
from verifier_service.lean.pool import LeanWorker, ReplPool  # noqa: E402
from verifier_service.settings import VerifierSettings  # noqa: E402
from verifier_service.soundness.parsed import (  # noqa: E402
    statement_declaration,
    statement_for_elaboration,
)
from verifier_service.testing.repl_double import command as double_command  # noqa: E402

HEADER = "import Mathlib\nimport Aesop"
#: The header of the paper's prompt: the default prewarm header's imports, then options and opens.
PAPER_HEADER = (
    "import Mathlib\nimport Aesop\nset_option maxHeartbeats 0\n"
    "open BigOperators Real Nat Topology Rat"
)
console = Console()
# The REPL double is our own code, run unsandboxed on purpose: keep the warning for real Lean out.
logging.getLogger("verifier_service.lean.sandbox").setLevel(logging.ERROR)


# --- workload -----------------------------------------------------------------------------------


def make_proofs(tag: str, n: int, header: str | None = HEADER) -> list[dict[str, str]]:
    """``n`` distinct lean4 proofs of ``header`` (None: no header); ``tag`` keeps runs apart so
    none is answered from cache."""
    proofs = []
    for i in range(n):
        name = f"bench_{tag}_{i}"
        statement = f"theorem {name} (a b : ℕ) : a + b + {i} = b + a + {i} := by"
        proof = {"id": name, "checker": "lean4", "statement": statement}
        if header is not None:
            proof["header"] = header
        proofs.append({**proof, "code": statement + "\n  omega"})
    return proofs


def encode_batches(proofs: Sequence[dict[str, str]], size: int) -> list[bytes]:
    return [
        json.dumps({"proofs": list(proofs[i : i + size])}).encode()
        for i in range(0, len(proofs), size)
    ]


# --- processes ----------------------------------------------------------------------------------


def double_repl(delay: float, header_delay: float = 0.0) -> str:
    args = ["--no-transcripts", "--delay", str(delay), "--header-delay", str(header_delay)]
    return shlex.join(double_command(*args))


def lean_settings(delay: float, workers: int, header_delay: float = 0.0) -> VerifierSettings:
    return VerifierSettings(
        checkers=["lean4"],
        lean_repl=double_repl(delay, header_delay),
        lean_workers=workers,
        lean_prewarm_headers=[HEADER],
        lean_sandbox="none",
    )


@contextlib.contextmanager
def served(
    delay: float, workers: int, redis_url: str | None = None, header_delay: float = 0.0
) -> Iterator[str]:
    """``sieve-verifier serve`` with the lean4 checker on the REPL double; yields its URL."""
    env = {
        "SIEVE_CHECKERS": "lean4",
        "SIEVE_LEAN_SANDBOX": "none",
        "SIEVE_LEAN_PREWARM_HEADERS": HEADER.replace("\n", "\\n"),
        "SIEVE_REDIS_URL": redis_url or "",
        "SIEVE_CACHE_NAMESPACE": f"bench-{uuid.uuid4().hex[:8]}",
        "SIEVE_MAX_PENDING": "100000",
        "SIEVE_LOG_LEVEL": "error",
    }
    args = ["--workers", str(workers), "--lean-repl", double_repl(delay, header_delay)]
    with serve_subprocess(env, args=args, cwd=REPO) as url:
        yield url


@contextlib.contextmanager
def redis_server() -> Iterator[str | None]:
    """A private redis-server on a free port, else the local one on 6379, else ``None``."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield "redis://127.0.0.1:6379/0" if _redis_answers(6379) else None
        return
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not _redis_answers(port):
            if time.monotonic() > deadline or process.poll() is not None:
                yield None
                return
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


# --- (a) service overhead -----------------------------------------------------------------------


async def http_proofs_per_s(url: str, batches: list[bytes], concurrency: int) -> float:
    limit = asyncio.Semaphore(concurrency)
    headers = {"content-type": "application/json"}
    checked = 0

    async with httpx.AsyncClient(base_url=url, timeout=600) as client:

        async def send(body: bytes) -> None:
            nonlocal checked
            async with limit:
                response = await client.post("/verify", content=body, headers=headers)
            response.raise_for_status()
            results = response.json()["results"]
            bad = [r for r in results if r["verdict"] != "valid" or r["cached"]]
            if bad:
                raise RuntimeError(f"unexpected result: {bad[0]}")
            checked += len(results)

        start = time.perf_counter()
        await asyncio.gather(*(send(body) for body in batches))
        elapsed = time.perf_counter() - start
    return checked / elapsed


async def pool_proofs_per_s(
    pool: ReplPool, proofs: list[dict[str, str]], concurrency: int
) -> float:
    """The same Lean work as the lean4 checker, straight through pool leases."""
    header = normalise_header(proofs[0].get("header"))
    queue = list(reversed(proofs))

    async def lane() -> None:
        while queue:
            proof = queue.pop()
            async with pool.lease(header, acquire_timeout_s=60) as worker:
                await checker_lean_work(worker, proof, header)

    start = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return len(proofs) / (time.perf_counter() - start)


async def started_pool(settings: VerifierSettings, header: str | None = HEADER) -> ReplPool:
    """A pool prewarmed for ``header``, once it is ready."""
    pool = ReplPool.from_settings(settings)
    await pool.start([normalise_header(header)])
    deadline = time.monotonic() + 60
    while pool.readiness() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return pool


def overhead(args: argparse.Namespace, header: str | None) -> dict[str, float]:
    """(a) for proofs of ``header`` (None: no header), against a fresh service."""
    http_runs: list[float] = []
    pool_runs: list[float] = []
    with served(args.delay, args.workers) as url:

        async def run() -> None:
            pool = await started_pool(lean_settings(args.delay, args.workers), header)
            try:
                warm = make_proofs("warm", args.batch, header)
                await pool_proofs_per_s(pool, warm, args.workers)
                await http_proofs_per_s(url, encode_batches(warm, args.batch), args.concurrency)
                for repeat in range(args.repeats):
                    proofs = make_proofs(f"r{repeat}", args.proofs, header)
                    pool_runs.append(await pool_proofs_per_s(pool, proofs, args.workers))
                    batches = encode_batches(proofs, args.batch)
                    http_runs.append(await http_proofs_per_s(url, batches, args.concurrency))
            finally:
                await pool.aclose()

        asyncio.run(run())
    http, direct = statistics.median(http_runs), statistics.median(pool_runs)
    return {"http": http, "pool": direct, "ratio": http / direct}


# --- (b) cached verdicts per second -------------------------------------------------------------


async def cached_verdicts_per_s(url: str, n: int, requests: int, repeats: int) -> float:
    body = encode_batches(make_proofs("cached", n), n)[0]
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        for _ in range(2):  # the first request checks, the second warms the hot path
            (await client.post("/verify", content=body, headers=headers)).raise_for_status()
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(requests):
                response = await client.post("/verify", content=body, headers=headers)
                results = response.json()["results"]
                if len(results) != n or not all(r["cached"] for r in results):
                    raise RuntimeError("a warm batch was not fully cached")
            runs.append(n * requests / (time.perf_counter() - start))
    return statistics.median(runs)


def cached(args: argparse.Namespace) -> dict[str, float | None]:
    figures: dict[str, float | None] = {}
    with served(0.0, args.workers) as url:
        figures["memory"] = asyncio.run(
            cached_verdicts_per_s(url, args.cached_batch, args.cached_requests, args.repeats)
        )
    with redis_server() as redis_url:
        if redis_url is None:
            figures["redis"] = None
        else:
            with served(0.0, args.workers, redis_url) as url:
                figures["redis"] = asyncio.run(
                    cached_verdicts_per_s(
                        url, args.cached_batch, args.cached_requests, args.repeats
                    )
                )
    return figures


# --- (c) warm workers under header churn -------------------------------------------------------


def churn_header(i: int) -> str:
    """A header no one asked for before, with imports of its own, so its own worker."""
    return f"import Mathlib.Churn{i}\n{HEADER}\nset_option maxRecDepth {1000 + i}"


def p99(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


async def _lean_work(pool: ReplPool, header: str, proof: dict[str, str]) -> None:
    async with pool.lease(header, acquire_timeout_s=600) as worker:
        await checker_lean_work(worker, proof, header)


async def checker_lean_work(worker: LeanWorker, proof: dict[str, str], header: str) -> None:
    """The REPL commands the lean4 checker sends for one valid proof, in its order."""
    env = worker.header_env if worker.header_env is not None else 0
    statement = statement_declaration(proof["statement"])
    await trusted.parse_code(worker, env, proof["code"], statement, 30)
    reply = await worker.send({"cmd": proof["code"], "env": env}, timeout_s=60)
    await trusted.elaborate_statement(
        worker, env, statement_for_elaboration(statement), 30, header=header
    )
    await trusted.target_type(worker, reply["env"], proof["id"], 30)
    await worker.send({"cmd": f"#print axioms {proof['id']}", "env": reply["env"]}, 30)


async def _churn_latencies(
    one: Callable[[dict[str, str]], Awaitable[None]],
    churn: Callable[[int], Awaitable[None]],
    tag: str,
    n: int,
    clients: int,
) -> tuple[list[float], int]:
    """Latencies of ``n`` sequential prewarmed-header proofs while ``clients`` lanes churn."""
    done = asyncio.Event()
    sent = 0

    async def lane() -> None:
        nonlocal sent
        while not done.is_set():
            sent += 1
            await churn(sent)

    lanes = [asyncio.create_task(lane()) for _ in range(clients)]
    latencies = []
    try:
        await asyncio.sleep(0.2)  # let the churn begin
        for proof in make_proofs(tag, n):
            latencies.append(await _timed(one, proof))
    finally:
        done.set()
        for task in lanes:
            task.cancel()
        await asyncio.gather(*lanes, return_exceptions=True)
    return latencies, sent


async def churn_via_pool(args: argparse.Namespace) -> dict[str, float]:
    pool = await started_pool(lean_settings(args.delay, args.workers, args.header_delay))
    header = normalise_header(HEADER)
    evictions_before = pool.stats().evictions
    try:

        async def one(proof: dict[str, str]) -> None:
            await _lean_work(pool, header, proof)

        async def churn(i: int) -> None:
            proof = make_proofs(f"churn{i}", 1)[0]
            await _lean_work(pool, normalise_header(churn_header(i)), proof)

        quiet = [await _timed(one, proof) for proof in make_proofs("quiet", args.churn_proofs)]
        busy, sent = await _churn_latencies(
            one, churn, "busy", args.churn_proofs, args.churn_clients
        )
        evictions = pool.stats().evictions - evictions_before
    finally:
        await pool.aclose()
    return _churn_figures(quiet, busy, sent, evictions)


async def churn_via_http(url: str, args: argparse.Namespace) -> dict[str, float]:
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:

        async def post(proof: dict[str, str]) -> None:
            response = await client.post("/verify", json={"proofs": [proof]}, headers=headers)
            response.raise_for_status()
            result = response.json()["results"][0]
            if result["verdict"] != "valid" or result["cached"]:
                raise RuntimeError(f"unexpected result: {result}")

        async def churn(i: int) -> None:
            proof = make_proofs(f"churn{i}", 1)[0]
            await post({**proof, "header": churn_header(i)})

        await post(make_proofs("warm", 1)[0])
        quiet = [await _timed(post, proof) for proof in make_proofs("quiet", args.churn_proofs)]
        busy, sent = await _churn_latencies(
            post, churn, "busy", args.churn_proofs, args.churn_clients
        )
    return _churn_figures(quiet, busy, sent, None)


async def _timed(one: Callable[[dict[str, str]], Awaitable[None]], proof: dict[str, str]) -> float:
    start = time.perf_counter()
    await one(proof)
    return time.perf_counter() - start


def _churn_figures(
    quiet: list[float], busy: list[float], sent: int, evictions: int | None
) -> dict[str, float]:
    own, tail = statistics.median(quiet), p99(busy)
    figures = {"own": own, "p99": tail, "ratio": tail / own, "churn_requests": sent}
    if evictions is not None:
        figures["evictions"] = evictions
    return figures


def churn(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    figures = {"pool": asyncio.run(churn_via_pool(args))}
    with served(args.delay, args.workers, header_delay=args.header_delay) as url:
        figures["http"] = asyncio.run(churn_via_http(url, args))
    return figures


# --- report -------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--delay", type=float, default=0.05, help="seconds per REPL command")
    parser.add_argument("--workers", type=int, default=2, help="REPL processes")
    parser.add_argument("--proofs", type=int, default=200, help="distinct proofs per run (a)")
    parser.add_argument("--batch", type=int, default=20, help="proofs per request (a)")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (a)")
    parser.add_argument("--cached-batch", type=int, default=1000, help="proofs per request (b)")
    parser.add_argument("--cached-requests", type=int, default=10, help="requests per run (b)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--header-delay", type=float, default=1.0, help="seconds per header (c)")
    parser.add_argument("--churn-proofs", type=int, default=60, help="prewarmed proofs (c)")
    parser.add_argument("--churn-clients", type=int, default=4, help="new-header lanes (c)")
    parser.add_argument("--only", default="a,b,c", help="figures to measure, e.g. 'c'")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))

    started = time.perf_counter()
    console.print(f"[bold]verifier benchmark[/] on {os.cpu_count()} CPUs, {sys.version.split()[0]}")
    a = {}
    if "a" in only:
        a = {"no header": overhead(args, None), "paper's header": overhead(args, PAPER_HEADER)}
    b = cached(args) if "b" in only else {}
    c = churn(args) if "c" in only else {}

    table = Table(title="Sieve verifier throughput (median of runs)")
    for column in ("figure", "value", "target", "meets"):
        table.add_column(column, justify="right" if column != "figure" else "left")
    for which, figures in a.items():
        table.add_row(f"(a) {which}: HTTP proofs/s", f"{figures['http']:.2f}", "", "")
        table.add_row(f"(a) {which}: direct pool proofs/s", f"{figures['pool']:.2f}", "", "")
        ratio = figures["ratio"]
        table.add_row(f"(a) {which}: HTTP / pool", f"{ratio:.3f}", ">= 0.97", _meets(ratio >= 0.97))
    for backend, value in b.items():
        if value is None:
            table.add_row(f"(b) cached verdicts/s, {backend}", "n/a (no redis)", ">= 20000", "")
        else:
            table.add_row(
                f"(b) cached verdicts/s, {backend}",
                f"{value:,.0f}",
                ">= 20000",
                _meets(value >= 20_000),
            )
    for via, figures in c.items():
        table.add_row(f"(c) {via}: own check time, s", f"{figures['own']:.3f}", "", "")
        table.add_row(f"(c) {via}: p99 under churn, s", f"{figures['p99']:.3f}", "", "")
        extra = f", {figures['evictions']:.0f} evictions" if "evictions" in figures else ""
        table.add_row(
            f"(c) {via}: p99 / own ({figures['churn_requests']:.0f} new headers{extra})",
            f"{figures['ratio']:.2f}",
            "<= 2",
            _meets(figures["ratio"] <= 2),
        )
    console.print(table)
    notes = []
    if a:
        notes.append(
            f"(a) {args.proofs} distinct proofs, batches of {args.batch}, {args.concurrency} "
            f"requests at a time, {args.workers} REPL doubles at {args.delay * 1000:.0f} ms/command"
        )
    if b:
        notes.append(f"(b) batches of {args.cached_batch}, redis-py parser: {_redis_parser()}")
    if c:
        notes.append(
            f"(c) {args.churn_proofs} proofs one at a time, {args.churn_clients} clients sending "
            f"new headers, {args.workers} workers, {args.header_delay:g} s per header import"
        )
    console.print("; ".join(notes) + f". Took {time.perf_counter() - started:.0f} s.")


def _redis_parser() -> str:
    """hiredis (C) parses a 1,000-key MGET several times faster than redis-py's own parser."""
    try:
        from redis.utils import HIREDIS_AVAILABLE
    except ImportError:
        return "n/a"
    return "hiredis" if HIREDIS_AVAILABLE else "python (pip install hiredis to speed it up)"


def _meets(ok: bool) -> str:
    return "[green]yes[/]" if ok else "[red]no[/]"


if __name__ == "__main__":
    main()
