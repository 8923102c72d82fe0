"""The lexical pre-filter's own rule: refuse a text the lexer cannot be sure to read as Lean.

:mod:`.source` is a copy of Lean's lexer. Where Lean's reading depends on what a copy cannot
know (the token table of the header's environment) or on a quirk that Lean versions may not
share, the lexer records an :class:`~.source.Ambiguity` rather than guess, and this rule turns
each class into a refusal, ``ambiguous_source:<class>``. It only ever refuses: texts it passes
still go to Lean, whose parse decides.
"""

from __future__ import annotations

from verifier_service.soundness.rules import Violation
from verifier_service.soundness.source import ambiguities

__all__ = ["AMBIGUOUS_SOURCE", "no_ambiguous_source"]

#: Reason prefix: ``ambiguous_source:comment_opener``, ``…:doc_comment``, ``…:char_literal``,
#: ``…:escaped_keyword`` (see :data:`~.source.AMBIGUITY_CLASSES`).
AMBIGUOUS_SOURCE = "ambiguous_source"


def no_ambiguous_source(source: str, *, where: str = "code") -> list[Violation]:
    """One violation per class of ambiguity in ``source``, at its first occurrence."""
    first: dict[str, Violation] = {}
    for found in ambiguities(source):
        if found.kind not in first:
            first[found.kind] = Violation(
                f"{AMBIGUOUS_SOURCE}:{found.kind}",
                f"{found.detail} (in the {where})",
                found.line,
                found.column,
            )
    return list(first.values())
