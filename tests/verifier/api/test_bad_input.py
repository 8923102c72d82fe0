"""Bad bodies and unencodable text: always a 422 in the documented shape, never a 500 or a worker.

A lone surrogate (``"\\ud800"``) is valid JSON but no UTF-8 encoder can write it: echoed in a reply
it used to be a 500, written to a Lean REPL it killed the worker. Bodies that are not UTF-8, nested
10^5 deep, or hold a 5,000-digit number used to be a 400 in a shape of their own.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.verifier.api.conftest import LEAN_HEADER, MakeClient, lean_double_settings, proof
from tests.verifier.service.fakes import FakeChecker
from verifier_service.checkers.base import Job, Policy
from verifier_service.checkers.lean import LeanChecker
from verifier_service.verdicts import Verdict

LONE = "\ud800"
STATEMENT = "theorem add_comm' (a b : ℕ) : a + b = b + a := by"


def raw(body: object) -> bytes:
    """``body`` as JSON bytes with surrogates as ``\\uXXXX`` escapes (how a client sends them)."""
    return json.dumps(body, ensure_ascii=True).encode()


def assert_documented_422(response, loc: list | None = None) -> list[dict]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert detail and all(set(d) == {"loc", "msg", "type"} for d in detail)
    if loc is not None:
        assert detail[0]["loc"] == loc, detail
    return detail


VERIFY_FIELDS = [
    ({"id": LONE}, ["body", "proofs", 1, "id"]),
    ({"code": f"ok -- {LONE} in a comment"}, ["body", "proofs", 1, "code"]),
    ({"header": f"import Mathlib{LONE}"}, ["body", "proofs", 1, "header"]),
    ({"statement": f"ok{LONE}"}, ["body", "proofs", 1, "statement"]),
    ({"answer": LONE}, ["body", "proofs", 1, "answer"]),
    ({"checker": f"fake{LONE}"}, ["body", "proofs", 1, "checker"]),
    ({f"extra{LONE}": 1}, ["body", "proofs", 1, "extra\\ud800"]),
]


@pytest.mark.parametrize(("fields", "loc"), VERIFY_FIELDS)
async def test_unencodable_text_in_any_verify_field_is_422_naming_it(
    make_client: MakeClient, fields: dict, loc: list
):
    checker = FakeChecker()
    client, _ = await make_client(checkers={"fake": checker})
    body = {"proofs": [proof("a", "ok"), {**proof("b", "ok 2"), **fields}]}
    response = await client.post(
        "/verify", content=raw(body), headers={"content-type": "application/json"}
    )
    detail = assert_documented_422(response, loc)
    assert detail[0]["type"] == "string_unencodable"
    assert checker.calls == [] and checker.prepared == 0  # nothing of the batch ran


async def test_unencodable_text_in_the_policy_and_in_low_surrogates(make_client: MakeClient):
    client, _ = await make_client()
    for body, loc in [
        (
            {"proofs": [proof("a", "ok")], "policy": {"axioms": ["propext", "\udfff"]}},
            ["body", "policy", "axioms", 1],
        ),
        ({"proofs": [proof("a", "ok \udc80")]}, ["body", "proofs", 0, "code"]),
    ]:
        response = await client.post(
            "/verify", content=raw(body), headers={"content-type": "application/json"}
        )
        assert_documented_422(response, loc)


async def test_paired_surrogates_are_ordinary_text(make_client: MakeClient):
    """``\\ud83d\\ude00`` is one character (😀): valid, checked, and echoed back intact."""
    checker = FakeChecker()
    client, _ = await make_client(checkers={"fake": checker})
    body = {"proofs": [proof("😀", "ok 😀 -- \\ud800 written out is fine")]}
    response = await client.post(
        "/verify", content=raw(body), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["id"] == "😀"
    assert checker.calls == ["ok 😀 -- \\ud800 written out is fine"]


@pytest.mark.parametrize(
    ("snippet", "loc"),
    [
        ({"id": LONE, "code": "theorem a : True := trivial"}, ["body", "snippets", 0, "id"]),
        ({"id": "a", "code": f"import Mathlib{LONE}\n#check 1"}, ["body", "snippets", 0, "code"]),
        ({"id": "a", "code": f"theorem a : True := trivial -- {LONE}"}, None),
    ],
)
async def test_unencodable_text_in_kimina_snippets_is_422(
    make_client: MakeClient, snippet: dict, loc: list | None
):
    checker = FakeChecker(name="lean4", version="lean-fake")
    client, _ = await make_client(checkers={"lean4": checker})
    response = await client.post(
        "/api/check",
        content=raw({"snippets": [snippet], "timeout": 5}),
        headers={"content-type": "application/json"},
    )
    assert_documented_422(response, loc or ["body", "snippets", 0, "code"])
    assert checker.calls == []


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b"\xff\xfe\x00", "json_invalid"),
        (b'{"proofs": [{"id": "\xc3", "code": "x"}]}', "json_invalid"),
        (b'{"proofs": [{"id": "\xed\xa0\x80", "code": "x"}]}', "json_invalid"),  # CESU surrogate
        (b"[" * 100_000 + b"]" * 100_000, "json_too_deep"),
        (b'{"proofs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "json_too_deep"),
        (b'{"proofs": [{"id": "a", "code": "x", "timeout_s": ' + b"9" * 5000 + b"}]}", None),
        (b"{not json", "json_invalid"),
    ],
)
@pytest.mark.parametrize("path", ["/verify", "/api/check"])
async def test_bodies_that_cannot_be_parsed_are_422_in_the_documented_shape(
    make_client: MakeClient, content: bytes, kind: str | None, path: str
):
    client, _ = await make_client(checkers={"lean4": FakeChecker(name="lean4")})
    headers = {"content-type": "application/json"}
    response = await client.post(path, content=content, headers=headers)
    detail = assert_documented_422(response)
    assert detail[0]["loc"][0] == "body"
    if kind is not None:
        assert detail[0]["type"] == kind


async def test_a_cached_batch_is_not_slowed_by_the_check(make_client: MakeClient):
    """An ordinary batch (no ``\\uD8xx`` escape in its bytes) is answered as before."""
    client, _ = await make_client()
    body = {"proofs": [proof(str(i), f"ok {i}") for i in range(200)]}
    first = await client.post("/verify", json=body)
    second = await client.post("/verify", json=body)
    assert first.status_code == second.status_code == 200
    assert all(r["cached"] for r in second.json()["results"])


def worker_pids(checker: LeanChecker) -> set[int]:
    pool = checker.pool
    assert pool is not None
    return {w.pid for w in [*pool._idle, *pool._busy] if w.alive}


async def all_warm(checker: LeanChecker, workers: int) -> set[int]:
    """The pids of ``workers`` warm workers, once every one of them has started."""
    for _ in range(600):
        pids = worker_pids(checker)
        if len(pids) == workers and not checker.stats()["starting"]:
            return pids
        await asyncio.sleep(0.05)
    raise AssertionError(f"the pool did not warm {workers} workers: {checker.stats()}")


async def test_eight_unencodable_proofs_never_reach_or_harm_a_worker(make_client: MakeClient):
    checker = LeanChecker(lean_double_settings(lean_workers=2))
    client, _ = await make_client(checkers={"lean4": checker}, lean_workers=2)
    before = await all_warm(checker, 2)
    for i in range(8):
        body = {
            "proofs": [
                {
                    "id": f"p{i}",
                    "checker": "lean4",
                    "header": LEAN_HEADER,
                    "code": f"{STATEMENT}\n  omega -- {LONE} {i}",
                }
            ]
        }
        response = await client.post(
            "/verify", content=raw(body), headers={"content-type": "application/json"}
        )
        assert_documented_422(response, ["body", "proofs", 0, "code"])
    ok = {"id": "ok", "checker": "lean4", "header": LEAN_HEADER, "statement": STATEMENT}
    ok["code"] = STATEMENT + "\n  omega"
    response = await client.post("/verify", json={"proofs": [ok]})
    assert response.json()["results"][0]["verdict"] == "valid"
    assert worker_pids(checker) == before  # the same two processes, alive
    stats = checker.stats()
    assert stats["restarts"] == stats["crashes"] == 0


async def test_unencodable_command_is_an_error_verdict_and_spares_the_worker():
    """Defence in depth below the API: the REPL write path refuses, it does not crash."""
    checker = LeanChecker(lean_double_settings(lean_workers=2))
    await checker.start()
    try:
        before = await all_warm(checker, 2)

        def job(code: str) -> Job:
            return checker.prepare(
                code=code,
                header=LEAN_HEADER,
                statement=STATEMENT,
                answer=None,
                timeout_s=10,
                policy=Policy(),
            )

        for i in range(8):
            outcome = await checker.check(job(f"{STATEMENT}\n  omega -- {LONE} {i}"))
            assert outcome.verdict is Verdict.ERROR, outcome
            assert outcome.reasons == ["unencodable_text"]
        assert (await checker.check(job(STATEMENT + "\n  omega"))).verdict is Verdict.VALID
        assert worker_pids(checker) == before
        stats = checker.stats()
        assert stats["restarts"] == stats["crashes"] == 0
    finally:
        await checker.aclose()
