"""Warm workers under header churn, and the pool's bounded memory of failed headers.

The memory itself is tested in ``tests/verifier/lean/test_header_failures.py``.
"""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from verifier_service.lean.header import split_imports
from verifier_service.lean.header_failures import HeaderFailures
from verifier_service.lean.pool import HeaderFailed, PoolUnavailable, ReplPool
from verifier_service.settings import VerifierSettings

from .conftest import HEADER, PROOF, eventually, gone


def _new_header(i: int) -> str:
    """A header nobody prewarmed, with imports of its own, so its own worker. (A header that
    differs from a prewarmed one only after its imports shares that one's workers.)"""
    return f"import Mathlib.New{i}\n{HEADER}"


#: The import set of ``HEADER``: what the pool keys its workers by.
IMPORTS = split_imports(HEADER)[0]


async def _prove(pool: ReplPool, header: str = HEADER, code: str = PROOF) -> int:
    async with pool.lease(header, acquire_timeout_s=60) as worker:
        await worker.send({"cmd": code, "env": 0}, 10)
        return worker.pid


async def test_prewarmed_header_keeps_its_worker_while_others_churn(make_pool) -> None:
    """Eight new headers against a 2-worker pool never take the last worker of a prewarmed
    header in use."""
    pool = make_pool("--header-delay", "0.2", workers=2)
    await pool.start([HEADER])
    await eventually(lambda: pool.stats().idle == 2, "both prewarmed")
    assert pool.other_header_limit == 1
    await _prove(pool)  # in use: a prewarmed import set with no demand lends all its workers
    samples = []

    async def watch() -> None:
        while True:
            stats = pool.stats()
            samples.append((stats.headers.get(IMPORTS, 0), stats.other_header_workers))
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    churn = [asyncio.create_task(_prove(pool, _new_header(i))) for i in range(8)]
    await asyncio.sleep(0.1)  # the churn has converted one worker by now
    kept = {await _prove(pool) for _ in range(10)}
    others_done_before = sum(task.done() for task in churn)
    await asyncio.gather(*churn)
    watcher.cancel()

    # the ten prewarmed proofs ran on one warm worker and did not wait for the churn to end
    assert len(kept) == 1 and not gone(kept.pop())
    assert others_done_before < len(churn)
    assert samples and all(prewarmed >= 1 and others <= 1 for prewarmed, others in samples)
    stats = pool.stats()
    assert stats.headers[IMPORTS] >= 1
    assert stats.evictions >= 7  # the new headers evicted each other inside their share


async def test_without_prewarm_headers_every_worker_is_shared(make_pool) -> None:
    pool = make_pool(workers=3)
    await pool.start()
    assert pool.other_header_limit == 3
    pids = await asyncio.gather(*(_prove(pool, _new_header(i)) for i in range(3)))
    assert len(set(pids)) == 3
    assert pool.stats().other_header_workers == 3


@pytest.mark.parametrize(
    ("workers", "prewarm", "share", "limit"),
    [
        (2, 1, 0.5, 1),
        (2, 1, 0.25, 1),  # at least one
        (8, 1, 0.5, 4),
        (8, 1, 1.0, 7),  # never the prewarm header's last worker
        (8, 3, 0.9, 5),
        (4, 2, 0.0, 0),  # only the prewarm headers
        (1, 1, 0.5, 1),  # too small to reserve: the one worker is shared
        (3, 0, 0.1, 3),  # nothing prewarmed: everything is shared
    ],
)
async def test_other_header_limit(workers, prewarm, share, limit) -> None:
    pool = ReplPool([], workers=workers, other_headers_share=share)
    await pool.start([f"import H{i}" for i in range(prewarm)])
    assert pool.other_header_limit == limit


async def test_a_share_of_zero_serves_only_prewarm_headers(make_pool) -> None:
    pool = make_pool(workers=2, other_headers_share=0.0)
    await pool.start([HEADER])
    with pytest.raises(PoolUnavailable, match="SIEVE_LEAN_PREWARM_HEADERS"):
        await _prove(pool, _new_header(0))
    await _prove(pool)


async def test_a_one_worker_pool_still_serves_other_headers(make_pool) -> None:
    pool = make_pool(workers=1)
    await pool.start([HEADER])
    first = await _prove(pool)
    other = await _prove(pool, _new_header(0))
    again = await _prove(pool)
    assert len({first, other, again}) == 3
    assert pool.stats().headers == {IMPORTS: 1}


