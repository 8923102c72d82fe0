"""The pool, driven through the protocol double as a real subprocess."""

from __future__ import annotations

import asyncio
import os
import shlex

import psutil
import pytest

from verifier_service.lean.header import split_imports
from verifier_service.lean.pool import (
    HeaderFailed,
    PoolUnavailable,
    ReplCrashed,
    ReplPool,
    ReplTimeout,
)
from verifier_service.settings import VerifierSettings
from verifier_service.testing import repl_double

from .conftest import FIRST_PROOF_ENV, HEADER, PROOF, eventually, gone


async def _prove(
    pool: ReplPool, code: str = PROOF, *, header: str = HEADER, timeout_s: float = 10, wait_s=30
):
    async with pool.lease(header, acquire_timeout_s=wait_s) as worker:
        reply = await worker.send({"cmd": code, "env": 0}, timeout_s)
        return worker.pid, reply


async def test_a_header_is_imported_once_per_worker(make_pool) -> None:
    pool = make_pool(workers=1)
    await pool.start([HEADER])
    await eventually(lambda: pool.ready, "prewarm finished")
    first_pid, first = await _prove(pool)
    second_pid, second = await _prove(pool)
    assert first_pid == second_pid
    # env 0 is the imports, env 1 the header's rest; each proof adds one env, so no second
    # header ran in between.
    assert (first["env"], second["env"]) == (FIRST_PROOF_ENV, FIRST_PROOF_ENV + 1)
    assert pool.stats().headers == {split_imports(HEADER)[0]: 1}


async def test_lease_only_after_the_header_is_warm(make_pool) -> None:
    """A slow header (1 s) never eats into a short proof budget (0.5 s)."""
    pool = make_pool("--header-delay", "1.0", workers=1, header_timeout_s=20)
    await pool.start()
    _, reply = await _prove(pool, timeout_s=0.5)
    assert reply == {"env": FIRST_PROOF_ENV}
    assert pool.stats().timeouts == 0


async def test_header_timeout_is_its_own_budget(make_pool) -> None:
    pool = make_pool("--header-delay", "5", workers=1, header_timeout_s=0.3)
    await pool.start()
    with pytest.raises(PoolUnavailable, match="failed to start"):
        await _prove(pool)
    assert pool.stats().timeouts == 1


async def test_least_recently_used_header_is_evicted(make_pool) -> None:
    pool = make_pool(workers=2)
    await pool.start()
    pid_a, _ = await _prove(pool, header="import Mathlib")
    pid_b, _ = await _prove(pool, header="import Aesop")
    again, _ = await _prove(pool, header="import Mathlib")  # Aesop's worker is now the LRU one
    assert again == pid_a
    pid_c, _ = await _prove(pool, header="")
    assert pid_c not in (pid_a, pid_b)
    await eventually(lambda: gone(pid_b), "evicted worker exited")
    assert not gone(pid_a)
    stats = pool.stats()
    assert stats.evictions == 1
    assert stats.headers == {"import Mathlib": 1, "": 1}


async def test_timeout_kills_the_process_group_and_a_replacement_warms(make_pool) -> None:
    pool = make_pool(workers=1)
    await pool.start([HEADER])
    async with pool.lease(HEADER, acquire_timeout_s=30) as worker:
        await worker.send({"cmd": "example : True := trivial -- double:spawn", "env": 0}, 10)
        grandchildren = [p.pid for p in psutil.Process(worker.pid).children(recursive=True)]
        assert grandchildren, "the double should have started a child process"
        with pytest.raises(ReplTimeout):
            await worker.send({"cmd": "example : True := by -- double:hang", "env": 0}, 0.3)
        pid = worker.pid
    assert gone(pid)
    await eventually(lambda: all(gone(p) for p in grandchildren), "grandchild killed")
    await eventually(lambda: pool.stats().idle == 1, "replacement warm")
    stats = pool.stats()
    assert (stats.timeouts, stats.restarts) == (1, 1)
    new_pid, reply = await _prove(pool)
    assert new_pid != pid and reply == {"env": FIRST_PROOF_ENV}


async def test_crash_raises_and_the_worker_is_replaced(make_pool) -> None:
    pool = make_pool(workers=1)
    await pool.start([HEADER])
    with pytest.raises(ReplCrashed):
        await _prove(pool, "theorem t : True := trivial -- double:crash")
    new_pid, reply = await _prove(pool)
    assert reply == {"env": FIRST_PROOF_ENV}
    stats = pool.stats()
    assert stats.crashes == 1 and stats.restarts == 1
    assert not gone(new_pid)


