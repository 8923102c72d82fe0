"""``POST /api/check``: kimina-lean-server's request and response schema, served by Sieve.

RL code written against ``kimina-client`` can point at Sieve unchanged and gets the cache, the
soundness rules and per-item fault isolation for free. The mapping:

* a snippet's leading ``import`` lines become the header (the rest is the proof), like kimina's
  ``split_snippet``; it is checked by the ``lean4`` checker under the default policy;
* ``valid``/``invalid`` become a REPL-style ``response`` (``env``, ``messages``, ``sorries``); a
  proof refused by a soundness rule that Lean itself accepted gets an ``error`` message naming the
  rule, so kimina's ``analyze()`` never counts it as valid;
* ``timeout`` becomes ``error: "Lean REPL command timed out in N seconds"`` and a system ``error``
  becomes ``error: "<reasons>"``, which kimina's client classifies as timeout/server error;
* ``timeout: 0`` means the server's default budget; budgets above the server's maximum are
  clamped (kimina clients cannot know it); ``reuse`` and ``infotree`` are accepted and ignored;
* ``debug: true`` adds ``diagnostics`` in kimina's ``Diagnostics`` shape (see
  :func:`diagnostics`).
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from verifier_service.api.auth import client_identity
from verifier_service.api.body import StrictJsonRoute
from verifier_service.api.encoding import json_response
from verifier_service.api.errors import ApiError
from verifier_service.api.schemas import ERROR_RESPONSES, KiminaCheckRequest, KiminaCheckResponse
from verifier_service.api.verify import get_service
from verifier_service.service import (
    BatchTooLarge,
    InvalidItem,
    ProofItem,
    ProofResult,
    VerificationService,
    unknown_checker_message,
)
from verifier_service.verdicts import Verdict

__all__ = ["router", "split_imports", "to_kimina"]

router = APIRouter(prefix="/api", tags=["kimina-compat"], route_class=StrictJsonRoute)

LEAN = "lean4"
_ORIGIN = {"line": 1, "column": 0}
#: Names this service process in ``diagnostics.repl_uuid``: which replica answered.
INSTANCE_ID = uuid.uuid4().hex


def split_imports(code: str) -> tuple[str, str]:
    """``(header, body)``: leading ``import`` lines (blank lines and ``--`` comments skipped)."""
    lines = code.split("\n")
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if stripped and not stripped.startswith(("import ", "--")):
            break
        i += 1
    header = "\n".join(line.strip() for line in lines[:i] if line.strip().startswith("import "))
    return header, "\n".join(lines[i:])


def _sorry_positions(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    sorries = []
    for message in messages:
        if message.get("severity") == "warning" and "sorry" in str(message.get("data", "")):
            sorries.append(
                {
                    "pos": message.get("pos", _ORIGIN),
                    "endPos": message.get("endPos", message.get("pos", _ORIGIN)),
                    "goal": "",
                }
            )
    return sorries or [{"pos": _ORIGIN, "endPos": _ORIGIN, "goal": ""}]


def to_kimina(result: ProofResult, budget_s: float, *, debug: bool) -> dict[str, Any]:
    """One Sieve result as a kimina ``ReplResponse`` (``error`` xor ``response``)."""
    outcome = result.outcome
    entry: dict[str, Any] = {"id": result.id, "time": outcome.time_s}
    if outcome.verdict is Verdict.TIMEOUT:
        budget = outcome.budget_s if outcome.budget_s is not None else budget_s
        entry["error"] = f"Lean REPL command timed out in {budget:g} seconds"
    elif outcome.verdict is Verdict.ERROR:
        entry["error"] = "; ".join(outcome.reasons) or "error"
    else:
        messages = list(outcome.messages)
        response: dict[str, Any] = {"env": 0}
        if outcome.verdict is Verdict.INVALID:
            has_error = any(m.get("severity") == "error" for m in messages)
            if outcome.reasons == ["sorry"] and not has_error:
                response["sorries"] = _sorry_positions(messages)
            elif not has_error:
                messages.append(
                    {
                        "severity": "error",
                        "pos": _ORIGIN,
                        "endPos": _ORIGIN,
                        "data": "rejected by the verifier: " + ", ".join(outcome.reasons),
                    }
                )
        if messages:
            response["messages"] = messages
        entry["response"] = response
    if debug:
        entry["diagnostics"] = diagnostics(result)
    return entry


def diagnostics(result: ProofResult) -> dict[str, Any]:
    """``debug: true`` diagnostics: kimina's ``Diagnostics`` keys, then Sieve's own.

    kimina-client validates ``diagnostics`` as a ``TypedDict`` of ``repl_uuid``, ``cpu_max`` and
    ``memory_max`` and drops every other key. ``repl_uuid`` names the Sieve process that
    answered (:data:`INSTANCE_ID`; several replicas behind one URL tell themselves apart by it),
    since a proof runs on whichever pooled REPL is free and a cached verdict ran on none.
    ``cpu_max`` and ``memory_max`` are left out rather than made up: Sieve measures memory per
    worker for recycling, not per proof. Sieve's verdict, reasons, axioms and cache flag follow
    for clients that read the JSON themselves.
    """
    outcome = result.outcome
    return {
        "repl_uuid": INSTANCE_ID,
        "verdict": outcome.verdict.value,
        "reasons": outcome.reasons,
        "axioms": outcome.axioms,
        "cached": result.cached,
    }


@router.post(
    "/check",
    response_model=KiminaCheckResponse,
    response_model_exclude_none=True,
    summary="kimina-lean-server compatible check",
    responses={
        **{status: ERROR_RESPONSES[status] for status in (401, 413, 422, 429)},
        503: {**ERROR_RESPONSES[503], "description": "The lean4 checker is not enabled."},
    },
)
async def check(
    body: KiminaCheckRequest, request: Request, service: VerificationService = Depends(get_service)
) -> Response:
    """Drop-in for kimina-lean-server's `POST /api/check` (see the module notes for mapping)."""
    if LEAN not in service.checkers:
        message = unknown_checker_message(LEAN, list(service.checkers))
        raise ApiError(503, ["body", "snippets"], message, "unavailable")
    settings = service.settings
    budget = float(body.timeout) if body.timeout > 0 else settings.lean_default_timeout_s
    budget = min(budget, settings.lean_max_timeout_s)
    items = []
    for snippet in body.snippets:
        header, proof = split_imports(snippet.code)
        items.append(
            ProofItem(id=snippet.id, code=proof, checker=LEAN, header=header, timeout_s=budget)
        )
    try:
        results = await service.verify(items, client=client_identity(request))
    except InvalidItem as exc:
        field = exc.field if exc.field in ("id", "code") else "code"
        raise ApiError(
            422, ["body", "snippets", exc.index, field], exc.message, "invalid_input"
        ) from exc
    except BatchTooLarge as exc:  # its loc speaks of /verify's proofs; here they are snippets
        loc = ["body", "snippets", *exc.loc[2:]]
        raise ApiError(413, loc, exc.message, "too_large") from exc
    return json_response({"results": [to_kimina(r, budget, debug=body.debug) for r in results]})
