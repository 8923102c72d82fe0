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
