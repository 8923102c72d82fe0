"""POST /api/check speaks kimina-lean-server's schema, so kimina-client code works unchanged."""

from __future__ import annotations

import pytest

from tests.verifier.api.conftest import MakeClient
from tests.verifier.service.fakes import FakeChecker
from verifier_service.api.kimina import INSTANCE_ID, split_imports
from verifier_service.api.schemas import KiminaCheckResponse


def lean_fake() -> FakeChecker:
    return FakeChecker(name="lean4", version="lean-fake")


def test_split_imports_moves_leading_imports_into_the_header():
    code = "import Mathlib\n\n-- a comment\nimport Aesop\ntheorem t : True := trivial\nimport X"
    header, body = split_imports(code)
    assert header == "import Mathlib\nimport Aesop"
    assert body == "theorem t : True := trivial\nimport X"
    assert split_imports("#check Nat") == ("", "#check Nat")


async def test_response_follows_kimina_schema(make_client: MakeClient):
    checker = lean_fake()
    client, _ = await make_client(checkers={"lean4": checker})
    snippets = [
        {"id": "ok", "code": "import Mathlib\ntheorem a : True := trivial"},
        {"id": "err", "code": "theorem b : False := wrong"},
        {"id": "sorry", "code": "theorem c : False := sorry"},
        {"id": "axiom", "code": "theorem d : False := cheat"},
        {"id": "slow", "code": "theorem e : False := loop"},
        {"id": "crash", "code": "theorem f : False := boom"},
    ]
    response = await client.post("/api/check", json={"snippets": snippets, "timeout": 20})
    assert response.status_code == 200, response.text
    KiminaCheckResponse.model_validate(response.json())
    results = response.json()["results"]
    assert [r["id"] for r in results] == [s["id"] for s in snippets]
    by_id = {r["id"]: r for r in results}
    for result in results:
        assert isinstance(result["time"], float)
        assert ("error" in result) != ("response" in result)  # kimina's ReplResponse rule
        assert "diagnostics" not in result
    assert by_id["ok"]["response"] == {"env": 0}
    assert by_id["err"]["response"]["messages"][0]["severity"] == "error"
    assert "sorries" in by_id["sorry"]["response"]
    assert not any(m["severity"] == "error" for m in by_id["sorry"]["response"]["messages"])
    axiom_messages = by_id["axiom"]["response"]["messages"]
    assert axiom_messages[0]["severity"] == "error"
    assert "forbidden_axiom:cheat" in axiom_messages[0]["data"]
    assert by_id["slow"]["error"] == "Lean REPL command timed out in 20 seconds"
    assert "checker_exception:RuntimeError" in by_id["crash"]["error"]
    assert checker.calls[0] == "theorem a : True := trivial"  # imports went to the header


async def test_debug_adds_sieve_diagnostics_and_cache_is_shared(make_client: MakeClient):
    client, _ = await make_client(checkers={"lean4": lean_fake()})
    body = {"snippets": [{"id": "a", "code": "theorem a : True := trivial"}], "debug": True}
    await client.post("/api/check", json=body)
    (result,) = (await client.post("/api/check", json=body)).json()["results"]
    assert result["diagnostics"] == {
        "repl_uuid": INSTANCE_ID,  # kimina's Diagnostics key: which Sieve process answered
        "verdict": "valid",
        "reasons": [],
        "axioms": ["propext"],
        "cached": True,
    }


async def test_timeout_zero_means_default_and_large_budgets_are_clamped(make_client: MakeClient):
    client, _ = await make_client(
        checkers={"lean4": lean_fake()}, lean_default_timeout_s=7, lean_max_timeout_s=9
    )
    snippet = [{"id": "a", "code": "theorem e : False := loop"}]
    zero = await client.post("/api/check", json={"snippets": snippet, "timeout": 0})
    huge = await client.post("/api/check", json={"snippets": snippet, "timeout": 10_000})
    assert zero.json()["results"][0]["error"] == "Lean REPL command timed out in 7 seconds"
    assert huge.json()["results"][0]["error"] == "Lean REPL command timed out in 9 seconds"


@pytest.mark.parametrize(
    "body",
    [
        {"snippets": []},
        {"snippets": [{"id": "a", "code": "x"}, {"id": "a", "code": "y"}]},
        {"snippets": [{"id": "a"}]},
        {"snippets": [{"id": "a", "code": "x"}], "timeout": -1},
    ],
)
async def test_kimina_validation_rules_give_422(make_client: MakeClient, body: dict):
    client, _ = await make_client(checkers={"lean4": lean_fake()})
    response = await client.post("/api/check", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "body"


async def test_invalid_snippet_names_it(make_client: MakeClient):
    client, _ = await make_client(checkers={"lean4": lean_fake()})
    body = {"snippets": [{"id": "a", "code": "x"}, {"id": "b", "code": "import Mathlib\n"}]}
    response = await client.post("/api/check", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "snippets", 1, "code"]


async def test_without_lean_the_route_says_so(make_client: MakeClient):
    client, _ = await make_client()
    response = await client.post("/api/check", json={"snippets": [{"id": "a", "code": "x"}]})
    assert response.status_code == 503
    assert "lean4" in response.json()["detail"][0]["msg"]
    assert "SIEVE_LEAN_REPL" in response.json()["detail"][0]["msg"]
