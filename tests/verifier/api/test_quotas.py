"""Per-client quotas on pending proofs over HTTP: 429 naming the quota, one bucket per key."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

import httpx

from tests.verifier.api.conftest import MakeClient, proof
from tests.verifier.service.fakes import FakeChecker

KEYS = ["quota-key-one-aaaa", "quota-key-two-bbbb"]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def running(checker: FakeChecker, checks: int, timeout_s: float = 10.0) -> None:
    """Wait until ``checks`` checks hold their quota, however long admission takes on a loaded
    machine: a request sent before that would be admitted and wait forever for the release."""
    deadline = time.monotonic() + timeout_s
    while checker.running < checks:
        assert time.monotonic() < deadline, f"{checker.running} of {checks} checks started"
        await asyncio.sleep(0.005)


async def answered(request: Awaitable[httpx.Response], timeout_s: float = 10.0) -> httpx.Response:
    """A request that must be refused at once: admitted instead, it would wait for the release
    that comes only after it, so it fails here rather than hanging the test."""
    return await asyncio.wait_for(request, timeout_s)


async def test_a_key_over_its_quota_gets_429_and_other_keys_go_on(make_client: MakeClient):
    checker = FakeChecker()
    checker.release = asyncio.Event()
    client, _ = await make_client(
        checkers={"fake": checker},
        api_keys=KEYS,
        max_pending=100,
        max_pending_per_key=2,
        retry_after_s=6,
    )
    body = {"proofs": [proof("a", "one"), proof("b", "two")]}
    busy = asyncio.create_task(client.post("/verify", json=body, headers=bearer(KEYS[0])))
    await running(checker, 2)
    refused = await answered(
        client.post("/verify", json={"proofs": [proof("c", "three")]}, headers=bearer(KEYS[0]))
    )
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "6"
    (detail,) = refused.json()["detail"]
    assert detail["type"] == "quota_exceeded"
    assert "max_pending_per_key=2" in detail["msg"]
    other = asyncio.create_task(
        client.post("/verify", json={"proofs": [proof("c", "three")]}, headers=bearer(KEYS[1]))
    )
    await asyncio.sleep(0.05)
    checker.release.set()
    assert (await busy).status_code == 200
    assert (await other).status_code == 200


async def test_without_keys_each_client_address_has_its_own_quota(make_client: MakeClient):
    checker = FakeChecker()
    checker.release = asyncio.Event()
    first, app = await make_client(
        checkers={"fake": checker}, max_pending=100, max_pending_per_key=1
    )
    transport = httpx.ASGITransport(app, client=("10.0.0.2", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://sieve") as second:
        busy = asyncio.create_task(first.post("/verify", json={"proofs": [proof("a", "one")]}))
        await running(checker, 1)
        same = await answered(first.post("/verify", json={"proofs": [proof("b", "two")]}))
        elsewhere = asyncio.create_task(
            second.post("/verify", json={"proofs": [proof("b", "two")]})
        )
        await asyncio.sleep(0.05)
        checker.release.set()
        assert same.status_code == 429
        assert (await busy).status_code == (await elsewhere).status_code == 200
    assert app.state.service.pending_clients == 0


async def test_kimina_route_shares_the_quota(make_client: MakeClient):
    checker = FakeChecker(name="lean4")
    checker.release = asyncio.Event()
    client, _ = await make_client(
        checkers={"lean4": checker}, max_pending=100, max_pending_per_key=1
    )
    busy = asyncio.create_task(
        client.post("/api/check", json={"snippets": [{"id": "a", "code": "theorem a := one"}]})
    )
    await running(checker, 1)
    refused = await answered(
        client.post("/api/check", json={"snippets": [{"id": "b", "code": "theorem b := two"}]})
    )
    checker.release.set()
    assert refused.status_code == 429
    assert refused.json()["detail"][0]["type"] == "quota_exceeded"
    assert (await busy).status_code == 200