async def test_prewarm_header_takes_back_an_idle_share_worker_when_nobody_else_waits(
    make_pool,
) -> None:
    """A one-off new header must not strand a worker the prewarmed load could use."""
    pool = make_pool("--delay", "0.2", workers=2)
    await pool.start([HEADER])
    await eventually(lambda: pool.stats().idle == 2, "both prewarmed")
    await _prove(pool, _new_header(0))
    assert pool.stats().headers == {IMPORTS: 1, split_imports(_new_header(0))[0]: 1}
    await asyncio.gather(*(_prove(pool) for _ in range(4)))
    await eventually(lambda: pool.stats().headers == {IMPORTS: 2}, "share worker reclaimed")
    assert pool.stats().other_header_workers == 0


async def test_prewarm_header_does_not_take_the_share_while_others_wait(make_pool) -> None:
    """Taking a share worker that other headers are queued for would make the two evict each
    other at every turn."""
    pool = make_pool("--header-delay", "0.3", "--delay", "0.05", workers=2)
    await pool.start([HEADER])
    await eventually(lambda: pool.stats().idle == 2, "both prewarmed")
    await _prove(pool)  # in use: a prewarmed import set with no demand lends all its workers
    churn = [asyncio.create_task(_prove(pool, _new_header(i))) for i in range(4)]
    await asyncio.sleep(0.05)
    await asyncio.gather(*(_prove(pool) for _ in range(6)))
    await asyncio.gather(*churn)
    # 1 conversion into the share, then each later new header replaces the previous one: 4
    assert pool.stats().evictions == 4


# --- what the pool remembers per header --------------------------------------------------------


async def test_many_bad_headers_leave_bounded_state_in_the_pool(make_pool) -> None:
    pool = make_pool(workers=1, header_failures=HeaderFailures(max_entries=5))
    await pool.start([HEADER])
    for i in range(12):
        with pytest.raises(HeaderFailed):
            await _prove(pool, f"import Nope{i}")
    stats = pool.stats()
    assert stats.failed_headers == 5 and 0 < stats.failed_header_bytes < 5 * 16_384
    assert pool._warmed == {IMPORTS}  # headers warmed once are not remembered forever
    with pytest.raises(HeaderFailed):  # the latest are still answered from memory
        await _prove(pool, "import Nope11")
    assert pool.stats().starting == 0
    await _prove(pool)


def test_share_setting() -> None:
    settings = VerifierSettings(
        lean_repl="repl", lean_sandbox="none", lean_other_headers_share=0.25
    )
    assert ReplPool.from_settings(settings).other_headers_share == 0.25
    with pytest.raises(ValidationError):
        VerifierSettings(lean_other_headers_share=1.5)
    with pytest.raises(ValueError, match="other_headers_share"):
        ReplPool(["repl"], workers=1, other_headers_share=-0.1)


async def test_a_crowd_of_waiters_and_headers_is_served(make_pool) -> None:
    """400 proofs over 16 headers at once, against 2 workers: all served, the share held while
    prewarmed proofs wait, and the proofs of each header in arrival order. (No import set is
    learned as hot here: that would move sets in and out of the share.)"""
    pool = make_pool(workers=2, hot_import_sets=0)
    await pool.start([HEADER])
    await eventually(lambda: pool.stats().idle == 2, "both prewarmed")
    order: dict[str, list[int]] = {}
    widest = measured = 0

    async def one(header: str, index: int) -> None:
        nonlocal widest, measured
        async with pool.lease(header, acquire_timeout_s=120) as worker:
            order.setdefault(header, []).append(index)
            if any(row.waiting for row in pool.import_set_stats() if row.protected):
                measured += 1
                widest = max(widest, pool.stats().other_header_workers)
            await worker.send({"cmd": PROOF, "env": 0}, 10)

    headers = [HEADER, *(_new_header(i) for i in range(15))]
    tasks = [one(headers[i % len(headers)], i) for i in range(400)]
    assert len(tasks) == 400
    await asyncio.gather(*tasks)
    assert sum(len(v) for v in order.values()) == 400
    assert all(v == sorted(v) for v in order.values())
    assert widest <= 1 and measured > 0
    stats = pool.stats()
    assert stats.waiting == 0 and stats.busy == 0 and stats.headers.get(IMPORTS, 0) >= 1
