"""POST /verify: the contract, its error statuses, caching and de-duplication over HTTP."""

from __future__ import annotations

import asyncio

import pytest

from tests.verifier.api.conftest import MakeClient, proof
from tests.verifier.service.fakes import FakeChecker
from verifier_service.api.schemas import VerifyResponse

RESULT_KEYS = {"id", "verdict", "reasons", "messages", "axioms", "cached", "time_s"}


async def test_contract_shape_order_and_ids(make_client: MakeClient):
    client, _ = await make_client()
    body = {
        "proofs": [
            proof("p1", "ok", header="import Mathlib", timeout_s=30),
            proof("p2", "wrong"),
            proof("p1", "cheat"),
        ],
        "policy": {"allow_sorry": False, "axioms": ["propext", "Classical.choice", "Quot.sound"]},
    }
    response = await client.post("/verify", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    VerifyResponse.model_validate(data)  # the documented schema is the one served
    assert set(data) == {"results", "checker_versions"}
    assert data["checker_versions"] == {"fake": "fake-1"}
    results = data["results"]
    assert [r["id"] for r in results] == ["p1", "p2", "p1"]
    assert all(set(r) == RESULT_KEYS for r in results)
    assert [r["verdict"] for r in results] == ["valid", "invalid", "invalid"]
    assert results[0]["axioms"] == ["propext"]
    assert results[1]["reasons"] == ["lean_error"]
    assert results[1]["messages"][0]["severity"] == "error"
    assert results[2]["reasons"] == ["forbidden_axiom:cheat"]
    assert all(r["cached"] is False and r["time_s"] >= 0 for r in results)


async def test_policy_reaches_the_checker(make_client: MakeClient):
    client, _ = await make_client()
    strict = await client.post("/verify", json={"proofs": [proof("a", "sorry")]})
    lenient = await client.post(
        "/verify", json={"proofs": [proof("a", "sorry")], "policy": {"allow_sorry": True}}
    )
    assert strict.json()["results"][0]["verdict"] == "invalid"
    assert lenient.json()["results"][0]["verdict"] == "valid"


async def test_empty_batch_is_an_empty_answer(make_client: MakeClient):
    client, _ = await make_client()
    response = await client.post("/verify", json={"proofs": []})
    assert response.status_code == 200
    assert response.json() == {"results": [], "checker_versions": {}}


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"proofs": [{"id": "a", "checker": "fake"}]}, ["body", "proofs", 0, "code"]),
        ({"proofs": [proof("a", "ok", timeout_s=-1)]}, ["body", "proofs", 0, "timeout_s"]),
        ({"proofs": [proof("a", "ok", timeout="5")]}, ["body", "proofs", 0, "timeout"]),
        ({"proofs": [proof("a", "ok"), proof("b", "  ")]}, ["body", "proofs", 1, "code"]),
        ({"proofs": [proof("a", "ok", checker="coq")]}, ["body", "proofs", 0, "checker"]),
        ({"proofs": [proof("a", "ok", timeout_s=100_000)]}, ["body", "proofs", 0, "timeout_s"]),
        (
            {"proofs": [proof("a", "ok")], "policy": {"axioms": "propext"}},
            ["body", "policy", "axioms"],
        ),
        ({"proofs": [proof(7, "ok")]}, ["body", "proofs", 0, "id"]),
        ({"proof": []}, ["body", "proofs"]),
    ],
)
async def test_malformed_requests_are_422_naming_the_field(
    make_client: MakeClient, body: dict, loc: list
):
    client, _ = await make_client()
    response = await client.post("/verify", json=body)
    assert response.status_code == 422, response.text
    locs = [d["loc"] for d in response.json()["detail"]]
    assert loc in locs
    assert all("input" not in d for d in response.json()["detail"])


