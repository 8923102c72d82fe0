"""VerificationService without HTTP: ordering, caching, de-duplication, admission, faults."""

from __future__ import annotations

import asyncio

import pytest

from tests.verifier.service.fakes import BrokenCache, FakeChecker
from verifier_service.cache import MemoryCache
from verifier_service.checkers.base import Checker, Policy
from verifier_service.service import (
    BatchTooLarge,
    InvalidItem,
    ProofItem,
    QueueFull,
    QuotaExceeded,
    VerificationService,
)
from verifier_service.settings import VerifierSettings
from verifier_service.verdicts import Verdict


def make_settings(**overrides: object) -> VerifierSettings:
    return VerifierSettings(checkers=["fake"], **overrides)


def make_service(
    checker: Checker | None = None, cache: object | None = None, **overrides: object
) -> VerificationService:
    checker = checker if checker is not None else FakeChecker()
    return VerificationService(
        {checker.name: checker},
        MemoryCache() if cache is None else cache,
        settings=make_settings(**overrides),
    )


def item(pid: str, code: str, **kw: object) -> ProofItem:
    return ProofItem(id=pid, code=code, checker="fake", **kw)


async def test_results_follow_request_order_and_ids():
    service = make_service()
    items = [item("a", "ok 1"), item("b", "wrong 2"), item("a", "sorry 3"), item("c", "loop")]
    results = await service.verify(items)
    assert [r.id for r in results] == ["a", "b", "a", "c"]
    assert [r.outcome.verdict for r in results] == [
        Verdict.VALID,
        Verdict.INVALID,
        Verdict.INVALID,
        Verdict.TIMEOUT,
    ]
    assert results[2].outcome.reasons == ["sorry"]
    assert all(r.cached is False for r in results)
    assert all(r.outcome.time_s >= 0 for r in results)


async def test_identical_proofs_in_one_batch_are_checked_once():
    checker = FakeChecker()
    service = make_service(checker)
    results = await service.verify([item("x", "same"), item("y", "same"), item("z", "other")])
    assert sorted(checker.calls) == ["other", "same"]
    assert [r.id for r in results] == ["x", "y", "z"]
    assert results[0].outcome.verdict is results[1].outcome.verdict is Verdict.VALID
    joins = service.metrics.registry.get_sample_value(
        "sieve_dedup_joins_total", {"checker": "fake"}
    )
    assert joins == 1


async def test_identical_proofs_across_concurrent_requests_are_checked_once():
    checker = FakeChecker()
    checker.release = asyncio.Event()
    service = make_service(checker)
    first = asyncio.create_task(service.verify([item("a", "shared")]))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(service.verify([item("b", "shared")]))
    await asyncio.sleep(0.01)
    checker.release.set()
    r1, r2 = await asyncio.gather(first, second)
    assert checker.calls == ["shared"]
    assert r1[0].outcome.verdict is Verdict.VALID and r2[0].outcome.verdict is Verdict.VALID
    assert r2[0].id == "b"


async def test_a_cancelled_owner_does_not_strand_joiners_and_still_caches():
    checker = FakeChecker()
    checker.release = asyncio.Event()
    cache = MemoryCache()
    service = make_service(checker, cache)
    owner = asyncio.create_task(service.verify([item("a", "shared")]))
    await asyncio.sleep(0.01)
    joiner = asyncio.create_task(service.verify([item("b", "shared")]))
    await asyncio.sleep(0.01)
    owner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await owner
    checker.release.set()
    (result,) = await asyncio.wait_for(joiner, 5)
    assert result.outcome.verdict is Verdict.VALID
    await asyncio.sleep(0.01)  # the cancelled owner's write-back runs in the background
    again = await service.verify([item("c", "shared")])
    assert again[0].cached is True
    assert checker.calls == ["shared"]


async def test_an_exception_in_one_check_only_fails_that_item():
    service = make_service()
    results = await service.verify([item("a", "ok"), item("b", "boom"), item("c", "ok 2")])
    assert [r.outcome.verdict for r in results] == [Verdict.VALID, Verdict.ERROR, Verdict.VALID]
    assert results[1].outcome.reasons == ["checker_exception:RuntimeError"]


async def test_second_request_is_answered_from_cache_with_original_time():
    checker = FakeChecker(delay=0.02)
    service = make_service(checker)
    (first,) = await service.verify([item("a", "ok")])
    (second,) = await service.verify([item("b", "ok")])
    assert (first.cached, second.cached) == (False, True)
    assert second.id == "b"
    assert second.outcome.time_s == pytest.approx(first.outcome.time_s)
    assert first.outcome.time_s >= 0.02
    assert checker.calls == ["ok"]
    registry = service.metrics.registry
    assert registry.get_sample_value("sieve_cache_hits_total", {"checker": "fake"}) == 1
    assert registry.get_sample_value("sieve_cache_misses_total", {"checker": "fake"}) == 1


