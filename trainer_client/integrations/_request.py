"""The one ``POST /verify`` item both adapters build from a framework's sample."""

from __future__ import annotations

from typing import Any

from trainer_client.data import DEFAULT_HEADER, Problem, proof_request
from trainer_client.wire import ProofRequest


def sample_request(
    checker: str,
    id: str,
    completion: str,
    truth: Any,
    *,
    header: Any = None,
    prompt: str = "",
    timeout_s: float | None = None,
) -> ProofRequest:
    """``completion`` as a ``/verify`` item; ``truth`` is the statement (lean4) or the answer.

    math sends the whole completion, stripped (the checker finds a bare expression,
    ``\\boxed{...}`` or "the answer is" in it). lean4 goes through :func:`proof_request`, exactly
    as in Sieve's own loop, with ``header`` (default :data:`DEFAULT_HEADER`).
    """
    if checker == "math":
        request: ProofRequest = {
            "id": id,
            "checker": "math",
            "code": completion.strip(),
            "answer": str(truth),
        }
        if timeout_s is not None:
            request["timeout_s"] = timeout_s
        return request
    problem = Problem(
        name=id, statement=str(truth), header=str(header) if header else DEFAULT_HEADER
    )
    return proof_request(problem, prompt, completion, id=id, timeout_s=timeout_s)