async def test_invalid_input_from_prepare_runs_nothing(make_client: MakeClient):
    checker = FakeChecker()
    client, _ = await make_client(checkers={"fake": checker})
    response = await client.post("/verify", json={"proofs": [proof("a", "ok"), proof("b", "")]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "invalid_input"
    assert checker.calls == []


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"", "application/json"),
        (b"\xff\xfe\x00", "application/json"),
        (b"proofs=1", "application/x-www-form-urlencoded"),
        (b'{"proofs": []}', "text/plain"),
        (b"[1, 2]", "application/json"),
    ],
)
async def test_bodies_that_are_not_a_json_request_are_json_errors(
    make_client: MakeClient, content: bytes, content_type: str
):
    client, _ = await make_client()
    response = await client.post("/verify", content=content, headers={"content-type": content_type})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert detail and all(set(d) == {"loc", "msg", "type"} for d in detail)
    assert detail[0]["loc"][0] == "body"


async def test_a_body_without_content_type_is_not_read_as_json(make_client: MakeClient):
    # FastAPI's routes are strict about the content type; the strict body parser must agree, so
    # such a body is refused alike whether or not it happens to parse, and never parsed for naught.
    client, _ = await make_client()
    types = set()
    for content in (b'{"proofs": []}', b"{not json", b'{"proofs": ["\\ud800"]}'):
        response = await client.post("/verify", content=content)
        assert "content-type" not in response.request.headers
        assert response.status_code == 422, response.text
        (detail,) = response.json()["detail"]
        assert detail["loc"] == ["body"]
        types.add(detail["type"])
    assert types == {"model_attributes_type"}


async def test_batch_above_max_batch_size_is_413(make_client: MakeClient):
    client, _ = await make_client(max_batch_size=3)
    body = {"proofs": [proof(str(i), f"ok {i}") for i in range(4)]}
    response = await client.post("/verify", json=body)
    assert response.status_code == 413
    assert response.json()["detail"][0]["loc"] == ["body", "proofs"]


async def test_proof_above_max_code_bytes_is_413_naming_it(make_client: MakeClient):
    client, _ = await make_client(max_code_bytes=64)
    body = {"proofs": [proof("a", "ok"), proof("b", "y" * 40, header="x" * 40)]}
    response = await client.post("/verify", json=body)
    assert response.status_code == 413
    assert response.json()["detail"][0]["loc"] == ["body", "proofs", 1, "code"]


async def test_body_above_max_body_bytes_is_413_before_it_is_parsed(make_client: MakeClient):
    checker = FakeChecker()
    client, _ = await make_client(checkers={"fake": checker}, max_body_bytes=2_000)
    big = {"proofs": [proof(str(i), "x" * 100) for i in range(40)]}
    declared = await client.post("/verify", json=big)

    async def chunks():  # no Content-Length: counted as it streams in
        for _ in range(10):
            yield b" " * 500

    streamed = await client.post(
        "/verify", content=chunks(), headers={"content-type": "application/json"}
    )
    small = await client.post("/verify", json={"proofs": [proof("a", "x")]})
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json()["detail"][0]["loc"] == ["body"]
    assert checker.calls == ["x"] and small.status_code == 200


async def test_full_queue_is_429_with_retry_after(make_client: MakeClient):
    checker = FakeChecker()
    checker.release = asyncio.Event()
    client, _ = await make_client(checkers={"fake": checker}, max_pending=2, retry_after_s=3)
    busy = asyncio.create_task(
        client.post("/verify", json={"proofs": [proof("a", "one"), proof("b", "two")]})
    )
    await asyncio.sleep(0.05)
    refused = await client.post("/verify", json={"proofs": [proof("c", "three")]})
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "3"
    assert refused.json()["detail"][0]["type"] == "queue_full"
    checker.release.set()
    assert (await busy).status_code == 200
    again = await client.post("/verify", json={"proofs": [proof("c", "three")]})
    assert again.status_code == 200


