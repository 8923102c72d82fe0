"""Which declarations a proof proves, and how to ask Lean for their axioms.

``#print axioms`` needs each declaration's full name. The *main* target is the statement's
declaration when a statement is given (a ``theorem``, ``lemma``, ``example``, or a
``def``/``abbrev`` as in a few ProofNet problems that ask for a construction), else the last
``theorem``/``lemma``/``example`` of the code. Every other ``theorem``, ``lemma`` and ``example``
(helper lemmas, or all of them without a statement) is checked too: an axiom anywhere in the
submission is refused, whether or not the main theorem uses it.

Names are qualified by the namespaces open at that point (``namespace X`` ... ``theorem foo`` is
``X.foo``; ``theorem _root_.foo`` is ``foo``), counting those the header opens. If the header or
the code opens or changes namespaces, the name is asked for as ``_root_.Full.Name``, which Lean
resolves to exactly that declaration.

An ``example`` has no name, so :meth:`Targets.code_to_run` renames each to a theorem
(:data:`EXAMPLE_NAME`, then ``..._2``, ...; an example is checked as a theorem: it must state a
proposition) and :meth:`Targets.restore_positions` moves the columns Lean reports on those lines
back to where they are in the submitted code.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from verifier_service.soundness.rules import statement_tokens
from verifier_service.soundness.source import Token, TokenKind, starts_with, tokenize

__all__ = ["EXAMPLE_NAME", "Target", "Targets", "find_target", "find_targets"]

EXAMPLE_NAME = "sieve_checked_example"
_THEOREMS = frozenset({"theorem", "lemma", "example"})
_DECLARATIONS = _THEOREMS | {"def", "abbrev"}
#: Commands after which a plain name may resolve to something else.
_SCOPE_WORDS = frozenset({"namespace", "section", "end", "open", "export"})


@dataclass(frozen=True)
class Target:
    """One declaration whose axioms decide the verdict."""

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


@dataclass(frozen=True)
class Targets:
    """Every declaration to ask ``#print axioms`` about, the main one first."""

    main: Target | None
    all: tuple[Target, ...] = ()

    @property
    def print_axioms(self) -> str:
        """One command asking for every target's axioms, one line each (line ``k + 1`` answers
        for ``all[k]``)."""
        return "\n".join(target.print_axioms for target in self.all)

    def code_to_run(self, body: str) -> str:
        """``body``, with every example renamed to a theorem."""
        parts: list[str] = []
        done = 0
        for target in self._examples:
            kw = target.keyword
            parts += [body[done : kw.start], _replacement(target)]
            done = kw.end
        parts.append(body[done:])
        return "".join(parts)

    def restore_positions(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """A message of :meth:`code_to_run`'s code, with positions in the submitted code."""
        fixed = dict(message)
        if not self._examples:
            return fixed
        by_line = self._examples_by_line
        for key in ("pos", "endPos"):
            pos = fixed.get(key)
            if not (isinstance(pos, Mapping) and isinstance(pos.get("column"), int)):
                continue
            column = pos["column"]
            shift = 0  # of the renamed keywords before this one on the line, in run columns
            line = pos.get("line")
            for target in by_line.get(line, ()) if isinstance(line, int) else ():
                kw = target.keyword
                grow = len(_replacement(target)) - len(kw.text)
                run_column = kw.column + shift
                if pos["column"] > run_column:
                    column = max(kw.column, pos["column"] - shift - grow)
                shift += grow
            fixed[key] = {**pos, "column": column}
        return fixed

    @functools.cached_property
    def _examples(self) -> list[Target]:
        return sorted((t for t in self.all if t.is_example), key=lambda t: t.keyword.start)

    @functools.cached_property
    def _examples_by_line(self) -> dict[int, list[Target]]:
        lines: dict[int, list[Target]] = {}
        for target in self._examples:
            lines.setdefault(target.keyword.line, []).append(target)
        return lines


def _replacement(target: Target) -> str:
    return f"theorem {target.name.rsplit('.', 1)[-1]}"


def find_target(body: str, *, header: str = "", statement: str | None = None) -> Target | None:
    """The main declaration (see the module docstring); ``None`` if there is none."""
    return find_targets(body, header=header, statement=statement).main


def find_targets(body: str, *, header: str = "", statement: str | None = None) -> Targets:
    """Every theorem, lemma and example of ``body``, and the statement's declaration, with the
    main target (the statement's, else the last theorem) first."""
    scopes: list[tuple[str, list[str]]] = []
    header_tokens, body_tokens = tokenize(header), tokenize(body)
    _walk(header_tokens, scopes, None)
    found: list[Target] = []
    _walk(body_tokens, scopes, found)
    found = _number_examples(found)
    rooted = any(tok.value in _SCOPE_WORDS for tok in (*header_tokens, *body_tokens))
    found = [dataclasses.replace(t, rooted=rooted or "." in t.name) for t in found]
    theorems = [t for t in found if t.keyword.value in _THEOREMS]
    if statement is not None:
        main = _at_statement(found, body_tokens, statement)
    else:
        main = theorems[-1] if theorems else None
    if main is None:
        return Targets(None, ())
    rest = [t for t in theorems if t is not main and t.name != main.name]
    return Targets(main, (main, *dict.fromkeys(rest)))


def _at_statement(found: list[Target], tokens: list[Token], statement: str) -> Target | None:
    """The declaration the statement's text begins at (the first one, if it is not found)."""
    want = statement_tokens(statement)
    if not found:
        return None
    start = next((i for i in range(len(tokens)) if want and starts_with(tokens, i, want)), None)
    if start is None:  # the statement rule refuses this proof; ask about the name it declares
        declared: list[Target] = []
        _walk(want, [], declared)
        named = [t for t in found if declared and t.name.endswith(declared[0].name)]
        return named[0] if named else found[0]
    begin = tokens[start].start
    for target in found:
        if target.keyword.start >= begin:
            return target
    return found[0]


def _number_examples(found: list[Target]) -> list[Target]:
    out, k = [], 0
    for target in found:
        if target.is_example:
            k += 1
            suffix = "" if k == 1 else f"_{k}"
            prefix = target.name[: -len(EXAMPLE_NAME)]
            target = dataclasses.replace(target, name=f"{prefix}{EXAMPLE_NAME}{suffix}")
        out.append(target)
    return out


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
