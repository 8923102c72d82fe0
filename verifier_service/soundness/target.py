"""Which theorem a proof proves, and how to ask Lean for its axioms.

``#print axioms`` needs the theorem's full name. With a statement it is the statement's
declaration (a ``theorem``, ``lemma``, ``example``, or a ``def``/``abbrev`` as in a few ProofNet
problems that ask for a construction); without one, the last ``theorem``/``lemma``/``example``
of the code. The name is
qualified by the namespaces open at that point (``namespace X`` ... ``theorem foo`` is
``X.foo``; ``theorem _root_.foo`` is ``foo``), counting those the header opens.

If the header or the code opens or changes namespaces, the name is asked for as
``_root_.Full.Name``, which Lean resolves to exactly that declaration.

An ``example`` has no name, so :meth:`Target.code_to_run` renames it to a theorem called
:data:`EXAMPLE_NAME` (an example is checked as a theorem: it must state a proposition) and
:meth:`Target.restore_positions` moves the columns Lean reports on that line back to where they
are in the submitted code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from verifier_service.soundness.source import Token, TokenKind, tokenize

__all__ = ["EXAMPLE_NAME", "Target", "find_target"]

EXAMPLE_NAME = "sieve_checked_example"
_THEOREMS = frozenset({"theorem", "lemma", "example"})
_DECLARATIONS = _THEOREMS | {"def", "abbrev"}
#: Commands after which a plain name may resolve to something else.
_SCOPE_WORDS = frozenset({"namespace", "section", "end", "open", "export"})


@dataclass(frozen=True)
class Target:
    """The declaration whose axioms decide the verdict."""

    #: Full name to ``#print axioms`` (escaped as in the source).
    name: str
    #: The declaration keyword as written (``theorem``, ``lemma``, ``example``).
    keyword: Token
    #: Ask for ``_root_.name``: some namespace is open or opened, so the plain name could
    #: resolve to another declaration (``X.foo`` declared after ``foo``, inside ``namespace X``).
    rooted: bool = False

    @property
    def is_example(self) -> bool:
        return self.keyword.value == "example"

    @property
    def print_axioms(self) -> str:
        return f"#print axioms {'_root_.' if self.rooted else ''}{self.name}"

    def code_to_run(self, body: str) -> str:
        """``body``, with the example renamed to a theorem when the target is one."""
        if not self.is_example:
            return body
        kw = self.keyword
        return body[: kw.start] + self._replacement + body[kw.end :]

    def restore_positions(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """A message of :meth:`code_to_run`'s code, with positions in the submitted code."""
        fixed = dict(message)
        if not self.is_example:
            return fixed
        shift = len(self._replacement) - len(self.keyword.text)
        for key in ("pos", "endPos"):
            pos = fixed.get(key)
            if (
                isinstance(pos, Mapping)
                and pos.get("line") == self.keyword.line
                and isinstance(pos.get("column"), int)
                and pos["column"] > self.keyword.column
            ):
                column = max(self.keyword.column, pos["column"] - shift)
                fixed[key] = {**pos, "column": column}
        return fixed

    @property
    def _replacement(self) -> str:
        return f"theorem {EXAMPLE_NAME}"


def find_target(body: str, *, header: str = "", statement: str | None = None) -> Target | None:
    """The declaration to check: the first one when a statement is given (the code begins with
    the statement), else the last theorem, lemma or example. ``None`` if there is none."""
    scopes: list[tuple[str, list[str]]] = []
    header_tokens, body_tokens = tokenize(header), tokenize(body)
    _walk(header_tokens, scopes, None)
    found: list[Target] = []
    _walk(body_tokens, scopes, found)
    if statement is not None:
        target = found[0] if found else None
    else:
        theorems = [t for t in found if t.keyword.value in _THEOREMS]
        target = theorems[-1] if theorems else None
    if target is None:
        return None
    rooted = "." in target.name or any(
        tok.value in _SCOPE_WORDS for tok in (*header_tokens, *body_tokens)
    )
    return dataclasses.replace(target, rooted=rooted)


def _walk(
    tokens: list[Token], scopes: list[tuple[str, list[str]]], found: list[Target] | None
) -> None:
    """Follow ``namespace``/``section``/``mutual``/``end`` through ``tokens``, collecting
    declarations into ``found``."""
    for i, tok in enumerate(tokens):
        if tok.kind is not TokenKind.IDENT:
            continue
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        word = tok.value
        if word == "namespace" and nxt is not None:
            scopes.append(("namespace", nxt.text.split(".")))
        elif word in ("section", "mutual"):
            scopes.append((word, []))
        elif word == "end":
            _close(scopes, nxt if nxt is not None and nxt.line == tok.line else None)
        elif word in _DECLARATIONS and found is not None:
            if word == "example":
                found.append(Target(_qualify(scopes, EXAMPLE_NAME), tok))
            elif nxt is not None and nxt.kind is TokenKind.IDENT:
                found.append(Target(_qualify(scopes, nxt.text), tok))


def _close(scopes: list[tuple[str, list[str]]], name: Token | None) -> None:
    """``end`` closes one scope; ``end A.B`` closes scopes until ``A.B``'s parts are closed."""
    if not scopes:
        return
    parts = 1
    if name is not None and name.kind is TokenKind.IDENT and scopes[-1][0] == "namespace":
        parts = max(1, len(name.text.split(".")))
    while parts > 0 and scopes:
        kind, names = scopes.pop()
        parts -= max(1, len(names)) if kind == "namespace" else 1


def _qualify(scopes: list[tuple[str, list[str]]], name: str) -> str:
    if name.startswith("_root_."):
        return name[len("_root_.") :]
    prefix = [part for kind, names in scopes if kind == "namespace" for part in names]
    return ".".join([*prefix, name])
