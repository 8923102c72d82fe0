"""Settings for a ``lean4`` service over the REPL protocol double (tests and benchmarks)."""

from __future__ import annotations

import shlex
from typing import Any

from verifier_service.settings import VerifierSettings
from verifier_service.testing.repl_double import command

__all__ = ["double_settings"]


def double_settings(*, prewarm: str, workers: int = 1, **overrides: Any) -> VerifierSettings:
    """A ``lean4``-only service on ``workers`` REPL doubles (no transcripts), unsandboxed,
    with ``prewarm`` as its prewarmed header; ``overrides`` change any field."""
    fields: dict[str, Any] = {
        "checkers": ["lean4"],
        "lean_repl": shlex.join(command("--no-transcripts")),
        "lean_workers": workers,
        "lean_prewarm_headers": [prewarm],
        "lean_sandbox": "none",
    }
    return VerifierSettings(**{**fields, **overrides})