async def test_policy_is_part_of_the_cache_key():
    checker = FakeChecker()
    service = make_service(checker)
    strict = await service.verify([item("a", "sorry")])
    lenient = await service.verify([item("a", "sorry")], Policy(allow_sorry=True))
    assert strict[0].outcome.verdict is Verdict.INVALID
    assert lenient[0].outcome.verdict is Verdict.VALID
    assert lenient[0].cached is False


async def test_cached_timeout_answers_only_budgets_not_larger():
    checker = FakeChecker()
    service = make_service(checker)
    (first,) = await service.verify([item("a", "loop", timeout_s=2.0)])
    assert first.outcome.verdict is Verdict.TIMEOUT
    (smaller,) = await service.verify([item("a", "loop", timeout_s=1.0)])
    assert smaller.cached is True and smaller.outcome.verdict is Verdict.TIMEOUT
    (larger,) = await service.verify([item("a", "loop", timeout_s=5.0)])
    assert larger.cached is False
    assert len(checker.calls) == 2


async def test_errors_are_never_cached():
    checker = FakeChecker()
    service = make_service(checker)
    await service.verify([item("a", "flaky")])
    (again,) = await service.verify([item("a", "flaky")])
    assert again.cached is False and again.outcome.verdict is Verdict.ERROR
    assert checker.calls == ["flaky", "flaky"]


async def test_invalid_input_raises_before_anything_runs():
    checker = FakeChecker()
    service = make_service(checker)
    with pytest.raises(InvalidItem) as info:
        await service.verify([item("a", "ok"), item("b", "   ")])
    assert (info.value.index, info.value.field) == (1, "code")
    assert checker.calls == []


@pytest.mark.parametrize(
    ("proof", "field"),
    [
        (ProofItem(id="a", code="ok", checker="nope"), "checker"),
        (ProofItem(id="a", code="ok", checker="fake", timeout_s=10_000), "timeout_s"),
        (ProofItem(id="a", code="x := 1", checker="fake", statement="theorem t"), "statement"),
    ],
)
async def test_bad_items_name_their_field(proof: ProofItem, field: str):
    service = make_service()
    with pytest.raises(InvalidItem) as info:
        await service.verify([proof])
    assert info.value.field == field
    assert info.value.index == 0


async def test_batch_and_code_size_limits():
    service = make_service(max_batch_size=2, max_code_bytes=10)
    with pytest.raises(BatchTooLarge) as batch:
        await service.verify([item(str(i), "ok") for i in range(3)])
    assert batch.value.loc == ("body", "proofs")
    with pytest.raises(BatchTooLarge) as code:
        await service.verify([item("a", "ok"), item("b", "x" * 11)])
    assert code.value.loc == ("body", "proofs", 1, "code")


async def test_queue_full_refuses_new_work_but_not_cached_work():
    checker = FakeChecker()
    service = make_service(checker, max_pending=2, retry_after_s=7)
    await service.verify([item("c", "cached one")])
    checker.release = asyncio.Event()
    busy = asyncio.create_task(service.verify([item("a", "one"), item("b", "two")]))
    await asyncio.sleep(0.01)
    assert service.pending == 2
    with pytest.raises(QueueFull) as info:
        await service.verify([item("d", "three")])
    assert info.value.retry_after_s == 7
    (cached,) = await service.verify([item("c", "cached one")])
    assert cached.cached is True
    joined = asyncio.create_task(service.verify([item("e", "one")]))  # joins: costs no slot
    await asyncio.sleep(0.01)
    checker.release.set()
    await busy
    assert (await joined)[0].outcome.verdict is Verdict.VALID
    assert service.pending == 0
    rejected = service.metrics.registry.get_sample_value(
        "sieve_rejected_requests_total", {"reason": "queue_full"}
    )
    assert rejected == 1


async def test_a_batch_larger_than_the_queue_is_too_large_not_retryable():
    service = make_service(max_pending=1)
    with pytest.raises(BatchTooLarge):
        await service.verify([item("a", "one"), item("b", "two")])


def test_the_per_client_quota_defaults_to_a_quarter_of_the_queue_but_one_full_batch():
    assert make_settings().pending_quota == 2500  # 10_000 // 4
    assert make_settings(max_pending=100, max_batch_size=64).pending_quota == 64
    assert make_settings(max_pending_per_key=7).pending_quota == 7
    assert make_settings(max_pending_per_key=0).pending_quota == 0  # off


