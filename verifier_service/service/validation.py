"""What makes an item uncheckable before any checker sees it: the service's own input checks.

These run for every item of a batch, before the cache or a checker, so they are cheap and they
raise on the first item the client must fix (:class:`InvalidItem`, HTTP 422; or
:class:`BatchTooLarge`, HTTP 413, for code no deployment setting would let through). What a
checker refuses (a Lean header it cannot parse, say) is its own ``prepare``'s business.

Text no encoder can write (a lone UTF-16 surrogate, which JSON can carry as ``\\ud800``) must
never reach a checker's process: it is refused here for library callers, and the API's body
parser refuses it with the same pattern and message before the service is asked.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from verifier_service.service.errors import BatchTooLarge, InvalidItem
from verifier_service.service.proofs import ProofLike
from verifier_service.settings import VerifierSettings

__all__ = [
    "ENABLE_HINTS",
    "UNENCODABLE",
    "UNENCODABLE_MESSAGE",
    "unknown_checker_message",
    "validate_item",
    "validate_text",
]

#: How to enable a built-in checker that this deployment did not load.
ENABLE_HINTS = {
    "lean4": "set SIEVE_LEAN_REPL to the command that starts a Lean REPL (and SIEVE_LEAN_CWD to "
    "its Mathlib project) to enable it",
    "math": "add it to SIEVE_CHECKERS to enable it",
}

#: Text no encoder can write (lone UTF-16 surrogates): it must never reach a checker's process.
#: The API's body parser and error encoder use the same pattern and message.
UNENCODABLE = re.compile("[\ud800-\udfff]")
UNENCODABLE_MESSAGE = "text that cannot be encoded as UTF-8 (a lone surrogate such as \\ud800)"


def unknown_checker_message(name: str, enabled: Sequence[str]) -> str:
    """Why ``name`` cannot check anything here: not a checker at all, or one not enabled."""
    listed = ", ".join(sorted(enabled)) or "none"
    hint = ENABLE_HINTS.get(name)
    if hint is not None:
        return f"checker {name!r} is not enabled on this deployment: {hint}; enabled: {listed}"
    return f"unknown checker {name!r}; enabled: {listed}"


def validate_item(
    index: int, item: ProofLike, checkers: Collection[str], settings: VerifierSettings
) -> float:
    """Item ``index``'s time budget, once the checks that need no checker have passed.

    In order: its id and checker name are encodable text, the checker is enabled here, the
    budget is within ``lean_max_timeout_s``, and header + code fit in ``max_code_bytes``. The
    longer text fields are checked by :func:`validate_text`, which the service skips for an item
    it has already prepared once.
    """
    field = _unencodable_field(item, ("id", "checker"))
    if field is not None:
        raise InvalidItem(index, field, UNENCODABLE_MESSAGE)
    if item.checker not in checkers:
        raise InvalidItem(index, "checker", unknown_checker_message(item.checker, list(checkers)))
    budget = settings.lean_default_timeout_s if item.timeout_s is None else item.timeout_s
    max_budget = settings.lean_max_timeout_s
    if not 0 < budget <= max_budget:
        raise InvalidItem(index, "timeout_s", f"must be > 0 and at most {max_budget:g} seconds")
    if _exceeds(item.code, item.header, settings.max_code_bytes):
        raise BatchTooLarge(
            ("body", "proofs", index, "code"),
            f"header + code exceed max_code_bytes={settings.max_code_bytes}",
        )
    return budget


def validate_text(index: int, item: ProofLike) -> None:
    """Refuse item ``index`` if its code, header, statement or answer cannot be encoded."""
    field = _unencodable_field(item, ("code", "header", "statement", "answer"))
    if field is not None:
        raise InvalidItem(index, field, UNENCODABLE_MESSAGE)


def _unencodable_field(item: ProofLike, fields: Sequence[str]) -> str | None:
    """The first of ``fields`` whose text UTF-8 cannot encode, or None."""
    for field in fields:
        value = getattr(item, field)
        if isinstance(value, str) and UNENCODABLE.search(value):
            return field
    return None


def _exceeds(code: str, header: str | None, limit: int) -> bool:
    """Whether ``header + code`` is over ``limit`` UTF-8 bytes, encoding only when in doubt."""
    chars = len(code) + (len(header) if header else 0)
    if chars > limit:  # at least one byte per character
        return True
    if chars * 4 <= limit:  # at most four bytes per character
        return False
    size = len(code.encode("utf-8", "surrogatepass"))
    return size + len((header or "").encode("utf-8", "surrogatepass")) > limit
