"""VerifierClient against the real service (math checker) on loopback, in a uvicorn subprocess."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from examples.demo.task import base_distribution, demo_problems
from trainer_client.client import VerifierClient
from trainer_client.data import build_prompt, proof_request
from verifier_service.launcher import free_port, serve_subprocess

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def service_url():
    for module in ("verifier_service.cli", "uvicorn", "math_verify"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed; the live service test needs it")
    env = {
        "SIEVE_CHECKERS": "math",
        "SIEVE_LOG_LEVEL": "warning",
        "SIEVE_MAX_BATCH_SIZE": "5",  # small, so the client's 413 handling meets the real thing
    }
    with serve_subprocess(env, cwd=REPO_ROOT) as url:
        yield url


def demo_requests() -> tuple[list[dict], list[bool]]:
    """Proof requests for demo problems, a mix of correct and near-miss expressions."""
    requests, truth = [], []
    for problem in demo_problems(6, split="test"):
        dist = base_distribution(int(problem.answer))
        for j in (0, 1, len(dist.expressions) - 1):  # two frequent correct, one wrong
            request = proof_request(
                problem, build_prompt(problem), dist.expressions[j], id=f"{problem.name}/{j}"
            )
            requests.append(request)
            truth.append(dist.correct[j])
    return requests, truth


def test_sync_verify_against_the_service(service_url):
    requests, truth = demo_requests()
    with VerifierClient(service_url, max_batch=8, timeout_s=30) as client:
        results = client.verify(requests)
    assert [r.id for r in results] == [r["id"] for r in requests]
    assert [r.verdict for r in results] == ["valid" if t else "invalid" for t in truth]
    # max_batch 8 against the service's 5: every chunk was split once, none failed.
    assert client.stats["split_chunks"] >= 1
    assert client.stats["errors"] == 0


async def test_async_verify_with_a_dead_url_first(service_url):
    requests, truth = demo_requests()
    dead = f"http://127.0.0.1:{free_port()}"
    client = VerifierClient([dead, service_url], max_batch=4, backoff_s=0.01, timeout_s=30)
    async with client:
        results = await client.averify(requests)
    assert [r.ok for r in results] == truth
    assert not any(r.failed for r in results)
    assert client.stats["failovers"] >= 1


def test_an_empty_answer_is_invalid_and_spares_its_chunk(service_url):
    requests, truth = demo_requests()
    problem = demo_problems(1, split="train")[0]
    empty = proof_request(problem, build_prompt(problem), "\n", id="empty")
    assert empty["code"] == ""
    with VerifierClient(service_url, max_batch=5, timeout_s=30) as client:
        results = client.verify([*requests[:2], empty, *requests[2:4]])
    assert results[2].verdict == "invalid"
    assert results[2].reasons[0].startswith("rejected:code")
    assert [r.ok for r in results[:2] + results[3:]] == truth[:4]
