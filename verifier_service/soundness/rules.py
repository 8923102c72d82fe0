"""The soundness rules: what must hold for a Lean proof to count.

Each rule is a small pure function that returns the :class:`Violation` s it found (none: the rule
holds). A proof is ``valid`` only if every rule holds:

1. :func:`no_lean_errors` and :func:`no_sorry`: no message of severity ``error``; no ``sorry``
   (the ``sorries`` list, or the warning in either spelling), unless the policy allows it.
2. :func:`statement_unchanged`: the code proves the given statement, token for token, with
   only helper lemmas (and repeats of the header) before it.
3. :func:`allowed_axioms`: ``#print axioms`` of every theorem, lemma and example lists only
   allowed axioms (``native_decide``'s, in either Lean's spelling, only if the policy trusts
   the compiler).
4. :func:`no_forbidden_commands`: every command, attribute and option is on the allowlist
   (:mod:`.allowlist`), and no token is on the denylist: nothing that makes Lean accept what is
   not proved (``#exit``, ``debug.skipKernelTC``, ``axiom``, ...), runs code while elaborating or
   registers code to run later (``#eval``, ``@[norm_num]``, ``binder_predicate``, ...), filters
   messages (``#guard_msgs``) or changes what the statement's symbols mean (notation, instances).

Rules 2 and 4 need no Lean: they read the source with :mod:`.source`, which never mistakes a
comment or a string for code.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from verifier_service.checkers.base import Policy
from verifier_service.lean.replies import ReplReply, is_sorry_warning
from verifier_service.soundness.allowlist import (
    ALLOWED_COMMANDS,
    ALLOWED_HASH_COMMANDS,
    REFUSED_HASH_COMMANDS,
    REFUSED_PREFIXES,
    REFUSED_WORDS,
    THEOREM_WORDS,
    attribute_allowed,
    option_allowed,
    option_harmless,
)
from verifier_service.soundness.source import (
    COMMAND_WORDS,
    Command,
    Token,
    TokenKind,
    attribute_names,
    attribute_spans,
    body_commands,
    command_at,
    command_head,
    split_commands,
    starts_with,
    tokenize,
)

__all__ = [
    "DEFAULT_FORBIDDEN",
    "NATIVE_AXIOM",
    "Violation",
    "allowed_axioms",
    "is_native_axiom",
    "no_forbidden_commands",
    "no_lean_errors",
    "no_sorry",
    "statement_tokens",
    "statement_unchanged",
]


@dataclass(frozen=True)
class Violation:
    """One broken rule. ``reason`` is what clients see in ``reasons`` (``sorry``,
    ``forbidden_command:#exit``, ...); ``detail`` says where and why."""

    reason: str
    detail: str
    #: Where in the checked text (1-based line, 0-based column), when known.
    line: int | None = None
    column: int | None = None

    def to_message(self) -> dict[str, Any]:
        """A Lean-shaped message, so clients can show static findings like Lean's own."""
        message: dict[str, Any] = {
            "severity": "error",
            "data": self.detail,
            "kind": f"sieve.{self.reason.split(':', 1)[0]}",
        }
        if self.line is not None and self.column is not None:
            message["pos"] = {"line": self.line, "column": self.column}
        return message


# --- 1. errors and sorry ----------------------------------------------------------------------


def no_lean_errors(reply: ReplReply) -> list[Violation]:
    """Lean reported no error (severity ``error``; in tactic mode ``proofStatus: Error``)."""
    if not reply.has_error:
        return []
    first = reply.errors[0] if reply.errors else None
    detail = first.data if first else (reply.proof_status or "error")
    pos = first.pos if first else None
    if pos is None:
        return [Violation("lean_error", detail)]
    return [Violation("lean_error", detail, pos.line, pos.column)]


def no_sorry(reply: ReplReply, policy: Policy) -> list[Violation]:
    """No ``sorry``, decided by the ``sorries`` list first and the warning text second."""
    if policy.allow_sorry or not reply.uses_sorry:
        return []
    where = reply.sorries[0].pos if reply.sorries else None
    if where is None:
        warning = next((m for m in reply.messages if is_sorry_warning(m)), None)
        where = warning.pos if warning else None
    if where is None:
        return [Violation("sorry", "the proof uses sorry")]
    return [Violation("sorry", "the proof uses sorry", where.line, where.column)]


# --- 3. axioms --------------------------------------------------------------------------------

SORRY_AXIOM = "sorryAx"
#: ``native_decide`` up to Lean 4.28: the proof trusts the compiler through this axiom.
NATIVE_AXIOM = "Lean.ofReduceBool"
#: Lean >= 4.29 instead adds one axiom per use, ``<theorem>._native.native_decide.<n>``.
_NATIVE_PART = "._native."


def is_native_axiom(axiom: str) -> bool:
    """An axiom that stands for code run by the compiler (``native_decide``, either spelling)."""
    return axiom in (NATIVE_AXIOM, "Lean.trustCompiler") or _NATIVE_PART in axiom


def allowed_axioms(axioms: Iterable[str], policy: Policy) -> list[Violation]:
    """Every axiom the theorem depends on is allowed (``sorryAx`` too when sorry is).

    A policy that allows ``Lean.ofReduceBool`` trusts the compiler, so it also allows the
    per-theorem axioms Lean >= 4.29 writes for ``native_decide``; no other policy does.
    """
    allowed = set(policy.axioms) | ({SORRY_AXIOM} if policy.allow_sorry else set())
    native_allowed = NATIVE_AXIOM in allowed
    found: list[Violation] = []
    for axiom in dict.fromkeys(axioms):
        if axiom not in allowed and not (native_allowed and is_native_axiom(axiom)):
            found.append(Violation(f"forbidden_axiom:{axiom}", f"depends on axiom {axiom}"))
    return found


# --- 4. the allowlist: commands, attributes, options -----------------------------------------

#: Reason suffixes of the denylist (:data:`~.allowlist.REFUSED_WORDS` and friends); pass
#: ``forbidden`` without some of them to allow those. Refusals by the allowlist (an unknown
#: command, attribute or option) are always reported.
DEFAULT_FORBIDDEN: frozenset[str] = (
    REFUSED_WORDS
    | REFUSED_HASH_COMMANDS
    | {"open private", "debug.skipKernelTC", "string_interpolation"}
)


def no_forbidden_commands(
    source: str, *, forbidden: Collection[str] = DEFAULT_FORBIDDEN, where: str = "code"
) -> list[Violation]:
    """Everything in ``source`` is on the allowlist (:mod:`.allowlist`), and nothing is on the
    denylist.

    - every command begins with an allowed keyword (after attributes and modifiers): an
      unknown command, such as a Mathlib command that defines syntax, is refused by default;
    - every attribute is an allowed one (``@[simp]`` is, ``@[norm_num ...]`` is not);
    - every ``set_option`` names an allowed option;
    - no token is a refused word (Lean can start a command mid-line, where no layout rule sees
      it), ``debug.skipKernelTC`` in any spelling (``set_option``, ``«»`` escapes, the name
      literal `` `debug.skipKernelTC `` that meta code could set, a string), or ``open private``.

    Detection works on tokens, so ``-- #exit`` and ``"axiom"`` are not flagged. A string literal
    containing ``{`` is refused as ``string_interpolation``: interpolated strings hold code,
    which a lexer that cannot tell them from plain strings could miss. Reasons are
    ``forbidden_command:<what>`` (``forbidden_option:<name>`` for an option), one per kind of
    offence, at its first occurrence.
    """
    tokens, commands = _tokens_and_commands(source)
    found: dict[str, Token] = {}

    def refuse(what: str, tok: Token, *, always: bool = False) -> None:
        if (always or what in forbidden) and what not in found:
            found[what] = tok

    for i, tok in enumerate(tokens):
        what = _refused_word(tokens, i)
        if what is not None:  # a word refused by its prefix cannot be allowed by ``forbidden``
            refuse(what, tok, always=what not in DEFAULT_FORBIDDEN)
    for start, end in attribute_spans(tokens):
        for name in attribute_names(tokens, start, end):
            if not attribute_allowed(name.value):
                refuse(f"@[{name.value}]", name, always=True)
    for i, tok in enumerate(tokens):
        if tok.value == "set_option" and i + 1 < len(tokens):
            option = tokens[i + 1]
            if "skipKernelTC" not in option.value and not option_allowed(option.value):
                refuse(f"set_option {option.value}", option, always=True)
    for command in commands:
        head = command_head(command)
        if command.kind in ("import", "open", "set_option", "continuation") or head is None:
            continue
        word = head.value
        if word in ALLOWED_COMMANDS or word in ALLOWED_HASH_COMMANDS or word == "prelude":
            continue
        if word in DEFAULT_FORBIDDEN:
            refuse(word, head)
        else:
            refuse(word, head, always=True)
    return [
        Violation(
            _reason(what),
            f"`{what}` is not allowed in the {where}",
            tok.line,
            tok.column,
        )
        for what, tok in sorted(found.items(), key=lambda item: item[1].start)
    ]


@functools.lru_cache(maxsize=8)
def _tokens_and_commands(source: str) -> tuple[list[Token], tuple[Command, ...]]:
    """The tokens of ``source`` and its :func:`~.source.body_commands`: both rules on the code
    (:func:`no_forbidden_commands`, :func:`statement_unchanged`) walk the same commands, which
    cost about as much as a rule to find. Callers must not change the list."""
    tokens = tokenize(source)
    return tokens, tuple(body_commands(tokens))


def _reason(what: str) -> str:
    if what.startswith("set_option "):
        return f"forbidden_option:{what.removeprefix('set_option ')}"
    return f"forbidden_command:{what}"


def _refused_word(tokens: Sequence[Token], i: int) -> str | None:
    tok = tokens[i]
    if tok.kind is TokenKind.STRING:
        if "skipKernelTC" in tok.text:
            return "debug.skipKernelTC"
        if "{" in tok.text and not tok.text.startswith("r"):
            # ``s!"{...}"``, ``throwError "{...}"``: the braces hold code, and a string inside
            # them would make this lexer (which does not know which strings interpolate) see
            # the rest as text. Refusing every string with a brace keeps it in step with Lean.
            return "string_interpolation"
        return None
    if tok.kind is TokenKind.COMMAND:
        return tok.value if tok.value in REFUSED_HASH_COMMANDS else None
    if tok.kind not in (TokenKind.IDENT, TokenKind.NAME):
        return None
    word = tok.value
    if word.endswith("skipKernelTC"):
        return "debug.skipKernelTC"
    if tok.kind is TokenKind.NAME:
        return None
    if word in REFUSED_WORDS:
        return word
    if "." not in word and word.startswith(REFUSED_PREFIXES):
        return word
    if word == "private" and i and tokens[i - 1].value == "open":
        return "open private"
    return None


# --- 2. the statement -------------------------------------------------------------------------


def statement_unchanged(body: str, statement: str | None, header: str = "") -> list[Violation]:
    """The code proves ``statement`` unchanged, with only helper lemmas before it.

    Comparison is token by token, so comments, whitespace and line breaks do not matter, except
    where Lean reads them (``h.1`` is not ``h .1``). A ``sorry`` ending the statement
    (``... := by sorry``, as some data sets write it) is ignored. A statement that stops before
    ``:=`` must be followed by ``:=`` (or ``|``), so the code cannot extend the statement's type.

    Before the statement the code may have:

    - ``theorem``, ``lemma`` and ``example`` declarations (helper lemmas, as current provers
      write them), and ``#print``/``#check`` lines between them. A proof of a proposition
      cannot change what the statement means (proof irrelevance), and the target's
      ``#print axioms`` covers the lemmas it uses; a helper may not declare a name the
      statement mentions, so it cannot shadow one;
    - ``open`` of namespaces the header opens, and ``set_option`` lines the header has or that
      only bound resources or printing (``maxHeartbeats``, ``maxRecDepth``, ``pp.*``).

    Anything else there (``def``, ``instance``, ``notation``, ``variable``, ``open`` of something
    new, an option that changes elaboration) could change what the statement means and counts as
    a change.
    """
    if statement is None:
        return []
    want = statement_tokens(statement)
    if not want:
        return []
    tokens, commands = _tokens_and_commands(body)
    context = _HeaderContext.of(header)
    mentioned = {tok.value for tok in want if tok.kind is TokenKind.IDENT}
    i = 0
    for command in commands:
        if starts_with(tokens, i, want):
            break
        problem = _before_statement(command, tokens, i, context, mentioned)
        if problem is not None:
            tok, detail = problem
            return [Violation("statement_changed", detail, tok.line, tok.column)]
        i += len(command.tokens)
    else:
        return [Violation("statement_changed", "the code does not contain the statement")]
    after = i + len(want)
    if not _ends_with_assignment(want) and not _assignment_at(tokens, after):
        tok = tokens[after] if after < len(tokens) else tokens[-1]
        return [
            Violation(
                "statement_changed",
                "the code changes the statement after its end",
                tok.line,
                tok.column,
            )
        ]
    return []


def _before_statement(
    command: Command,
    tokens: list[Token],
    i: int,
    context: _HeaderContext,
    mentioned: set[str],
) -> tuple[Token, str] | None:
    """Why ``command``, found before the statement, could change what it means (or ``None``)."""
    first = command.tokens[0]
    if command.kind in ("open", "set_option"):
        if context.is_harmless(command):
            return None
        return first, f"`{command.canonical}` before the statement can change what it means"
    head = command_head(command)
    if command.kind == "continuation":
        inner = 0
    elif head is not None and head.value in ALLOWED_HASH_COMMANDS:  # only prints
        inner = 1
    elif head is not None and head.value in THEOREM_WORDS:
        inner = command.tokens.index(head) + 1
        name = command.tokens[inner] if inner < len(command.tokens) else None
        if (
            head.value != "example"
            and name is not None
            and name.kind is TokenKind.IDENT
            and (name.value in mentioned or name.value.rsplit(".", 1)[-1] in mentioned)
        ):
            return name, f"the helper `{name.value}` declares a name the statement uses"
    else:
        what = head.text if head is not None else first.text
        return first, f"`{what}` before the statement can change what it means"
    # Inside a helper (at any bracket depth): a command word there may be one Lean runs.
    for k in range(inner, len(command.tokens)):
        tok = command.tokens[k]
        if tok.kind is not TokenKind.IDENT or tok.value not in COMMAND_WORDS:
            continue
        if tok.value in ("open", "set_option"):
            nested = command_at(tokens, i + k)
            if context.is_harmless(nested):
                continue
        return tok, f"`{tok.value}` before the statement can change what it means"
    return None


def statement_tokens(statement: str) -> list[Token]:
    """The tokens of a statement, without a trailing placeholder ``sorry``."""
    tokens = tokenize(statement)
    if tokens and tokens[-1].value == "sorry":
        tokens.pop()
    return tokens


def _ends_with_assignment(want: Sequence[Token]) -> bool:
    """``... :=`` or ``... := by``: the type is complete, the rest is proof."""
    end = len(want) - (1 if want and want[-1].value == "by" else 0)
    return (
        end >= 2
        and want[end - 2].text == ":"
        and want[end - 1].text == "="
        and not want[end - 1].spaced
    )


def _assignment_at(tokens: Sequence[Token], i: int) -> bool:
    if i < len(tokens) and tokens[i].text == "|":
        return True
    return (
        i + 1 < len(tokens)
        and tokens[i].text == ":"
        and tokens[i + 1].text == "="
        and not tokens[i + 1].spaced
    )


@dataclass(frozen=True)
class _HeaderContext:
    """What a header already establishes, so that repeating it in the code is harmless."""

    commands: frozenset[str]
    opened: frozenset[str]  # namespaces opened plainly (also activates their scoped syntax)
    opened_scoped: frozenset[str]

    @classmethod
    def of(cls, header: str) -> _HeaderContext:
        commands: set[str] = set()
        opened: set[str] = set()
        scoped: set[str] = set()
        for command in split_commands(tokenize(header)):
            if command.kind in ("open", "set_option"):
                commands.add(_without_in(command))
            if command.kind == "open" and (names := _simple_open(command)) is not None:
                is_scoped, namespaces = names
                (scoped if is_scoped else opened).update(namespaces)
        return cls(frozenset(commands), frozenset(opened), frozenset(scoped))

    def is_harmless(self, command: Command) -> bool:
        if command.kind == "set_option":
            name = command.words[1] if len(command.words) > 1 else ""
            return option_harmless(name) or _without_in(command) in self.commands
        if command.kind == "open":
            if _without_in(command) in self.commands:
                return True
            names = _simple_open(command)
            if names is None:
                return False
            is_scoped, namespaces = names
            known = self.opened | self.opened_scoped if is_scoped else self.opened
            return namespaces <= known
        return False


def _without_in(command: Command) -> str:
    text = command.canonical
    return text[:-3] if command.words[-1] == "in" else text


def _simple_open(command: Command) -> tuple[bool, frozenset[str]] | None:
    """``open [scoped] A B C [in]`` as (scoped?, namespaces); ``None`` for other forms
    (``hiding``, ``renaming``, explicit names), which are only harmless as exact repeats."""
    words = list(command.words[1:])
    if words and words[-1] == "in":
        words.pop()
    is_scoped = bool(words) and words[0] == "scoped"
    if is_scoped:
        words.pop(0)
    names = [tok for tok in command.tokens[1 + is_scoped :] if tok.value != "in"]
    if not words or any(tok.kind is not TokenKind.IDENT for tok in names):
        return None
    if any(w in ("hiding", "renaming") for w in words):
        return None
    return is_scoped, frozenset(words)
