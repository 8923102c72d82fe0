"""Scale-out as README describes it: two ``sieve-verifier serve`` replicas sharing one Redis.

``VerifierClient`` is given both URLs and 400 ``math`` proofs; one replica is SIGKILLed mid-run.
Every result must still come back, in order, right, and none ``error``; the survivor then answers
all 400 from the cache the two replicas share.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO

import httpx
import pytest
import redis

from tests.verifier.cache.conftest import running_redis
from trainer_client.client import VerifierClient
from verifier_service.launcher import free_port

REPO_ROOT = Path(__file__).resolve().parents[3]
PROOFS = 400


class Replica:
    """One ``python -m verifier_service serve`` on loopback that the test may SIGKILL."""

    def __init__(self, env: dict[str, str], log: IO[bytes]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("SIEVE_")}
        child_env.update(env)
        argv = [sys.executable, "-m", "verifier_service", "serve"]
        argv += ["--host", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen(argv, env=child_env, cwd=REPO_ROOT, stdout=log, stderr=log)

    def wait_ready(self, deadline: float) -> None:
        while True:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise AssertionError(f"replica exited with {code}:\n{self.tail()}")
            try:
                if httpx.get(self.url + "/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.url} never became ready:\n{self.tail()}")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-3000:]


@pytest.fixture
def redis_url() -> Iterator[str]:
    with running_redis() as server:
        yield server.url


@contextmanager
def replicas(redis_url: str, namespace: str, count: int = 2) -> Iterator[list[Replica]]:
    env = {
        "SIEVE_CHECKERS": "math",
        "SIEVE_REDIS_URL": redis_url,
        "SIEVE_CACHE_NAMESPACE": namespace,
        "SIEVE_LOG_LEVEL": "warning",
    }
    with ExitStack() as stack:
        started = []
        for _ in range(count):
            log = stack.enter_context(tempfile.TemporaryFile())
            replica = Replica(env, log)
            stack.callback(replica.stop)
            started.append(replica)
        deadline = time.monotonic() + 60
        for replica in started:
            replica.wait_ready(deadline)
        yield started


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
        victim.kill()
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