async def test_a_client_over_its_quota_is_refused_while_others_go_on():
    checker = FakeChecker()
    service = make_service(checker, max_pending=10, max_pending_per_key=2, retry_after_s=4)
    checker.release = asyncio.Event()
    busy = asyncio.create_task(service.verify([item("a", "one"), item("b", "two")], client="k1"))
    await asyncio.sleep(0.01)
    assert (service.pending_of("k1"), service.pending_clients) == (2, 1)
    with pytest.raises(QuotaExceeded) as info:
        await service.verify([item("c", "three")], client="k1")
    assert info.value.retry_after_s == 4
    assert "max_pending_per_key=2" in str(info.value)
    assert isinstance(info.value, QueueFull)  # the same 429, with its own type
    other = asyncio.create_task(service.verify([item("d", "four")], client="k2"))
    # Joining k1's check adds no work: k1 is not charged for it again, nor is k3.
    joined = asyncio.create_task(service.verify([item("e", "one")], client="k3"))
    library = asyncio.create_task(service.verify([item("f", "five"), item("g", "six")]))
    await asyncio.sleep(0.01)
    assert service.pending_of("k2") == 1 and service.pending_of("k3") == 0
    assert service.pending == 5  # the library caller (client=None) has no quota
    checker.release.set()
    await asyncio.gather(busy, other, joined, library)
    assert service.pending == 0 and service.pending_clients == 0  # state is released
    (again,) = await service.verify([item("c", "three")], client="k1")
    assert again.outcome.verdict is Verdict.VALID
    rejected = service.metrics.registry.get_sample_value(
        "sieve_rejected_requests_total", {"reason": "client_quota"}
    )
    assert rejected == 1


async def test_a_batch_above_the_quota_is_too_large_and_zero_means_no_quota():
    service = make_service(max_pending=100, max_pending_per_key=2)
    with pytest.raises(BatchTooLarge, match="max_pending_per_key=2"):
        await service.verify([item(str(i), f"p {i}") for i in range(3)], client="k")
    unbounded = make_service(max_pending=100, max_pending_per_key=0)
    results = await unbounded.verify([item(str(i), f"p {i}") for i in range(3)], client="k")
    assert len(results) == 3


async def test_per_client_state_is_bounded_in_count_and_bytes():
    checker = FakeChecker()
    checker.release = asyncio.Event()
    service = make_service(checker, max_pending=50, max_pending_per_key=5)
    tasks = [
        asyncio.create_task(service.verify([item("a", f"p {i}")], client=f"addr:{i}" + "x" * 500))
        for i in range(40)
    ]
    await asyncio.sleep(0.02)
    assert service.pending_clients == 40 <= service.pending
    assert max(len(c) for c in service._admission.clients) <= 64
    # Identities are cut to 64 characters: two that agree that far share one bucket.
    assert service.pending_of("addr:1" + "x" * 100) == 1
    checker.release.set()
    await asyncio.gather(*tasks)
    assert service.pending_clients == 0


async def test_concurrency_per_checker_is_bounded():
    checker = FakeChecker(delay=0.02)
    service = VerificationService(
        {"fake": checker}, MemoryCache(), settings=make_settings(), concurrency={"fake": 2}
    )
    await service.verify([item(str(i), f"proof {i}") for i in range(8)])
    assert len(checker.calls) == 8
    assert checker.max_running == 2


async def test_closing_answers_in_flight_checks_with_error():
    checker = FakeChecker()
    checker.release = asyncio.Event()  # never set: the check hangs
    service = make_service(checker)
    pending = asyncio.create_task(service.verify([item("a", "hangs")]))
    await asyncio.sleep(0.01)
    await service.aclose()
    (result,) = await asyncio.wait_for(pending, 5)
    assert result.outcome.verdict is Verdict.ERROR
    assert result.outcome.reasons == ["service_shutting_down"]
    assert checker.closed


class SlowStartChecker(FakeChecker):
    def __init__(self) -> None:
        super().__init__()
        self.go = asyncio.Event()

    async def start(self) -> None:
        await self.go.wait()


class FailingStartChecker(FakeChecker):
    async def start(self) -> None:
        raise OSError("no lean here")


async def test_start_returns_at_once_and_readiness_tracks_it():
    checker = SlowStartChecker()
    service = make_service(checker)
    await asyncio.wait_for(service.start(), 1)
    state = service.readiness()
    assert state["checkers"]["fake"] == {"start": "starting"}
    assert not service.ready(state)
    checker.go.set()
    await service.wait_started()
    assert service.ready(service.readiness())
    await service.aclose()


async def test_a_checker_that_fails_to_start_is_reported_not_ready():
    service = make_service(FailingStartChecker())
    await service.start()
    await service.wait_started()
    state = service.readiness()
    assert "no lean here" in state["checkers"]["fake"]["start"]
    assert not service.ready(state)
    await service.aclose()


