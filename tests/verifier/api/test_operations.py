"""/health, /ready and /metrics, including a Redis that is down."""

from __future__ import annotations

from tests.verifier.api.conftest import MakeClient, proof
from tests.verifier.service.fakes import FakeChecker
from verifier_service.cache import RedisCache
from verifier_service.launcher import free_port


async def test_health_is_ok_while_not_ready(make_client: MakeClient):
    checker = FakeChecker()
    checker.ready = False
    client, _ = await make_client(checkers={"fake": checker})
    response = await client.get("/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_ready_is_503_until_checkers_are_ready(make_client: MakeClient):
    checker = FakeChecker()
    checker.ready = False
    client, _ = await make_client(checkers={"fake": checker})
    response = await client.get("/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False
    assert body["checkers"]["fake"] == {"pool": "warming up"}
    assert body["cache"] == {} and body["cache_backend"] == "memory"
    checker.ready = True
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json()["ready"] is True


async def test_redis_down_still_answers_uncached_and_ready_says_so(make_client: MakeClient):
    checker = FakeChecker()
    cache = RedisCache(f"redis://127.0.0.1:{free_port()}/0", socket_timeout_s=0.2)
    client, _ = await make_client(checkers={"fake": checker}, cache=cache)
    body = {"proofs": [proof("a", "ok")]}
    first = await client.post("/verify", json=body)
    second = await client.post("/verify", json=body)
    assert first.status_code == second.status_code == 200
    for response in (first, second):
        (result,) = response.json()["results"]
        assert (result["verdict"], result["cached"]) == ("valid", False)
    assert checker.calls == ["ok", "ok"]
    ready = await client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["cache_backend"] == "redis"
    assert "redis unreachable" in ready.json()["cache"]["cache"]
    metrics = (await client.get("/metrics")).text
    assert "sieve_cache_up 0.0" in metrics


async def test_metrics_exports_every_family(make_client: MakeClient):
    checker = FakeChecker()
    client, _ = await make_client(checkers={"fake": checker})
    body = {"proofs": [proof("a", "ok"), proof("b", "ok"), proof("c", "wrong")]}
    await client.post("/verify", json=body)
    await client.post("/verify", json=body)
    await client.get("/nope")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    expected = [
        'sieve_http_requests_total{method="POST",route="/verify",status="200"} 2.0',
        'sieve_http_requests_total{method="GET",route="unmatched",status="404"} 1.0',
        'sieve_http_request_duration_seconds_count{route="/verify"} 2.0',
        'sieve_proofs_total{checker="fake",verdict="valid"} 4.0',
        'sieve_proofs_total{checker="fake",verdict="invalid"} 2.0',
        'sieve_cache_hits_total{checker="fake"} 3.0',
        'sieve_cache_misses_total{checker="fake"} 3.0',
        'sieve_check_duration_seconds_count{checker="fake"} 2.0',
        'sieve_dedup_joins_total{checker="fake"} 1.0',
        "sieve_cache_up 1.0",
        "sieve_pending_proofs 0.0",
        'sieve_checker_pool_size{checker="fake"} 2.0',
        'sieve_checker_busy_workers{checker="fake"} 0.0',
    ]
    for line in expected:
        assert line in text, line


async def test_two_apps_in_one_process_keep_separate_metrics(make_client: MakeClient):
    first, _ = await make_client()
    second, _ = await make_client()
    await first.post("/verify", json={"proofs": [proof("a", "ok")]})
    assert (
        'sieve_proofs_total{checker="fake",verdict="valid"} 1.0'
        in (await first.get("/metrics")).text
    )
    assert "sieve_proofs_total{" not in (await second.get("/metrics")).text
