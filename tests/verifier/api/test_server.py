"""``sieve-verifier serve`` as a real uvicorn process on a free port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server() -> Iterator[str]:
    port = free_port()
    script = shutil.which("sieve-verifier")
    command = [script] if script else [sys.executable, "-m", "verifier_service"]
    env = {**os.environ, "SIEVE_CHECKERS": "math", "SIEVE_REDIS_URL": "", "SIEVE_API_KEYS": ""}
    process = subprocess.Popen(
        [*command, "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"server exited early:\n{process.stdout.read()}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("server did not answer /health within 60 s")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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
