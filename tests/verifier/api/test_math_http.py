"""The real ``math`` checker behind the HTTP API."""

from __future__ import annotations

from tests.verifier.api.conftest import MakeClient
from verifier_service.checkers.math import MathChecker
from verifier_service.settings import VerifierSettings


async def test_math_checker_through_http(make_client: MakeClient):
    settings = VerifierSettings(checkers=["math"])
    client, _ = await make_client(checkers={"math": MathChecker(settings)})
    body = {
        "proofs": [
            {
                "id": "half",
                "checker": "math",
                "code": "the answer is \\boxed{\\frac{1}{2}}",
                "answer": "0.5",
            },
            {"id": "wrong", "checker": "math", "code": "\\boxed{3}", "answer": "4"},
            {"id": "same", "checker": "math", "code": "(2+4)*4", "answer": "24"},
        ]
    }
    response = await client.post("/verify", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert [r["verdict"] for r in data["results"]] == ["valid", "invalid", "valid"]
    assert data["checker_versions"]["math"].startswith("math-verify")
    missing = await client.post(
        "/verify", json={"proofs": [{"id": "x", "checker": "math", "code": "1"}]}
    )
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "proofs", 0, "answer"]


async def test_an_unreadable_reference_is_a_422_naming_the_answer(make_client: MakeClient):
    """The reference is the client's; one the checker cannot read refuses the whole batch
    before anything is checked, instead of making every answer ``error``."""
    settings = VerifierSettings(checkers=["math"])
    client, _ = await make_client(checkers={"math": MathChecker(settings)})
    body = {
        "proofs": [
            {"id": "fine", "checker": "math", "code": "\\boxed{24}", "answer": "24"},
            {"id": "bad", "checker": "math", "code": "\\boxed{24}", "answer": "24 or 25"},
        ]
    }
    response = await client.post("/verify", json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "proofs", 1, "answer"]
    assert "cannot read this reference answer" in detail["msg"]


async def test_refused_answers_are_invalid_with_their_reason(make_client: MakeClient):
    settings = VerifierSettings(checkers=["math"])
    client, _ = await make_client(checkers={"math": MathChecker(settings)})
    cases = {
        "hedged": ("The answer is 24 or 25.", "24", "ambiguous_answer"),
        "retracted": (
            "\\boxed{24}. Hmm, actually the correct answer is 25.",
            "24",
            "ambiguous_answer",
        ),
        "relation": ("\\boxed{25 = 24}", "24", "wrong_answer"),
        "nan": ("\\boxed{\\frac{0}{0}}", "24", "wrong_answer"),
        "juxtaposed": ("\\boxed{20 4}", "24", "unparsable_answer"),
    }
    body = {
        "proofs": [
            {"id": name, "checker": "math", "code": code, "answer": answer}
            for name, (code, answer, _) in cases.items()
        ]
    }
    response = await client.post("/verify", json=body)
    assert response.status_code == 200, response.text
    results = {r["id"]: r for r in response.json()["results"]}
    for name, (_, _, reason) in cases.items():
        assert results[name]["verdict"] == "invalid", results[name]
        assert results[name]["reasons"] == [reason], results[name]