async def test_crash_between_commands_is_a_crash(make_pool) -> None:
    # imports, their sync, the header's rest, the first proof, the lease's sync; the second
    # proof finds it gone
    pool = make_pool("--crash-after", "5", workers=1)
    await pool.start()
    await _prove(pool)
    with pytest.raises(ReplCrashed, match="exited"):
        await _prove(pool)


async def test_recycled_after_max_proofs(make_pool) -> None:
    pool = make_pool(workers=1, max_proofs_per_worker=2)
    await pool.start()
    pids = [(await _prove(pool))[0] for _ in range(3)]
    assert pids[0] == pids[1] != pids[2]
    assert pool.stats().recycled == 1
    assert gone(pids[0])


async def test_recycled_above_rss_limit(make_pool) -> None:
    pool = make_pool(workers=1, max_rss_mb=120)
    pool.rss_check_interval_s = 0  # measure at every release
    await pool.start()
    small, _ = await _prove(pool)
    same, _ = await _prove(pool, "theorem big : True := trivial -- double:grow 160")
    assert small == same
    fresh, _ = await _prove(pool)
    assert fresh != same
    assert pool.stats().recycled == 1


async def test_stderr_flood_does_not_stall(make_pool) -> None:
    pool = make_pool(workers=1)
    await pool.start()
    async with pool.lease(HEADER, acquire_timeout_s=30) as worker:
        # 4 MiB: sixty times a pipe buffer; without a reader the double would block forever.
        reply = await worker.send({"cmd": "-- double:stderr 4096", "env": 0}, 20)
        assert reply == {"env": FIRST_PROOF_ENV}
        tail = worker.stderr_tail(10_000)
        assert len(tail) == 10_000 and set(tail) <= {"x", "\n"}


async def test_header_failure_is_reported_and_remembered(make_pool) -> None:
    pool = make_pool(workers=1)
    await pool.start()
    with pytest.raises(HeaderFailed) as failure:
        await _prove(pool, header="import Mathlib\nimport Nope")
    assert failure.value.messages[0]["severity"] == "error"
    assert "Nope" in failure.value.messages[0]["data"]
    with pytest.raises(HeaderFailed):  # answered from memory: no new process
        await _prove(pool, header="import Mathlib\nimport Nope")
    assert pool.stats().starting == 0
    assert (await _prove(pool))[1] == {"env": FIRST_PROOF_ENV}  # other headers are unaffected


async def test_every_waiter_for_a_failing_header_hears_why(make_pool) -> None:
    pool = make_pool("--header-delay", "0.2", workers=3)
    await pool.start()
    bad = "import Nope"
    results = await asyncio.gather(
        *(_prove(pool, header=bad) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, HeaderFailed) for r in results)
    assert len({id(r) for r in results}) == 3  # each its own exception, not one shared object
    assert pool.stats().crashes == 0


async def test_prewarm_failure_shows_in_readiness(make_pool) -> None:
    pool = make_pool(workers=1)
    await pool.start(["import Nope"])
    await eventually(lambda: "does not elaborate" in str(pool.readiness()), "failure reported")
    assert not pool.ready


async def test_acquire_timeout_when_all_busy(make_pool) -> None:
    pool = make_pool(workers=1)
    await pool.start()
    async with pool.lease(HEADER, acquire_timeout_s=30):
        with pytest.raises(PoolUnavailable, match="within"):
            await _prove(pool, wait_s=0.2)
        assert pool.stats().waiting == 0
    assert (await _prove(pool))[1] == {"env": FIRST_PROOF_ENV}


async def test_waiters_are_served_in_arrival_order(make_pool) -> None:
    pool = make_pool(workers=1)
    await pool.start()
    order: list[int] = []

    async def wait_turn(index: int) -> None:
        async with pool.lease(HEADER, acquire_timeout_s=30):
            order.append(index)

    async with pool.lease(HEADER, acquire_timeout_s=30):
        tasks = []
        for index in range(5):
            tasks.append(asyncio.create_task(wait_turn(index)))
            await asyncio.sleep(0.01)
        assert pool.stats().waiting == 5
    await asyncio.gather(*tasks)
    assert order == list(range(5))


