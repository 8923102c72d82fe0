"""What makes a Lean proof count: the soundness rules, and the static ones bundled.

:func:`static_violations` runs every rule that needs no Lean (the allowlist of commands,
attributes and options in header and code, the statement check); a proof that breaks one is
``invalid`` without running Lean. The rules on Lean's answers (:func:`no_lean_errors`,
:func:`no_sorry`, :func:`allowed_axioms`) run after. See :mod:`.rules` for each rule,
:mod:`.allowlist` for the lists, and :mod:`.target` for which declarations are checked.
"""

from __future__ import annotations

from collections.abc import Collection

from verifier_service.soundness.lexical import no_ambiguous_source
from verifier_service.soundness.rules import (
    DEFAULT_FORBIDDEN,
    NATIVE_AXIOM,
    Violation,
    allowed_axioms,
    is_native_axiom,
    no_forbidden_commands,
    no_lean_errors,
    no_sorry,
    statement_tokens,
    statement_unchanged,
)
from verifier_service.soundness.target import (
    EXAMPLE_NAME,
    Target,
    Targets,
    find_target,
    find_targets,
)

__all__ = [
    "DEFAULT_FORBIDDEN",
    "EXAMPLE_NAME",
    "NATIVE_AXIOM",
    "Target",
    "Targets",
    "Violation",
    "allowed_axioms",
    "find_target",
    "find_targets",
    "is_native_axiom",
    "no_ambiguous_source",
    "no_forbidden_commands",
    "no_lean_errors",
    "no_sorry",
    "statement_tokens",
    "statement_unchanged",
    "static_violations",
]


def static_violations(
    header: str,
    body: str,
    statement: str | None,
    *,
    forbidden: Collection[str] = DEFAULT_FORBIDDEN,
) -> list[Violation]:
    """Every rule that can be decided from the source alone, header included. They only
    refuse: a text they pass is still judged by Lean."""
    return [
        *no_ambiguous_source(header, where="header"),
        *no_ambiguous_source(body),
        *no_forbidden_commands(header, forbidden=forbidden, where="header"),
        *no_forbidden_commands(body, forbidden=forbidden),
        *statement_unchanged(body, statement, header),
    ]
