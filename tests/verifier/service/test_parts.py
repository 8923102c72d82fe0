"""The service's parts on their own: the prepared-job memo, the flight table, admission.

``test_service.py`` holds them to the service's behaviour through :class:`VerificationService`;
these pin the contracts the pipeline relies on, which a batch cannot always reach.
"""

from __future__ import annotations

import pytest

from verifier_service.checkers.base import Job, Policy
from verifier_service.metrics import ServiceMetrics
from verifier_service.service import BatchTooLarge, ProofItem, QueueFull, QuotaExceeded
from verifier_service.service.admission import Admission
from verifier_service.service.flights import Flights
from verifier_service.service.memo import PreparedJobs
from verifier_service.settings import VerifierSettings


def _raw(code: str) -> tuple:
    return PreparedJobs.key(ProofItem("x", code, "fake"), "v1", 10.0, Policy())


def test_the_memo_forgets_the_least_recently_used_first():
    memo = PreparedJobs(max_chars=40)
    for code in ("aaaaaaaaaa", "bbbbbbbbbb"):  # 10 characters raw + 10 normalised each
        memo.put(_raw(code), Job("fake", code), f"key-{code}")
    assert memo.get(_raw("aaaaaaaaaa")) is not None  # now the most recently used
    memo.put(_raw("cccccccccc"), Job("fake", "cccccccccc"), "key-c")
    assert memo.get(_raw("bbbbbbbbbb")) is None
    assert memo.get(_raw("aaaaaaaaaa")) == (Job("fake", "aaaaaaaaaa"), "key-aaaaaaaaaa")
    assert (len(memo), memo.chars) == (2, 40)


def test_the_memo_counts_a_key_put_twice_once():
    memo = PreparedJobs(max_chars=1_000)
    for _ in range(3):
        memo.put(_raw("abc"), Job("fake", "abc"), "key")
    assert (len(memo), memo.chars) == (1, 6)


def test_the_memo_key_holds_what_decides_the_job():
    item = ProofItem("x", "code", "fake")
    base = PreparedJobs.key(item, "v1", 10.0, Policy())
    assert PreparedJobs.key(ProofItem("other id", "code", "fake"), "v1", 10.0, Policy()) == base
    assert PreparedJobs.key(item, "v2", 10.0, Policy()) != base
    assert PreparedJobs.key(item, "v1", 20.0, Policy()) != base
    assert PreparedJobs.key(item, "v1", 10.0, Policy(allow_sorry=True)) != base


async def test_a_flight_is_joined_only_with_no_larger_budget():
    flights = Flights()
    short = flights.open("k", 5.0, client="a")
    assert flights.find("k", 5.0) is short and flights.find("k", 1.0) is short
    assert flights.find("k", 6.0) is None and flights.find("other", 1.0) is None
    long = flights.open("k", 60.0)
    assert flights.find("k", 30.0) is long
    flights.retire([short])
    assert flights.find("k", 1.0) is long and len(flights) == 1
    flights.retire([long, long])  # retiring twice is harmless
    assert flights.find("k", 1.0) is None and len(flights) == 0


def _admission(**overrides: object) -> Admission:
    return Admission(VerifierSettings(**overrides), ServiceMetrics())


def test_admission_charges_and_releases_per_client():
    admission = _admission(max_pending=4, max_pending_per_key=2, retry_after_s=3)
    admission.admit(2, "a")
    admission.charge("a")
    admission.charge("a")
    admission.charge(None)  # a library caller counts in the total only
    assert (admission.pending, admission.pending_of("a"), list(admission.clients)) == (3, 2, ["a"])
    with pytest.raises(QuotaExceeded):
        admission.admit(1, "a")
    with pytest.raises(QueueFull) as info:
        admission.admit(2, "b")
    assert type(info.value) is QueueFull and info.value.retry_after_s == 3
    with pytest.raises(BatchTooLarge):
        admission.admit(3, "b")  # over the quota: never admissible, whatever the load
    admission.release("a")
    admission.release("a")
    admission.release(None)
    assert (admission.pending, admission.pending_of("a"), len(admission.clients)) == (0, 0, 0)


def test_admission_cuts_long_identities_when_asked_about_them():
    admission = _admission(max_pending=4)
    admission.charge("x" * 64)
    assert admission.pending_of("x" * 200) == 1
