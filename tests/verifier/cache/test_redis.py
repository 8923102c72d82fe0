"""The Redis backend against a real ``redis-server``, including one that dies and comes back."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from verifier_service.cache import RedisCache, VerdictCache
from verifier_service.verdicts import Outcome, Verdict

from .conftest import RedisServer


def _outcome(i: int) -> Outcome:
    return Outcome(Verdict.VALID if i % 2 else Verdict.INVALID, [f"r{i}"], axioms=[], time_s=i)


@pytest.fixture
async def raw(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A plain client for looking behind the cache's back."""
    client = aioredis.Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture
async def cache(redis_server: RedisServer) -> AsyncIterator[RedisCache]:
    cache = RedisCache(redis_server.url, backoff_s=0.1)
    yield cache
    await cache.aclose()


async def _calls(raw: aioredis.Redis, command: str) -> int:
    stats = await raw.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


async def test_round_trip(cache: RedisCache) -> None:
    assert isinstance(cache, VerdictCache)
    assert cache.backend == "redis"
    await cache.set_many([("k1", _outcome(1)), ("k2", _outcome(2))])
    assert await cache.get_many(["k2", "nope", "k1"]) == [_outcome(2), None, _outcome(1)]
    assert cache.healthy
    assert cache.readiness() == {}


async def test_many_keys_in_one_round_trip_each_way(cache: RedisCache, raw: aioredis.Redis) -> None:
    items = [(f"sieve:{i:04d}", _outcome(i)) for i in range(1000)]
    mget_before = await _calls(raw, "mget")
    await cache.set_many(items)
    assert await _calls(raw, "mset") == 1
    keys = [key for key, _ in items] + ["sieve:absent"]
    got = await cache.get_many(keys)
    assert await _calls(raw, "mget") == mget_before + 1
    assert got == [outcome for _, outcome in items] + [None]


async def test_empty_batches_touch_nothing(cache: RedisCache, raw: aioredis.Redis) -> None:
    assert await cache.get_many([]) == []
    await cache.set_many([])
    assert await _calls(raw, "mget") == 0
    assert await _calls(raw, "mset") == 0


async def test_ttl_is_set_on_every_key(redis_server: RedisServer, raw: aioredis.Redis) -> None:
    cache = RedisCache(redis_server.url, ttl_s=30)
    try:
        await cache.set_many([("a", _outcome(1)), ("b", _outcome(2))])
        for key in ("a", "b"):
            assert 0 < await raw.pttl(key) <= 30_000
    finally:
        await cache.aclose()


async def test_no_ttl_means_keys_persist(cache: RedisCache, raw: aioredis.Redis) -> None:
    await cache.set_many([("a", _outcome(1))])
    assert await raw.pttl("a") == -1


async def test_ttl_expiry(redis_server: RedisServer) -> None:
    cache = RedisCache(redis_server.url, ttl_s=0.05)
    try:
        await cache.set_many([("a", _outcome(1))])
        deadline = time.monotonic() + 5
        while (await cache.get_many(["a"]))[0] is not None:
            assert time.monotonic() < deadline, "entry never expired"
            await asyncio.sleep(0.02)
    finally:
        await cache.aclose()


async def test_error_is_never_cached(cache: RedisCache, raw: aioredis.Redis) -> None:
    await cache.set_many([("e", Outcome.error("repl_crashed"))])
    assert await raw.dbsize() == 0
    await cache.set_many([("e", Outcome.error("repl_crashed")), ("v", _outcome(1))])
    assert await raw.exists("e") == 0
    assert await cache.get_many(["e", "v"]) == [None, _outcome(1)]


async def test_timeout_keeps_its_budget(cache: RedisCache) -> None:
    await cache.set_many([("t", Outcome.timeout(45.0, time_s=45.3))])
    (cached,) = await cache.get_many(["t"])
    assert cached == Outcome.timeout(45.0, time_s=45.3)


async def test_unreadable_value_is_a_miss(cache: RedisCache, raw: aioredis.Redis) -> None:
    await raw.set("junk", b"\x00not json")
    await raw.set("foreign", b'{"verdict": "maybe"}')
    await cache.set_many([("ok", _outcome(1))])
    assert await cache.get_many(["junk", "foreign", "ok"]) == [None, None, _outcome(1)]
    assert cache.healthy


async def test_unreachable_from_the_start(caplog: pytest.LogCaptureFixture) -> None:
    cache = RedisCache("redis://:secret@127.0.0.1:1/0", backoff_s=60)
    try:
        with caplog.at_level(logging.WARNING, logger="verifier_service.cache.redis"):
            assert await cache.get_many(["a", "b"]) == [None, None]
            await cache.set_many([("a", _outcome(1))])
        assert not cache.healthy
        assert cache.readiness()["cache"].startswith("redis unreachable: ")
        assert "secret" not in caplog.text
        assert not await cache.ping()
    finally:
        await cache.aclose()


async def test_survives_redis_dying_and_reconnects_by_itself(
    redis_server: RedisServer, cache: RedisCache, caplog: pytest.LogCaptureFixture
) -> None:
    await cache.set_many([("before", _outcome(1))])
    assert await cache.get_many(["before"]) == [_outcome(1)]

    redis_server.stop()
    with caplog.at_level(logging.WARNING, logger="verifier_service.cache.redis"):
        for _ in range(5):
            assert await cache.get_many(["before", "other"]) == [None, None]
            await cache.set_many([("during", _outcome(2))])  # dropped, never raises
        assert not cache.healthy
        assert set(cache.readiness()) == {"cache"}
        assert cache.readiness()["cache"].startswith("redis unreachable: ")
        down_logs = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(down_logs) == 1, "the outage must be logged once, not per request"

        redis_server.start()  # same port, empty (no persistence in tests)
        deadline = time.monotonic() + 10
        while not cache.healthy:
            assert time.monotonic() < deadline, "cache never reconnected"
            await cache.get_many(["probe"])  # requests trigger the background probe
            await asyncio.sleep(0.05)
        assert any("reachable again" in r.getMessage() for r in caplog.records)

    assert cache.readiness() == {}
    await cache.set_many([("after", _outcome(3))])
    assert await cache.get_many(["after", "during"]) == [_outcome(3), None]


async def test_ping_reports_and_restores_health(
    redis_server: RedisServer, cache: RedisCache
) -> None:
    assert await cache.ping()
    redis_server.stop()
    assert not await cache.ping()
    assert not cache.healthy
    redis_server.start()
    assert await cache.ping()
    assert cache.healthy