async def test_a_failing_cache_is_treated_as_a_miss():
    checker = FakeChecker()
    service = make_service(checker, BrokenCache())
    (first,) = await service.verify([item("a", "ok")])
    (second,) = await service.verify([item("a", "ok")])
    assert first.outcome.verdict is second.outcome.verdict is Verdict.VALID
    assert second.cached is False
    assert checker.calls == ["ok", "ok"]
    assert service.readiness()["cache"] == {"cache": "down"}


async def test_without_a_cache_everything_is_checked():
    checker = FakeChecker()
    service = VerificationService({"fake": checker}, None, settings=make_settings())
    await service.verify([item("a", "ok")])
    (again,) = await service.verify([item("a", "ok")])
    assert again.cached is False
    assert checker.calls == ["ok", "ok"]
    assert service.ready(service.readiness()) is False  # not started yet


async def test_code_size_is_counted_in_utf8_bytes_not_characters():
    service = make_service(max_code_bytes=64)
    with pytest.raises(BatchTooLarge):
        await service.verify([item("a", "ℕ" * 30)])  # 30 characters, 90 bytes
    (fits,) = await service.verify([item("a", "ℕ" * 21)])  # 63 bytes
    assert fits.outcome.verdict is Verdict.VALID


async def test_prepared_jobs_are_memoised_by_their_raw_fields():
    checker = FakeChecker()
    service = make_service(checker)
    await service.verify([item("a", "ok"), item("b", "ok")])
    await service.verify([item("c", "ok")])
    assert checker.prepared == 1
    await service.verify([item("d", "ok", timeout_s=5.0)])  # another budget: another job
    await service.verify([item("e", "ok")], Policy(allow_sorry=True))  # another policy
    assert checker.prepared == 3


async def test_memo_can_be_disabled_and_invalid_input_is_never_memoised():
    checker = FakeChecker()
    service = VerificationService(
        {"fake": checker}, MemoryCache(), settings=make_settings(), prepared_cache_chars=0
    )
    await service.verify([item("a", "ok")])
    await service.verify([item("a", "ok")])
    assert checker.prepared == 2
    for _ in range(2):
        with pytest.raises(InvalidItem):
            await service.verify([item("a", " ")])
    assert checker.prepared == 4


async def test_memo_is_bounded_by_the_characters_it_holds():
    checker = FakeChecker()
    service = VerificationService(
        {"fake": checker}, MemoryCache(), settings=make_settings(), prepared_cache_chars=100
    )
    await service.verify([item("a", "x" * 30)])  # 30 raw + 30 normalised characters
    await service.verify([item("b", "y" * 30)])  # evicts the first
    await service.verify([item("c", "y" * 30), item("d", "x" * 30)])
    assert checker.prepared == 3
    await service.verify([item("e", "z" * 80)])  # larger than the whole memo: not kept
    await service.verify([item("e", "z" * 80)])
    assert checker.prepared == 5


@pytest.mark.parametrize("field", ["id", "code", "header", "statement", "answer"])
async def test_unencodable_text_is_invalid_input_for_library_callers_too(field: str):
    checker = FakeChecker()
    service = make_service(checker)
    fields = {"id": "a", "code": "ok", field: ("ok" if field == "statement" else "x") + "\ud800"}
    with pytest.raises(InvalidItem) as info:
        await service.verify([item("b", "fine"), ProofItem(checker="fake", **fields)])
    assert (info.value.index, info.value.field) == (1, field)
    assert "cannot be encoded" in info.value.message
    assert checker.calls == [] and checker.prepared == 1  # only the good item was prepared


class _ImportingLean(FakeChecker):
    """A ``lean4`` stand-in whose proofs of a ``new`` header wait for their header import."""

    def __init__(self) -> None:
        super().__init__(name="lean4")
        self.imported = asyncio.Event()

    async def check(self, job):
        if job.header == "new":
            await self.imported.wait()
        return await super().check(job)


async def test_lean_proofs_of_a_warm_header_do_not_queue_behind_new_headers():
    # The pool, not a service-wide FIFO of `lean_workers` places, decides who gets a worker:
    # proofs waiting for a new header's import must not hold the places of a warm proof.
    checker = _ImportingLean()
    service = VerificationService(
        {"lean4": checker}, MemoryCache(), settings=VerifierSettings(lean_workers=1)
    )
    new = [ProofItem(id=f"n{i}", code=f"ok {i}", header="new") for i in range(3)]
    churn = asyncio.create_task(service.verify(new))
    await asyncio.sleep(0.05)
    warm = await asyncio.wait_for(
        service.verify([ProofItem(id="w", code="ok warm", header="warm")]), timeout=5
    )
    assert warm[0].outcome.verdict is Verdict.VALID
    assert not churn.done()
    checker.imported.set()
    assert [r.outcome.verdict for r in await churn] == [Verdict.VALID] * 3
