"""Optional API keys: proof routes need one, operations routes stay open, keys never logged."""

from __future__ import annotations

import logging
import tracemalloc

import pytest

from tests.verifier.api.conftest import MakeClient, proof

KEYS = ["first-key-aaaaaaaa", "second-key-bbbbbbbb"]
BODY = {"proofs": [proof("a", "ok")]}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "x"}])
async def test_proof_routes_refuse_without_a_valid_key(make_client: MakeClient, headers: dict):
    client, _ = await make_client(api_keys=KEYS)
    for path, body in (("/verify", BODY), ("/api/check", {"snippets": [{"id": "a", "code": "x"}]})):
        response = await client.post(path, json=body, headers=headers)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["detail"][0]["type"] == "unauthorized"


@pytest.mark.parametrize("key", KEYS)
async def test_every_configured_key_is_accepted(make_client: MakeClient, key: str):
    client, _ = await make_client(api_keys=KEYS)
    response = await client.post("/verify", json=BODY, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    assert response.json()["results"][0]["verdict"] == "valid"


async def test_kimina_style_token_header_is_accepted(make_client: MakeClient):
    client, _ = await make_client(api_keys=KEYS)
    for value in (KEYS[0], f"Bearer {KEYS[1]}"):
        response = await client.post("/verify", json=BODY, headers={"X-Auth-Token": value})
        assert response.status_code == 200


async def test_operations_routes_stay_open(make_client: MakeClient):
    client, _ = await make_client(api_keys=KEYS)
    assert (await client.get("/health")).status_code == 200
    assert (await client.get("/ready")).status_code == 200
    assert (await client.get("/metrics")).status_code == 200


async def test_no_keys_configured_means_no_authentication(make_client: MakeClient):
    client, _ = await make_client(api_keys=[])
    assert (await client.post("/verify", json=BODY)).status_code == 200


async def test_keys_and_tokens_are_never_logged(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    client, _ = await make_client(api_keys=KEYS)
    presented = "presented-token-zzzzzzzz"
    refused = await client.post("/verify", json=BODY, headers=bearer(presented))
    accepted = await client.post("/verify", json=BODY, headers=bearer(KEYS[0]))
    assert (refused.status_code, accepted.status_code) == (401, 200)
    assert "refused a request" in caplog.text  # the refusal is logged ...
    for secret in [*KEYS, presented]:
        assert secret not in caplog.text  # ... without any key or token
        assert secret not in refused.text


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe", b'{"proofs": "x"}', b"[" * 100_000])
async def test_the_key_is_checked_before_the_body(make_client: MakeClient, content: bytes):
    """A malformed body without a key is 401, not a 422 that describes what the body lacks."""
    client, _ = await make_client(api_keys=KEYS)
    for path in ("/verify", "/api/check"):
        response = await client.post(
            path, content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 401, (path, response.text)
    headers = {"content-type": "application/json", **bearer(KEYS[0])}
    keyed = await client.post("/verify", content=b"{not json", headers=headers)
    assert keyed.status_code == 422


async def test_an_unauthenticated_large_body_is_refused_without_being_read(
    make_client: MakeClient,
):
    client, _ = await make_client(api_keys=KEYS)
    chunk = b" " * (1 << 20)
    pulled = 0

    async def fifty_mib():
        nonlocal pulled
        for _ in range(50):
            pulled += 1
            yield chunk

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        response = await client.post(
            "/verify",
            content=fifty_mib(),
            headers={"content-type": "application/json", "content-length": str(50 << 20)},
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 401
    assert pulled <= 1  # the app never asked for the body (the client may offer one chunk)
    grown_mib = (peak - before) / (1 << 20)
    print(f"unauthenticated 50 MiB body: peak +{grown_mib:.2f} MiB while refused")
    assert grown_mib < 5
    metrics = (await client.get("/metrics")).text
    assert 'sieve_http_requests_total{method="POST",route="/verify",status="401"} 1.0' in metrics


async def test_unknown_paths_need_a_key_too(make_client: MakeClient):
    """Protected by default: a route is open only when listed as such."""
    client, _ = await make_client(api_keys=KEYS)
    assert (await client.get("/nope")).status_code == 401
    assert (await client.get("/nope", headers=bearer(KEYS[0]))).status_code == 404
    for path in ("/openapi.json", "/docs", "/redoc"):
        assert (await client.get(path)).status_code == 200, path


async def test_quota_identity_is_the_key_index_never_the_key(make_client: MakeClient):
    client, app = await make_client(api_keys=KEYS)
    seen: list[str | None] = []
    service = app.state.service
    original = service.verify

    async def spy(items, policy=None, *, client=None):
        seen.append(client)
        return await original(items, policy, client=client)

    service.verify = spy
    await client.post("/verify", json=BODY, headers=bearer(KEYS[1]))
    await client.post("/verify", json=BODY, headers={"X-Auth-Token": KEYS[0]})
    assert seen == ["key#1", "key#0"]


@pytest.mark.parametrize("token", [KEYS[0], KEYS[1], "wrong-key-cccccccc"])
def test_a_token_is_compared_with_every_key_in_constant_time(
    monkeypatch: pytest.MonkeyPatch, token: str
):
    """The manual: keys are compared in constant time; so neither a match nor its position leaks."""
    import hmac

    from verifier_service.api import auth

    compared: list[bytes] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append(b)
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", counting)
    keys = [key.encode() for key in KEYS]
    expected = KEYS.index(token) if token in KEYS else None
    assert auth._match(token, keys) == expected
    assert compared == keys  # every key, in order, whether or not an earlier one matched
