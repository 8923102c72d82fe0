"""The wire format: pydantic models for every request and response body.

These models are the OpenAPI schema (``GET /openapi.json``); requests are validated against them.
Responses of the hot routes are serialised straight from dicts for speed, in exactly these shapes.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from verifier_service.checkers.base import DEFAULT_AXIOMS

__all__ = [
    "ERROR_RESPONSES",
    "ErrorDetail",
    "ErrorResponse",
    "HealthResponse",
    "KiminaCheckRequest",
    "KiminaCheckResponse",
    "KiminaReplResponse",
    "KiminaSnippet",
    "PolicyIn",
    "ProofIn",
    "ProofResultOut",
    "ReadyResponse",
    "VerifyRequest",
    "VerifyResponse",
]

EXAMPLE_HEADER = (
    "import Mathlib\nimport Aesop\nset_option maxHeartbeats 400000\n"
    "open BigOperators Real Nat Topology Rat"
)
EXAMPLE_STATEMENT = "theorem foo (a b : ℕ) : a + b = b + a := by"


# --- /verify ----------------------------------------------------------------------------------


class ProofIn(BaseModel):
    """One proof to check. Unknown fields are refused, so a misspelt option is not ignored."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Client's identifier, echoed in the result (duplicates allowed).")
    checker: str = Field("lean4", description="Which checker: `lean4` or `math`.")
    code: str = Field(
        description="Lean: the whole theorem with its proof (command mode). "
        "Math: the model's answer text."
    )
    header: str | None = Field(
        None,
        description="Lean: imports, options and `open`s, checked once per warm worker. "
        "Omitted: the checker's default header.",
    )
    statement: str | None = Field(
        None,
        description="Lean: the formal statement the code must begin with, unchanged "
        "(guards against a proof of a different theorem).",
    )
    answer: str | None = Field(None, description="Math: the reference answer.")
    timeout_s: float | None = Field(
        None, gt=0, description="Seconds this proof may take; omitted: the server's default."
    )


class PolicyIn(BaseModel):
    """What counts as verified beyond the checker's own acceptance (default: strict)."""

    model_config = ConfigDict(extra="forbid")

    allow_sorry: bool = False
    axioms: list[str] = Field(
        default_factory=lambda: list(DEFAULT_AXIOMS),
        description="Axioms a proof may depend on (`#print axioms`).",
    )


class VerifyRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "proofs": [
                        {
                            "id": "p1",
                            "checker": "lean4",
                            "header": EXAMPLE_HEADER,
                            "statement": EXAMPLE_STATEMENT,
                            "code": EXAMPLE_STATEMENT + "\n  omega",
                            "timeout_s": 60,
                        },
                        {"id": "m1", "checker": "math", "code": "so x = 1/2", "answer": "0.5"},
                    ],
                    "policy": {
                        "allow_sorry": False,
                        "axioms": ["propext", "Classical.choice", "Quot.sound"],
                    },
                }
            ]
        },
    )

    proofs: list[ProofIn]
    policy: PolicyIn | None = None


class ProofResultOut(BaseModel):
    id: str
    verdict: Literal["valid", "invalid", "timeout", "error"] = Field(
        description="`invalid`: the proof is wrong. `timeout`/`error`: the system gave no answer "
        "(an `error` is worth retrying); never cached as `invalid`."
    )
    reasons: list[str] = Field(
        description="Why, e.g. `lean_error`, `sorry`, `statement_changed`, "
        "`forbidden_axiom:sorryAx`, `forbidden_command:#exit`, `checker_exception:OSError`."
    )
    messages: list[dict[str, Any]] = Field(description="Checker messages (Lean: REPL messages).")
    axioms: list[str] | None = Field(description="Axioms the proof uses, when checked.")
    cached: bool = Field(description="Answered from the verdict cache.")
    time_s: float = Field(description="Seconds the check took (for a cached result: originally).")


class VerifyResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "results": [
                        {
                            "id": "p1",
                            "verdict": "valid",
                            "reasons": [],
                            "messages": [],
                            "axioms": ["propext"],
                            "cached": False,
                            "time_s": 0.41,
                        }
                    ],
                    "checker_versions": {
                        "lean4": "lean4:v4.19.0 mathlib:abc123 repl:def456",
                    },
                }
            ]
        }
    )

    results: list[ProofResultOut] = Field(description="One per proof, in request order.")
    checker_versions: dict[str, str] = Field(
        description="Version of each checker used; it changes whenever verdicts could change."
    )


# --- errors, health -----------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    loc: list[str | int] = Field(
        description="Where the problem is, e.g. `[body, proofs, 3, code]`."
    )
    msg: str
    type: str


class ErrorResponse(BaseModel):
    detail: list[ErrorDetail]


#: OpenAPI ``responses`` entries for every error status a proof route can return.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {
        "model": ErrorResponse,
        "description": "Missing or invalid API key (only when `SIEVE_API_KEYS` is set); "
        "refused before the body is read.",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    },
    413: {
        "model": ErrorResponse,
        "description": "A body above `max_body_bytes`, more proofs than `max_batch_size` (or "
        "than a queue could ever hold), or one proof's header + code above `max_code_bytes`.",
    },
    422: {
        "model": ErrorResponse,
        "description": "Malformed request: not UTF-8, not JSON, nested too deeply, text that "
        "cannot be encoded, a missing or bad field, an unknown or disabled checker. `loc` names "
        "the field.",
    },
    429: {
        "model": ErrorResponse,
        "description": "Too many proofs pending, in all (`queue_full`) or for this client "
        "(`quota_exceeded`, `max_pending_per_key`); retry after `Retry-After` seconds.",
        "headers": {
            "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}
        },
    },
    503: {"model": ErrorResponse, "description": "The service cannot serve this route now."},
}


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"


class ReadyResponse(BaseModel):
    ready: bool
    checkers: dict[str, dict[str, str]] = Field(
        description="Per checker, what is still missing (empty when ready)."
    )
    cache: dict[str, str] = Field(description="What is wrong with the cache (empty when usable).")
    cache_backend: str | None
    sandbox: dict[str, Any] = Field(
        default_factory=lambda: {"mode": "none"},
        description='How Lean REPLs are confined: {"mode": "bwrap"|"uid"|"none", ...limits}.',
    )


# --- kimina-lean-server compatibility (POST /api/check) ---------------------------------------


class KiminaSnippet(BaseModel):
    id: str = Field(..., description="Identifier to trace the snippet")
    code: str = Field(..., description="Lean 4 snippet or proof attempt")


class KiminaCheckRequest(BaseModel):
    """kimina-lean-server's ``CheckRequest``, field for field."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "snippets": [{"id": "nat", "code": "import Mathlib\n#check Nat"}],
                    "timeout": 60,
                    "debug": False,
                    "reuse": True,
                    "infotree": None,
                }
            ]
        }
    )

    snippets: list[KiminaSnippet] = Field(
        description="List of snippets to validate (batch or single element)"
    )
    timeout: int = Field(30, ge=0, description="Maximum time in seconds before aborting the check")
    debug: bool = Field(False, description="Include the Sieve verdict in `diagnostics`")
    reuse: bool = Field(True, description="Accepted for compatibility; workers are always reused")
    infotree: Literal["full", "tactics", "original", "substantive"] | None = Field(
        None, description="Accepted for compatibility; info trees are not returned"
    )

    @model_validator(mode="after")
    def _non_empty_unique(self) -> KiminaCheckRequest:
        # Same rules as kimina-lean-server, so a client sees the same 422s.
        if not self.snippets:
            raise ValueError("`snippets` must be non empty")
        if len({s.id for s in self.snippets}) != len(self.snippets):
            raise ValueError("`snippets` must have unique ids")
        return self


class KiminaReplResponse(BaseModel):
    id: str
    time: float = 0.0
    error: str | None = None
    response: dict[str, Any] | None = Field(
        None, description="REPL-style reply: `env`, `messages`, `sorries`"
    )
    diagnostics: dict[str, Any] | None = None


class KiminaCheckResponse(BaseModel):
    results: list[KiminaReplResponse]
