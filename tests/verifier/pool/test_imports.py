"""Workers keyed by their imports: the rest of a header is an env derived inside the worker, and
the pool is work-conserving across import sets."""

from __future__ import annotations

import asyncio

import pytest

from verifier_service.lean.header import normalise_header, split_imports
from verifier_service.lean.pool import HeaderFailed, ProtocolViolation, ReplPool
from verifier_service.settings import VerifierSettings

from .conftest import HEADER, PROOF, eventually, gone

IMPORTS = split_imports(HEADER)[0]
PAPER = normalise_header(
    "import Mathlib\nimport Aesop\nset_option maxHeartbeats 0\n"
    "open BigOperators Real Nat Topology Rat"
)


async def _run(pool: ReplPool, header: str, code: str = PROOF) -> tuple[int, dict]:
    """One proof on the env of its header: (the worker's pid, Lean's reply)."""
    async with pool.lease(header, acquire_timeout_s=30) as worker:
        return worker.pid, await worker.send({"cmd": code, "env": worker.header_env}, 10)


def _errors(reply: dict) -> list[str]:
    return [m["data"] for m in reply.get("messages", []) if m["severity"] == "error"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("import Mathlib\nimport Aesop", ("import Mathlib\nimport Aesop", "")),
        (PAPER, ("import Mathlib\nimport Aesop", PAPER.split("\n", 2)[2])),
        ("open Nat", ("", "open Nat")),
        ("", ("", "")),
        ("import Mathlib\nopen Nat\nimport Aesop", ("import Mathlib", "open Nat\nimport Aesop")),
        ("import all Mathlib.Foo\nopen Nat", ("import all Mathlib.Foo", "open Nat")),
    ],
)
def test_split_imports(header: str, expected: tuple[str, str]) -> None:
    header = normalise_header(header)
    assert split_imports(header) == expected
    imports, rest = split_imports(header)
    assert "\n".join(part for part in (imports, rest) if part) == header


async def test_same_imports_share_a_worker_and_each_header_gets_its_own_env(make_pool) -> None:
    """Headers that differ only in ``open`` / ``set_option`` share one process (one import) and
    still get the results Lean gives each of them."""
    pool = make_pool(workers=1)
    await pool.start()
    reals = "import Mathlib\nopen Real"
    nats = "import Mathlib\nopen Nat"
    fast = "import Mathlib\nset_option maxHeartbeats 0"
    needs_real = f"{PROOF} -- double:needsopen Real"
    needs_option = f"{PROOF} -- double:needsoption maxHeartbeats 0"

    pid, ok = await _run(pool, reals, needs_real)
    assert _errors(ok) == []
    same, refused = await _run(pool, nats, needs_real)
    assert same == pid and _errors(refused) == ["unknown identifier (namespace Real is not open)"]
    _, ok = await _run(pool, fast, needs_option)
    assert _errors(ok) == []
    _, refused = await _run(pool, reals, needs_option)
    assert _errors(refused) == ["this needs `set_option maxHeartbeats 0`"]
    # the imports alone have neither
    _, refused = await _run(pool, "import Mathlib", needs_real)
    assert _errors(refused)

    stats = pool.stats()
    assert stats.headers == {"import Mathlib": 1} and stats.evictions == 0
    assert stats.derived_envs == 3  # reals, nats, fast: each built once
    (row,) = pool.import_set_stats()
    assert (row.imports, row.imports_started) == ("import Mathlib", 1)


async def test_a_derived_env_is_built_once_and_reused_by_its_number(make_pool) -> None:
    pool = make_pool(workers=1)
    await pool.start()
    envs = []
    for _ in range(3):
        async with pool.lease(HEADER, acquire_timeout_s=30) as worker:
            envs.append(worker.header_env)
            assert worker.import_env == 0
    assert envs == [1, 1, 1]
    assert pool.stats().derived_envs == 1


async def test_derived_envs_per_worker_are_bounded_least_recently_used(make_pool) -> None:
    pool = make_pool(workers=1, derived_envs=2)
    await pool.start()
    headers = [f"import Mathlib\nset_option maxRecDepth {1000 + i}" for i in range(3)]
    seen = []
    for header in [headers[0], headers[1], headers[0], headers[2], headers[0], headers[1]]:
        async with pool.lease(header, acquire_timeout_s=30) as worker:
            seen.append(worker.header_env)
            assert len(worker.derived) <= 2
    # h0 stays (used just before h2 came); h1 was the least recently used when h2 came
    assert seen[0] == seen[2] == seen[4]
    assert seen[5] not in (seen[1], seen[0], seen[3])
    stats = pool.stats()
    assert (stats.derived_envs, stats.derived_evictions) == (4, 2)
    with pytest.raises(ValueError, match="derived_envs"):
        ReplPool(["repl"], workers=1, derived_envs=0)


async def test_a_rest_that_does_not_elaborate_is_the_headers_failure(make_pool) -> None:
    """Lean rejects an import after another command; that header fails, the worker does not."""
    pool = make_pool(workers=1)
    await pool.start()
    bad = normalise_header("import Mathlib\nset_option maxHeartbeats 0\nimport Aesop")
    pid, _ = await _run(pool, "import Mathlib")
    with pytest.raises(HeaderFailed) as failure:
        await _run(pool, bad)
    (message,) = failure.value.messages
    assert "import" in message["data"]
    assert message["pos"]["line"] == 3  # a line of the whole header, not of its rest
    with pytest.raises(HeaderFailed):  # remembered: no command is sent for it again
        await _run(pool, bad)
    again, reply = await _run(pool, "import Mathlib")
    stats = pool.stats()
    assert again == pid and _errors(reply) == []
    assert (stats.crashes, stats.protocol_violations, stats.restarts) == (0, 0, 0)
    assert stats.failed_headers == 1


