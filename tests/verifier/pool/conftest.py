"""Fixtures for the REPL pool tests: the protocol double runs as a real subprocess."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from verifier_service.lean.pool import ReplPool
from verifier_service.testing import repl_double
from verifier_service.vendored import TRANSCRIPTS

REPO_ROOT = Path(__file__).resolve().parents[3]

HEADER = "import Mathlib\nimport Aesop\nset_option maxHeartbeats 400000\nopen BigOperators Real Nat"
PROOF = "theorem two : 1 + 1 = 2 := by norm_num"
#: The env a worker's first proof of ``HEADER`` gets: env 0 is the import env, env 1 the one the
#: pool derives from it for the header's ``set_option`` and ``open``.
FIRST_PROOF_ENV = 2


@pytest.fixture
def transcripts() -> Path:
    # Vendored with the repository: a missing one is a broken checkout, not a reason to skip.
    assert TRANSCRIPTS.is_dir(), f"the vendored REPL transcripts are not at {TRANSCRIPTS}"
    return TRANSCRIPTS


@pytest.fixture
async def make_pool() -> AsyncIterator[Callable[..., ReplPool]]:
    """Build pools over the double (synthetic answers only); all are closed after the test."""
    pools: list[ReplPool] = []

    def make(*double_args: str, workers: int = 1, **options: Any) -> ReplPool:
        command = repl_double.command("--no-transcripts", *double_args)
        pool = ReplPool(command, workers=workers, **options)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        await pool.aclose()


def gone(pid: int) -> bool:
    """The process no longer runs (a zombie waiting for a reaper counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def eventually(predicate: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    """Wait until ``predicate()`` holds; fail naming ``what`` if it never does."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.02)
