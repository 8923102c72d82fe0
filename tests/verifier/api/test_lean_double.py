"""``/verify`` and ``/api/check`` with the real lean4 checker and pool, against the REPL double.

The double speaks the Lean REPL's exact protocol (``verifier_service.testing.repl_double``), so this
exercises everything but Lean itself: header normalisation, the warm pool, soundness rules,
``#print axioms`` and the verdict mapping.
"""

from __future__ import annotations

import asyncio
import contextlib

import psutil

from tests.verifier.api.conftest import LEAN_HEADER, MakeClient, lean_double_settings
from verifier_service.checkers.lean import LeanChecker
from verifier_service.lean.pool import import_set_label

STATEMENT = "theorem add_comm' (a b : ℕ) : a + b = b + a := by"


async def wait_ready(client, seconds: float = 30) -> dict:
    for _ in range(int(seconds / 0.05)):
        response = await client.get("/ready")
        if response.status_code == 200:
            return response.json()
        await asyncio.sleep(0.05)
    raise AssertionError(f"not ready: {response.json()}")


async def test_lean_proofs_through_the_protocol_double(make_client: MakeClient):
    settings = lean_double_settings()
    client, _ = await make_client(checkers={"lean4": LeanChecker(settings)}, lean_workers=1)
    await wait_ready(client)
    proofs = [
        {"id": "ok", "statement": STATEMENT, "code": STATEMENT + "\n  omega"},
        {"id": "sorry", "statement": STATEMENT, "code": STATEMENT + "\n  sorry"},
        {"id": "error", "statement": STATEMENT, "code": STATEMENT + "\n  simp -- double:error"},
        {"id": "changed", "statement": STATEMENT, "code": "theorem add_comm' : True := trivial"},
        {"id": "exit", "code": "#exit"},
    ]
    body = {"proofs": [{**p, "checker": "lean4", "header": LEAN_HEADER} for p in proofs]}
    response = await client.post("/verify", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    results = {r["id"]: r for r in data["results"]}
    assert [r["id"] for r in data["results"]] == [p["id"] for p in proofs]
    assert results["ok"]["verdict"] == "valid", results["ok"]
    assert results["sorry"]["verdict"] == "invalid" and "sorry" in results["sorry"]["reasons"]
    assert results["error"]["verdict"] == "invalid"
    assert "lean_error" in results["error"]["reasons"]
    assert results["changed"]["verdict"] == "invalid"
    assert "statement_changed" in results["changed"]["reasons"]
    assert results["exit"]["verdict"] == "invalid"
    assert any(r.startswith("forbidden_command") for r in results["exit"]["reasons"])
    assert data["checker_versions"]["lean4"].startswith("lean4")

    again = (await client.post("/verify", json=body)).json()["results"]
    assert all(r["cached"] for r in again)

    metrics = (await client.get("/metrics")).text
    assert 'sieve_checker_size{checker="lean4"} 1.0' in metrics  # the pool's own gauges
    assert 'sieve_checker_busy{checker="lean4"} 0.0' in metrics
    assert 'sieve_proofs_total{checker="lean4",verdict="valid"} 2.0' in metrics
    # per import set, labelled by a short digest: the prewarmed set's one worker, one import
    labels = (
        f'import_set="{import_set_label(LEAN_HEADER)}",'
        'imports="import Mathlib,import Aesop",protected="true"'
    )
    assert f"sieve_lean_import_set_workers{{{labels}}} 1.0" in metrics
    assert f"sieve_lean_import_set_waiting{{{labels}}} 0.0" in metrics
    assert f"sieve_lean_import_set_imports_started_total{{{labels}}} 1.0" in metrics


async def test_kimina_route_through_the_protocol_double(make_client: MakeClient):
    settings = lean_double_settings()
    client, _ = await make_client(checkers={"lean4": LeanChecker(settings)}, lean_workers=1)
    await wait_ready(client)
    snippets = [
        {"id": "ok", "code": f"{LEAN_HEADER}\n{STATEMENT}\n  omega"},
        {"id": "sorry", "code": f"{LEAN_HEADER}\n{STATEMENT}\n  sorry"},
    ]
    response = await client.post("/api/check", json={"snippets": snippets, "timeout": 30})
    assert response.status_code == 200, response.text
    ok, sorry = response.json()["results"]
    assert ok["id"] == "ok" and "error" not in ok
    assert not any(m["severity"] == "error" for m in ok["response"].get("messages", []))
    assert sorry["response"]["sorries"]


def _double_pids() -> set[int]:
    """The REPL doubles this test process runs (the lean4 pool's workers)."""
    pids = set()
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if any("repl_double" in part for part in child.cmdline()):
                pids.add(child.pid)
    return pids


async def test_a_forged_reply_is_an_uncached_error_and_the_next_proof_gets_a_fresh_worker(
    make_client: MakeClient,
):
    settings = lean_double_settings()
    earlier = _double_pids()  # an earlier test's workers may still be on their way out
    client, _ = await make_client(checkers={"lean4": LeanChecker(settings)}, lean_workers=1)
    await wait_ready(client)
    (first_worker,) = _double_pids() - earlier
    forged = {
        "id": "forged",
        "checker": "lean4",
        "header": LEAN_HEADER,
        "statement": STATEMENT,
        "code": STATEMENT + "\n  omega -- double:forge",
    }
    for attempt in range(2):
        response = await client.post("/verify", json={"proofs": [forged]})
        assert response.status_code == 200, response.text
        (result,) = response.json()["results"]
        assert result["verdict"] == "error", result
        assert result["reasons"] == ["protocol_violation"]
        assert result["cached"] is False, attempt  # an error is never stored, so never served
    clean = {**forged, "id": "clean", "code": STATEMENT + "\n  omega"}
    response = await client.post("/verify", json={"proofs": [clean]})
    (result,) = response.json()["results"]
    assert result["verdict"] == "valid", result
    assert first_worker not in _double_pids()  # killed, never reused
    metrics = (await client.get("/metrics")).text
    assert "sieve_lean_protocol_violations_total 2.0" in metrics
    assert 'sieve_proofs_total{checker="lean4",verdict="error"} 2.0' in metrics


async def test_parse_mismatches_and_kernel_term_refusals_over_http(make_client: MakeClient):
    settings = lean_double_settings()
    client, _ = await make_client(checkers={"lean4": LeanChecker(settings)}, lean_workers=1)
    await wait_ready(client)
    metrics = (await client.get("/metrics")).text
    assert "sieve_lean_parse_mismatch_total 0.0" in metrics
    proofs = [
        {"id": "hidden", "code": STATEMENT + "\n  omega -- double:parse-extra"},
        {"id": "term", "code": STATEMENT + "\n  omega -- double:type-differs"},
        {"id": "axiom", "code": STATEMENT + "\n  omega -- double:target-kind axiom"},
    ]
    body = {
        "proofs": [
            {**p, "checker": "lean4", "header": LEAN_HEADER, "statement": STATEMENT} for p in proofs
        ]
    }
    response = await client.post("/verify", json=body)
    assert response.status_code == 200, response.text
    results = {r["id"]: r for r in response.json()["results"]}
    assert (results["hidden"]["verdict"], results["hidden"]["reasons"]) == (
        "invalid",
        ["parse_mismatch"],
    )
    assert results["term"]["reasons"] == ["statement_mismatch"]
    assert results["axiom"]["reasons"] == ["target_not_theorem"]
    metrics = (await client.get("/metrics")).text
    assert "sieve_lean_parse_mismatch_total 1.0" in metrics
