"""Optional API keys: proof routes need one, operations routes stay open, keys never logged."""

from __future__ import annotations

import logging

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