async def test_identical_proofs_are_checked_once_within_and_across_requests(
    make_client: MakeClient,
):
    checker = FakeChecker()
    checker.release = asyncio.Event()
    client, _ = await make_client(checkers={"fake": checker})
    body = {"proofs": [proof("a", "same"), proof("b", "same")]}
    first = asyncio.create_task(client.post("/verify", json=body))
    second = asyncio.create_task(client.post("/verify", json=body))
    await asyncio.sleep(0.05)
    checker.release.set()
    responses = await asyncio.gather(first, second)
    assert checker.calls == ["same"]
    for response in responses:
        assert [r["verdict"] for r in response.json()["results"]] == ["valid", "valid"]
        assert [r["id"] for r in response.json()["results"]] == ["a", "b"]


async def test_an_exception_in_one_check_fails_only_that_item(make_client: MakeClient):
    client, _ = await make_client()
    body = {"proofs": [proof("a", "ok"), proof("b", "boom"), proof("c", "wrong")]}
    results = (await client.post("/verify", json=body)).json()["results"]
    assert [r["verdict"] for r in results] == ["valid", "error", "invalid"]
    assert results[1]["reasons"] == ["checker_exception:RuntimeError"]


async def test_second_request_is_cached_with_original_time(make_client: MakeClient):
    checker = FakeChecker(delay=0.01)
    client, _ = await make_client(checkers={"fake": checker})
    body = {"proofs": [proof("a", "ok"), proof("b", "flaky")]}
    first = (await client.post("/verify", json=body)).json()["results"]
    second = (await client.post("/verify", json=body)).json()["results"]
    assert [r["cached"] for r in first] == [False, False]
    assert [r["cached"] for r in second] == [True, False]  # errors are never cached
    assert second[0]["time_s"] == first[0]["time_s"]
    assert checker.calls == ["ok", "flaky", "flaky"]


async def test_openapi_schema_documents_the_contract(make_client: MakeClient):
    client, _ = await make_client(api_keys=["k"])
    schema = (await client.get("/openapi.json")).json()
    assert {"/verify", "/api/check", "/health", "/ready", "/metrics"} <= set(schema["paths"])
    verify = schema["paths"]["/verify"]["post"]
    assert {"200", "413", "422", "429", "401"} <= set(verify["responses"])
    components = schema["components"]["schemas"]
    assert {"id", "checker", "code", "timeout_s"} <= set(components["ProofIn"]["properties"])
    assert components["VerifyRequest"]["examples"][0]["proofs"][0]["id"] == "p1"
    assert "HTTPBearer" in schema["components"]["securitySchemes"]


async def test_a_checker_not_enabled_here_says_how_to_enable_it(make_client: MakeClient):
    client, _ = await make_client()  # the fake checker only: no Lean configured
    lean = await client.post("/verify", json={"proofs": [proof("a", "ok", checker="lean4")]})
    coq = await client.post("/verify", json={"proofs": [proof("a", "ok", checker="coq")]})
    for response in (lean, coq):
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "proofs", 0, "checker"]
    lean_msg = lean.json()["detail"][0]["msg"]
    assert "'lean4' is not enabled on this deployment" in lean_msg
    assert "SIEVE_LEAN_REPL" in lean_msg and "enabled: fake" in lean_msg
    coq_msg = coq.json()["detail"][0]["msg"]
    assert coq_msg == "unknown checker 'coq'; enabled: fake"
    kimina = await client.post("/api/check", json={"snippets": [{"id": "a", "code": "x"}]})
    assert kimina.status_code == 503
    assert "SIEVE_LEAN_REPL" in kimina.json()["detail"][0]["msg"]


async def test_routing_errors_have_the_same_shape(make_client: MakeClient):
    client, _ = await make_client()
    missing = await client.get("/nope")
    wrong_method = await client.get("/verify")
    assert missing.status_code == 404
    assert missing.json()["detail"][0]["type"] == "not_found"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["detail"][0]["type"] == "method_not_allowed"
    assert wrong_method.headers["allow"] == "POST"
