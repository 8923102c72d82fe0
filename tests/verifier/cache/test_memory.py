"""The in-process LRU backend, the shared encoding, ``usable`` and ``build_cache``."""

from __future__ import annotations

import pytest

from verifier_service.cache import MemoryCache, VerdictCache, build_cache, usable
from verifier_service.cache.codec import decode_outcome, encode_outcome
from verifier_service.settings import VerifierSettings
from verifier_service.verdicts import Outcome, Verdict


def _valid(tag: str = "") -> Outcome:
    return Outcome(
        Verdict.VALID,
        messages=[{"severity": "info", "data": tag}],
        axioms=["propext"],
        time_s=0.25,
    )


@pytest.mark.parametrize(
    "outcome",
    [
        _valid("x"),
        Outcome(Verdict.INVALID, ["wrong_answer"], time_s=0.001),
        Outcome(Verdict.VALID, axioms=[]),
        Outcome.timeout(30.0, time_s=30.1),
        Outcome(Verdict.INVALID, ["lean_error"], [{"severity": "error", "data": "ünïcode ∀"}]),
    ],
)
def test_codec_round_trip_keeps_every_field(outcome: Outcome) -> None:
    raw = encode_outcome(outcome)
    assert isinstance(raw, bytes)
    assert decode_outcome(raw) == outcome


def test_codec_keeps_empty_axioms_apart_from_unchecked() -> None:
    assert decode_outcome(encode_outcome(Outcome(Verdict.VALID, axioms=[]))).axioms == []
    assert decode_outcome(encode_outcome(Outcome(Verdict.VALID))).axioms is None


async def test_round_trip_and_misses() -> None:
    cache = MemoryCache(10)
    await cache.set_many([("a", _valid("a")), ("b", Outcome(Verdict.INVALID, ["wrong_answer"]))])
    got = await cache.get_many(["a", "missing", "b"])
    assert got == [_valid("a"), None, Outcome(Verdict.INVALID, ["wrong_answer"])]
    assert cache.backend == "memory"
    assert cache.healthy
    assert cache.readiness() == {}
    assert isinstance(cache, VerdictCache)


async def test_error_is_never_cached() -> None:
    cache = MemoryCache(10)
    await cache.set_many([("e", Outcome.error("worker_crashed")), ("v", _valid())])
    assert await cache.get_many(["e", "v"]) == [None, _valid()]
    assert len(cache) == 1


async def test_timeout_keeps_its_budget() -> None:
    cache = MemoryCache(10)
    await cache.set_many([("t", Outcome.timeout(30.0, time_s=30.2))])
    (cached,) = await cache.get_many(["t"])
    assert cached is not None
    assert cached.verdict is Verdict.TIMEOUT
    assert cached.budget_s == 30.0


async def test_callers_cannot_change_what_is_cached() -> None:
    cache = MemoryCache(10)
    await cache.set_many([("a", _valid())])
    (first,) = await cache.get_many(["a"])
    assert first is not None
    first.reasons.append("edited")
    first.time_s = 99.0
    assert await cache.get_many(["a"]) == [_valid()]


async def test_lru_evicts_least_recently_used() -> None:
    cache = MemoryCache(3)
    await cache.set_many([(key, _valid(key)) for key in ("a", "b", "c")])
    await cache.get_many(["a"])  # "a" is now the most recent; "b" the least
    await cache.set_many([("d", _valid("d"))])
    got = await cache.get_many(["a", "b", "c", "d"])
    assert [outcome is not None for outcome in got] == [True, False, True, True]
    assert len(cache) == 3


async def test_zero_size_caches_nothing() -> None:
    cache = MemoryCache(0)
    await cache.set_many([("a", _valid())])
    assert await cache.get_many(["a"]) == [None]


async def test_ttl_expires_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr("verifier_service.cache.memory.time.monotonic", lambda: clock[0])
    cache = MemoryCache(10, ttl_s=5)
    await cache.set_many([("a", _valid())])
    clock[0] += 4.9
    assert await cache.get_many(["a"]) == [_valid()]
    clock[0] += 0.2
    assert await cache.get_many(["a"]) == [None]
    assert len(cache) == 0


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="cache_size"):
        MemoryCache(-1)
    with pytest.raises(ValueError, match="cache_ttl_s"):
        MemoryCache(1, ttl_s=-1)


@pytest.mark.parametrize(
    ("outcome", "budget_s", "expected"),
    [
        (Outcome(Verdict.VALID), 600.0, True),
        (Outcome(Verdict.INVALID, ["x"]), 600.0, True),
        (Outcome.timeout(60.0), 30.0, True),
        (Outcome.timeout(60.0), 60.0, True),
        (Outcome.timeout(60.0), 120.0, False),
        (Outcome(Verdict.TIMEOUT, ["timeout"]), 1.0, False),  # budget unknown
        (Outcome.error("boom"), 1.0, False),
    ],
)
def test_usable(outcome: Outcome, budget_s: float, expected: bool) -> None:
    assert usable(outcome, budget_s) is expected


async def test_build_cache_picks_the_backend() -> None:
    memory = build_cache(VerifierSettings(redis_url=None, cache_size=7, cache_ttl_s=3))
    assert isinstance(memory, MemoryCache)
    assert (memory.backend, memory.max_entries, memory.ttl_s) == ("memory", 7, 3)
    redis_backed = build_cache(VerifierSettings(redis_url="redis://127.0.0.1:1/0", cache_ttl_s=9))
    assert redis_backed.backend == "redis"
    assert redis_backed.ttl_s == 9  # type: ignore[attr-defined]
    await redis_backed.aclose()