async def test_concurrent_leases_never_share_a_worker(make_pool) -> None:
    pool = make_pool("--delay", "0.02", workers=3)
    await pool.start([HEADER])
    in_use: set[int] = set()
    overlaps = []

    async def one(index: int) -> int:
        async with pool.lease(HEADER, acquire_timeout_s=60) as worker:
            if worker.pid in in_use:
                overlaps.append(worker.pid)
            in_use.add(worker.pid)
            reply = await worker.send({"cmd": f"theorem t{index} : True := trivial", "env": 0}, 10)
            in_use.discard(worker.pid)
            return reply["env"]

    envs = await asyncio.gather(*(one(i) for i in range(24)))
    assert overlaps == []
    assert all(env >= 1 for env in envs)
    stats = pool.stats()
    assert stats.busy == 0 and stats.idle == 3


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True) if not gone(p.pid)}


async def test_aclose_leaves_no_process(make_pool) -> None:
    before = _children()  # other suites' servers may run beside this test
    pool = make_pool(workers=2)
    await pool.start([HEADER])
    await eventually(lambda: pool.stats().idle == 2, "both warm")
    async with pool.lease(HEADER, acquire_timeout_s=30) as worker:
        await worker.send({"cmd": "-- double:spawn", "env": 0}, 10)
        family = [worker.pid, *(p.pid for p in psutil.Process(worker.pid).children(True))]
        hanging = asyncio.create_task(worker.send({"cmd": "-- double:hang", "env": 0}, 60))
        await asyncio.sleep(0.1)
        await pool.aclose()
        with pytest.raises(ReplCrashed):
            await hanging
    assert all(gone(pid) for pid in family)
    assert _children() - before == set()
    with pytest.raises(PoolUnavailable):
        await _prove(pool)


async def test_child_environment_limits_and_placement(make_pool) -> None:
    pool = make_pool(workers=2, address_space_mb=2048, threads=1, env={"EXTRA": "1"})
    os.environ["SIEVE_SECRET_FOR_TEST"] = "hidden"
    try:
        await pool.start([HEADER])
        await eventually(lambda: pool.stats().idle == 2, "both warm")
    finally:
        del os.environ["SIEVE_SECRET_FOR_TEST"]
    processes = [psutil.Process(w.pid) for w in pool._idle]
    for process in processes:
        env = process.environ()
        assert env["LEAN_NUM_THREADS"] == "1" and env["EXTRA"] == "1"
        assert "SIEVE_SECRET_FOR_TEST" not in env
        assert process.rlimit(psutil.RLIMIT_AS) == (2048 << 20, 2048 << 20)
    if len(os.sched_getaffinity(0)) >= 2:
        placements = [tuple(p.cpu_affinity()) for p in processes]
        assert all(len(cpus) == 1 for cpus in placements) and len(set(placements)) == 2


async def test_address_space_limit_stops_a_runaway_proof(make_pool) -> None:
    pool = make_pool(workers=1, address_space_mb=400)
    await pool.start()
    with pytest.raises(ReplCrashed):
        await _prove(pool, "-- double:grow 600")
    assert (await _prove(pool))[1] == {"env": FIRST_PROOF_ENV}


async def test_from_settings_and_unconfigured_pool() -> None:
    settings = VerifierSettings(lean_repl=None, lean_workers=3)
    pool = ReplPool.from_settings(settings)
    await pool.start()
    assert not pool.ready and "lean_repl" in pool.readiness()
    with pytest.raises(PoolUnavailable, match="SIEVE_LEAN_REPL"):
        await _prove(pool)
    configured = ReplPool.from_settings(
        VerifierSettings(
            lean_repl="lake env '/opt/my repl/repl'", lean_sandbox="none", lean_workers=3
        )
    )
    assert configured.command == ("lake", "env", "/opt/my repl/repl") and configured.workers == 3
    assert configured.sandbox is None
    with pytest.raises(ValueError, match="workers"):
        ReplPool(["repl"], workers=0)


async def test_a_failed_prewarm_start_is_retried(tmp_path) -> None:
    """The first start dies (a transient fault); the pool retries and becomes ready alone."""
    flag = tmp_path / "started-once"
    double = " ".join(shlex.quote(part) for part in repl_double.command("--no-transcripts"))
    script = f"test -e {shlex.quote(str(flag))} || {{ touch {shlex.quote(str(flag))}; exit 3; }}"
    pool = ReplPool(["sh", "-c", f"{script}; exec {double}"], workers=1)
    try:
        await pool.start([HEADER])
        await eventually(lambda: "failed to start" in str(pool.readiness()), "failure reported")
        await eventually(lambda: pool.ready, "ready after a retry")
        assert pool.stats().crashes == 1
        assert (await _prove(pool))[1] == {"env": FIRST_PROOF_ENV}
    finally:
        await pool.aclose()
