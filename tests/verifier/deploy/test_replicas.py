"""Scale-out as docs/scale-out.md describes it: two ``sieve-verifier serve`` replicas, one Redis.

``VerifierClient`` is given both URLs and 400 ``math`` proofs; one replica is SIGKILLed mid-run.
Every result must still come back, in order, right, and none ``error``; the survivor then answers
all 400 from the cache the two replicas share.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
import redis

from tests.verifier.cache.conftest import running_redis
from trainer_client.client import VerifierClient
from verifier_service.launcher import ServedVerifier, serve_process

REPO_ROOT = Path(__file__).resolve().parents[3]
PROOFS = 400


@pytest.fixture
def redis_url() -> Iterator[str]:
    with running_redis() as server:
        yield server.url


@contextmanager
def replicas(redis_url: str, namespace: str, count: int = 2) -> Iterator[list[ServedVerifier]]:
    """``count`` replicas of ``sieve-verifier serve`` on loopback, each ready, that a test may
    SIGKILL."""
    env = {
        "SIEVE_CHECKERS": "math",
        "SIEVE_REDIS_URL": redis_url,
        "SIEVE_CACHE_NAMESPACE": namespace,
        "SIEVE_LOG_LEVEL": "warning",
    }
    with ExitStack() as stack:
        yield [stack.enter_context(serve_process(env, cwd=REPO_ROOT)) for _ in range(count)]


def kill(replica: ServedVerifier) -> None:
    if replica.process.poll() is None:
        replica.process.send_signal(signal.SIGKILL)
    replica.process.wait(timeout=10)


def math_proofs(tag: str) -> tuple[list[dict], list[str]]:
    """400 distinct proofs; every third gives a wrong answer."""
    proofs, expected = [], []
    for i in range(PROOFS):
        a, b = 3 + i, 7 + i % 13
        wrong = i % 3 == 0
        proofs.append(
            {
                "id": f"{tag}-{i}",
                "checker": "math",
                "code": f"{a}*{b}",
                "answer": str(a * b + (1 if wrong else 0)),
            }
        )
        expected.append("invalid" if wrong else "valid")
    return proofs, expected


def test_a_replica_killed_mid_run_loses_nothing_and_the_cache_is_shared(redis_url) -> None:
    namespace = f"replicas-{uuid.uuid4().hex[:8]}"
    proofs, expected = math_proofs(namespace)
    store = redis.Redis.from_url(redis_url)
    started = time.monotonic()
    with replicas(redis_url, namespace) as (victim, survivor):
        client = VerifierClient(
            [victim.url, survivor.url],
            max_batch=5,
            max_concurrency=2,
            retries=5,
            backoff_s=0.05,
            timeout_s=30,
        )
        results: list = []
        failure: list[BaseException] = []

        def run() -> None:
            try:
                results.extend(client.verify(proofs))
            except BaseException as exc:  # re-raised in the test's thread
                failure.append(exc)

        worker = threading.Thread(target=run)
        ready_s = time.monotonic() - started
        worker.start()
        # kill once a quarter of the verdicts are in Redis: the run is demonstrably under way
        deadline = time.monotonic() + 60
        while len(store.keys(f"{namespace}*")) < PROOFS // 4:
            assert worker.is_alive(), "the run ended before the replica could be killed"
            assert time.monotonic() < deadline, "the replicas wrote nothing to Redis"
            time.sleep(0.005)
        cached_at_kill = len(store.keys(f"{namespace}*"))
        kill_s = time.monotonic() - started
        kill(victim)
        killed_mid_run = worker.is_alive()
        worker.join(timeout=120)
        client.close()
        assert not failure, failure
        assert killed_mid_run and cached_at_kill < PROOFS
        assert victim.process.returncode == -signal.SIGKILL

        assert [r.id for r in results] == [p["id"] for p in proofs]
        assert [r.verdict for r in results] == expected
        assert not any(r.failed for r in results)
        assert client.stats["failovers"] + client.stats["retries"] >= 1
        elapsed_run = time.monotonic() - started

        # every verdict is in the shared cache, so the survivor alone answers all of it from there
        with VerifierClient(survivor.url, max_batch=100, timeout_s=30) as alone:
            again = alone.verify(proofs)
        assert [r.verdict for r in again] == expected
        assert all(r.cached for r in again)
    print(
        f"\n400 proofs over 2 replicas, one SIGKILLed after {cached_at_kill} verdicts: "
        f"ready after {ready_s:.1f} s, killed at {kill_s:.1f} s, "
        f"all results at {elapsed_run:.1f} s; client stats {client.stats}"
    )
