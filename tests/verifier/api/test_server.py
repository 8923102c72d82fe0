"""``sieve-verifier serve`` as a real uvicorn process on a free port."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from verifier_service.launcher import serve_subprocess


@pytest.fixture
def server() -> Iterator[str]:
    env = {"SIEVE_CHECKERS": "math", "SIEVE_LOG_LEVEL": "warning"}
    with serve_subprocess(env, ready_path="/health") as url:
        yield url


def test_served_process_checks_math_over_http(server: str):
    body = {"proofs": [{"id": "a", "checker": "math", "code": "\\boxed{24}", "answer": "3*8"}]}
    with httpx.Client(base_url=server, timeout=30) as client:
        first = client.post("/verify", json=body)
        second = client.post("/verify", json=body)
        deadline = time.monotonic() + 30
        while (ready := client.get("/ready")).status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        metrics = client.get("/metrics").text
    assert first.status_code == 200, first.text
    assert first.json()["results"][0]["verdict"] == "valid"
    assert second.json()["results"][0]["cached"] is True
    assert ready.status_code == 200 and ready.json()["cache_backend"] == "memory"
    assert 'sieve_proofs_total{checker="math",verdict="valid"} 2.0' in metrics