async def test_the_paper_header_runs_on_the_prewarmed_workers_without_an_import(
    make_pool,
) -> None:
    pool = make_pool("--header-delay", "0.2", workers=2)
    await pool.start(["import Mathlib\nimport Aesop"])
    await eventually(lambda: pool.stats().idle == 2, "both prewarmed")
    pids = await asyncio.gather(*(_run(pool, PAPER) for _ in range(8)))
    assert len({pid for pid, _ in pids}) == 2
    stats = pool.stats()
    assert stats.headers == {"import Mathlib\nimport Aesop": 2} and stats.evictions == 0
    (row,) = pool.import_set_stats()
    assert row.imports_started == 2 and row.protected


async def test_a_prewarmed_header_being_derived_shows_its_failure_in_readiness(make_pool) -> None:
    pool = make_pool(workers=1)
    bad = normalise_header("import Mathlib\nset_option maxHeartbeats 0\nimport Aesop")
    await pool.start([bad, "import Mathlib\nopen Real"])
    await eventually(lambda: "does not elaborate" in str(pool.readiness()), "failure reported")
    assert list(pool.readiness()) == [f"lean_header:{bad}"]
    assert pool.stats().derived_envs == 1  # the good header's rest, derived as it warmed


# --- work-conserving scheduling -----------------------------------------------------------------


async def test_a_prewarmed_import_set_without_demand_lends_every_worker(make_pool) -> None:
    """Proofs with no header against a pool prewarmed for Mathlib: both workers serve them."""
    pool = make_pool("--delay", "0.05", workers=2)
    await pool.start([HEADER])
    await eventually(lambda: pool.stats().idle == 2, "both prewarmed")
    pids = await asyncio.gather(*(_run(pool, "") for _ in range(12)))
    assert len({pid for pid, _ in pids}) == 2
    assert pool.stats().headers == {"": 2}
    # the prewarmed import set takes a worker back when its proofs come
    _, reply = await _run(pool, HEADER)
    assert _errors(reply) == []
    assert pool.stats().headers[IMPORTS] >= 1


async def test_an_import_set_in_use_keeps_its_last_worker(make_pool) -> None:
    pool = make_pool("--delay", "0.05", workers=2)
    await pool.start([HEADER])
    await eventually(lambda: pool.stats().idle == 2, "both prewarmed")
    await _run(pool, HEADER)  # demand within the window
    await asyncio.gather(*(_run(pool, "") for _ in range(8)))
    assert pool.stats().headers == {IMPORTS: 1, "": 1}


async def test_the_share_binds_only_while_protected_proofs_wait(make_pool) -> None:
    pool = make_pool("--delay", "0.1", workers=4, hot_import_sets=0)
    await pool.start([HEADER])
    await eventually(lambda: pool.stats().idle == 4, "all prewarmed")
    assert pool.other_header_limit == 2
    # no Mathlib proof waits (nor did any): another import set may take every worker
    await asyncio.gather(*(_run(pool, "import Aesop") for _ in range(12)))
    assert pool.stats().other_header_workers == 4
    # others hold every worker and keep a queue; once Mathlib proofs wait, the others are held
    # to their share again, so Mathlib gets the rest of the pool
    widest = 0

    async def other() -> None:
        nonlocal widest
        async with pool.lease("import Qq", acquire_timeout_s=30) as worker:
            await worker.send({"cmd": PROOF, "env": worker.header_env}, 10)

    async def mathlib() -> None:
        nonlocal widest
        await _run(pool, HEADER)
        widest = max(widest, pool.stats().headers.get(IMPORTS, 0))

    others = [asyncio.create_task(other()) for _ in range(24)]
    await eventually(lambda: pool.stats().headers == {"import Qq": 4}, "the others took all")
    await asyncio.gather(*(mathlib() for _ in range(12)))
    assert widest == 2
    await asyncio.gather(*others)


async def test_hot_import_sets_are_learned_and_protected(make_pool) -> None:
    pool = make_pool(workers=2, hot_import_sets=1)
    await pool.start([HEADER])
    for _ in range(12):
        await _run(pool, "import Aesop")
    assert pool.stats().hot_import_sets == 1
    rows = {row.imports: row for row in pool.import_set_stats()}
    assert rows["import Aesop"].protected and rows["import Mathlib,import Aesop"].protected
    cold = make_pool(workers=2, hot_import_sets=0)
    await cold.start([HEADER])
    for _ in range(12):
        await _run(cold, "import Aesop")
    assert cold.stats().hot_import_sets == 0


def test_import_set_settings() -> None:
    settings = VerifierSettings(
        lean_repl="repl", lean_sandbox="none", lean_derived_envs=5, lean_hot_import_sets=0
    )
    pool = ReplPool.from_settings(settings)
    assert (pool.derived_envs, pool.hot_import_sets) == (5, 0)


async def test_a_forged_reply_to_a_derived_env_is_a_protocol_violation(make_pool) -> None:
    """The command that derives an env is checked like any other: a reply with another env
    number than the REPL gives kills the worker, and the header is not blamed."""
    pool = make_pool(workers=1)
    await pool.start()
    pid, _ = await _run(pool, "import Mathlib")
    forged = "import Mathlib\nopen Real -- double:envshift 1"  # the double obeys the comment
    with pytest.raises(ProtocolViolation):
        await _run(pool, forged)
    await eventually(lambda: gone(pid), "the worker is killed")
    stats = pool.stats()
    assert stats.protocol_violations == 1 and stats.failed_headers == 0
    proof = f"{PROOF} -- double:needsopen Real"
    again, reply = await _run(pool, "import Mathlib\nopen Real", proof)
    assert again != pid and _errors(reply) == []
