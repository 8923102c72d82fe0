"""VerifierClient against an in-process fake server, on the sync and the async path."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections import deque

import pytest

from tests.trainer.client.fake_server import FakeVerifier, proofs, verdict_for
from trainer_client.client import VerificationError, VerifierClient, VerifyResult, _retry_after

MODES = ["sync", "async"]


def make_client(fake: FakeVerifier, urls="http://verifier", **kwargs) -> VerifierClient:
    kwargs.setdefault("backoff_s", 0.001)
    kwargs.setdefault("max_backoff_s", 0.01)
    return VerifierClient(
        urls, transport=fake.transport(), async_transport=fake.async_transport(), **kwargs
    )


async def run(client: VerifierClient, items: list[dict], mode: str) -> list[VerifyResult]:
    if mode == "sync":
        # Called from inside a running event loop on purpose: the sync path must not care.
        return client.verify(items)
    return await client.averify(items)


def expected(items: list[dict]) -> list[tuple[str, str]]:
    return [(p["id"], verdict_for(p)) for p in items]


@pytest.mark.parametrize("mode", MODES)
async def test_chunks_keep_input_order_and_ids(mode):
    fake = FakeVerifier(reverse=True, delays={"p0": 0.05})  # first chunk finishes last
    items = proofs(10)
    with make_client(fake, max_batch=4) as client:
        results = await run(client, items, mode)
    assert [(r.id, r.verdict) for r in results] == expected(items)
    assert sorted(len(r["body"]["proofs"]) for r in fake.requests) == [2, 4, 4]
    assert client.stats["requests"] == 3
    assert client.stats["proofs"] == 10


@pytest.mark.parametrize("mode", MODES)
async def test_empty_batch_sends_nothing(mode):
    fake = FakeVerifier()
    client = make_client(fake)
    assert await run(client, [], mode) == []
    assert fake.requests == []


@pytest.mark.parametrize("mode", MODES)
async def test_connection_error_is_retried(mode):
    fake = FakeVerifier(faults=deque(["connect", "connect"]))
    items = proofs(3)
    client = make_client(fake)
    results = await run(client, items, mode)
    assert [(r.id, r.verdict) for r in results] == expected(items)
    assert client.stats["retries"] == 2
    assert client.stats["errors"] == 0
    assert len(fake.requests) == 3


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("status", ["429", "503"])
async def test_busy_server_is_retried_honouring_retry_after(mode, status):
    fake = FakeVerifier(faults=deque([status]), retry_after="0.05")
    items = proofs(2)
    client = make_client(fake)
    results = await run(client, items, mode)
    assert [r.verdict for r in results] == [verdict_for(p) for p in items]
    assert client.stats["retries"] == 1
    # The wait came from Retry-After, not from the (much shorter) exponential backoff.
    assert client.stats["seconds_waiting"] == pytest.approx(0.05)


@pytest.mark.parametrize("mode", MODES)
async def test_persistent_503_gives_error_results_not_an_exception(mode):
    fake = FakeVerifier(faults=deque(["503"] * 10))
    items = proofs(4)
    client = make_client(fake, retries=2)
    results = await run(client, items, mode)
    assert [r.id for r in results] == [p["id"] for p in items]
    assert all(r.verdict == "error" and r.failed and not r.ok for r in results)
    assert all(r.reasons == ["client:http_503"] for r in results)
    assert len(fake.requests) == 3  # first try + 2 retries
    assert client.stats["errors"] == 4


@pytest.mark.parametrize("mode", MODES)
async def test_failure_of_one_chunk_leaves_the_others_alone(mode):
    fake = FakeVerifier(faults=deque(["500"]), reverse=False)
    items = proofs(6)
    client = make_client(fake, max_batch=3, max_concurrency=1)
    results = await run(client, items, mode)
    failed = [r for r in results if r.failed and r.reasons[0].startswith("client:")]
    assert len(failed) == 3
    assert failed[0].reasons[0].startswith("client:http_500")
    assert len(fake.requests) == 2  # a 500 is not retried
    good = [r for r in results if r not in failed]
    assert [(r.id, r.verdict) for r in good] == [
        (p["id"], verdict_for(p)) for p in items if p["id"] in {r.id for r in good}
    ]


@pytest.mark.parametrize("mode", MODES)
async def test_slow_response_past_the_timeout_is_an_error(mode):
    fake = FakeVerifier(faults=deque(["slow"] * 3), slow_s=1.0)
    client = make_client(fake, timeout_s=0.05, retries=1)
    results = await run(client, proofs(2), mode)
    assert [r.reasons for r in results] == [["client:timeout"]] * 2
    assert len(fake.requests) == 2


@pytest.mark.parametrize("mode", MODES)
async def test_chunks_spread_round_robin_over_base_urls(mode):
    fake = FakeVerifier()
    urls = ["http://a:1", "http://b:1", "http://c:1"]
    client = make_client(fake, urls=urls, max_batch=1, max_concurrency=1)
    await run(client, proofs(6), mode)
    hosts = [r["host"] for r in fake.requests]
    assert sorted(hosts) == ["a", "a", "b", "b", "c", "c"]
    assert all(r["path"] == "/verify" for r in fake.requests)


@pytest.mark.parametrize("mode", MODES)
async def test_connection_error_fails_over_to_the_next_url(mode):
    fake = FakeVerifier(faults=deque(["connect"]))
    client = make_client(fake, urls=["http://a:1", "http://b:1/"])
    results = await run(client, proofs(3), mode)
    assert [r["host"] for r in fake.requests] == ["a", "b"]
    assert not any(r.failed and r.reasons[0].startswith("client:") for r in results)
    assert client.stats["failovers"] == 1


@pytest.mark.parametrize("mode", MODES)
async def test_413_halves_the_chunk(mode):
    fake = FakeVerifier(max_batch=3)
    items = proofs(8)
    client = make_client(fake, max_batch=8)
    results = await run(client, items, mode)
    assert [(r.id, r.verdict) for r in results] == expected(items)
    answered = [len(r["body"]["proofs"]) for r in fake.requests if len(r["body"]["proofs"]) <= 3]
    assert sum(answered) == 8
    assert client.stats["split_chunks"] >= 3  # 8 -> 4+4 -> 2+2+2+2


@pytest.mark.parametrize("mode", MODES)
async def test_items_the_server_refuses_are_settled_alone(mode):
    fake = FakeVerifier(reverse=False)
    items = proofs(7)
    items[1]["code"] = ""  # the policy wrote nothing: a wrong answer
    items[3]["code"] = "huge" * 10  # the policy wrote too much: a wrong answer
    items[5]["header"] = "bad"  # the data is at fault: not the policy's doing
    client = make_client(fake)
    results = await run(client, items, mode)
    assert [r.id for r in results] == [p["id"] for p in items]
    assert results[1].verdict == "invalid"
    assert results[1].reasons == ["rejected:code: the answer is empty"]
    assert results[3].verdict == "invalid"
    assert results[5].failed
    assert results[5].reasons == ["client:rejected:header: unknown import"]
    for i in (0, 2, 4, 6):
        assert results[i].verdict == verdict_for(items[i])
    assert len(fake.requests) == 4  # each refusal costs one round trip, nothing more
    assert client.stats["errors"] == 1


@pytest.mark.parametrize("mode", MODES)
async def test_a_chunk_of_only_refused_items_sends_nothing_more(mode):
    fake = FakeVerifier()
    items = [{"id": "a", "checker": "math", "code": "", "answer": "1"}]
    client = make_client(fake)
    results = await run(client, items, mode)
    assert results[0].verdict == "invalid"
    assert len(fake.requests) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_bad_responses_become_error_results(mode):
    fake = FakeVerifier(faults=deque(["garbage"]))
    client = make_client(fake)
    results = await run(client, proofs(2), mode)
    assert all(r.reasons[0].startswith("client:bad_response") for r in results)


@pytest.mark.parametrize("mode", MODES)
async def test_missing_result_is_an_error_for_that_proof_only(mode):
    fake = FakeVerifier()
    original = fake._answer

    def drop_first(request, fault, body):
        response = original(request, fault, body)
        payload = response.json()
        payload["results"] = [r for r in payload["results"] if r["id"] != "p0"]
        return type(response)(200, json=payload)

    fake._answer = drop_first
    client = make_client(fake)
    results = await run(client, proofs(3), mode)
    assert results[0].reasons == ["client:missing_result"]
    assert [r.verdict for r in results[1:]] == ["invalid", "error"]
    assert results[2].reasons == ["fake"]  # a server-side error verdict, passed through


@pytest.mark.parametrize("mode", MODES)
async def test_raise_on_error(mode):
    fake = FakeVerifier(faults=deque(["503"] * 5))
    client = make_client(fake, retries=1, raise_on_error=True)
    with pytest.raises(VerificationError) as info:
        await run(client, proofs(2), mode)
    assert info.value.what == "client:http_503"
    assert len(info.value.results) == 2


@pytest.mark.parametrize("mode", MODES)
async def test_concurrency_is_bounded(mode):
    items = proofs(8)
    fake = FakeVerifier(delays={p["id"]: 0.02 for p in items})
    client = make_client(fake, max_batch=1, max_concurrency=3)
    results = await run(client, items, mode)
    assert len(results) == 8
    assert 1 <= fake.max_in_flight <= 3


@pytest.mark.parametrize("mode", MODES)
async def test_api_key_and_policy_are_sent(mode):
    fake = FakeVerifier()
    policy = {"allow_sorry": False, "axioms": ["propext"]}
    client = make_client(fake, api_key="s3cret", policy=policy)
    await run(client, proofs(1), mode)
    assert fake.requests[0]["auth"] == "Bearer s3cret"
    assert fake.requests[0]["body"]["policy"] == policy


def test_server_error_verdicts_are_failed_but_not_client_errors():
    fake = FakeVerifier()
    client = make_client(fake)
    results = client.verify(proofs(3))
    assert [r.failed for r in results] == [False, False, True]
    assert client.stats["server_errors"] == 1
    assert client.stats["errors"] == 0


def test_non_string_ids_are_sent_and_returned_as_strings():
    fake = FakeVerifier()
    client = make_client(fake)
    results = client.verify([{"id": 7, "checker": "math", "code": "valid", "answer": "1"}])
    assert results[0].id == "7"
    assert fake.requests[0]["body"]["proofs"][0]["id"] == "7"


@pytest.mark.parametrize(
    ("proof", "field"),
    [
        ({"checker": "math", "code": "x"}, r"proofs\[1\]\.id"),
        ({"id": "b", "code": "x"}, r"proofs\[1\]\.checker"),
        ({"id": "b", "checker": "math"}, r"proofs\[1\]\.code"),
        ({"id": "a", "checker": "math", "code": "x"}, r"proofs\[1\]\.id: duplicate"),
    ],
)
def test_bad_input_names_the_field(proof, field):
    client = make_client(FakeVerifier())
    with pytest.raises(ValueError, match=field):
        client.verify([{"id": "a", "checker": "math", "code": "x"}, proof])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"base_urls": []}, "base_urls"),
        ({"base_urls": "http://x", "max_batch": 0}, "max_batch"),
        ({"base_urls": "http://x", "max_concurrency": 0}, "max_concurrency"),
        ({"base_urls": "http://x", "retries": -1}, "retries"),
        ({"base_urls": "http://x", "timeout_s": 0}, "timeout_s"),
    ],
)
def test_bad_settings_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        VerifierClient(**kwargs)


def test_averify_works_across_event_loops():
    fake = FakeVerifier()
    client = make_client(fake)
    first = asyncio.run(client.averify(proofs(2)))
    second = asyncio.run(client.averify(proofs(2, prefix="q")))
    assert [r.id for r in first] == ["p0", "p1"]
    assert [r.id for r in second] == ["q0", "q1"]


async def test_async_context_manager_closes():
    fake = FakeVerifier()
    async with make_client(fake) as client:
        await client.averify(proofs(1))
        assert client._aclient is not None
    assert client._aclient is None


def test_retry_after_parsing():
    assert _retry_after("3") == 3.0
    assert _retry_after(" 0.5 ") == 0.5
    assert _retry_after("-2") == 0.0
    assert _retry_after(None) is None
    assert _retry_after("soon") is None
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= _retry_after(future) <= 31


def test_comma_separated_urls_are_several_base_urls():
    client = VerifierClient("http://a:8000/, http://b:8000")
    assert client.base_urls == ["http://a:8000", "http://b:8000"]
    client.close()
    with pytest.raises(ValueError, match="base_urls"):
        VerifierClient("http://a:8000,,")
