"""The soundness rules: what must hold for a Lean proof to count.

Each rule is a small pure function that returns the :class:`Violation` s it found (none: the rule
holds). A proof is ``valid`` only if every rule holds:

1. :func:`no_lean_errors` and :func:`no_sorry`: no message of severity ``error``; no ``sorry``
   (the ``sorries`` list, or the warning in either spelling), unless the policy allows it.
2. :func:`statement_unchanged`: the code begins with the given statement, token for token.
3. :func:`allowed_axioms`: ``#print axioms`` of the proved theorem lists only allowed axioms.
4. :func:`no_forbidden_commands`: defence in depth against commands that can make Lean accept
   what is not proved (``#exit``, ``debug.skipKernelTC``, ``axiom``, ...), run code while
   elaborating (``#eval``, ``run_cmd``, ...) or change what the statement's symbols mean
   (notation, macros, instances).

Rules 2 and 4 need no Lean: they read the source with :mod:`.source`, which never mistakes a
comment or a string for code.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from verifier_service.checkers.base import Policy
from verifier_service.lean.replies import ReplReply, is_sorry_warning
from verifier_service.soundness.source import Command, Token, TokenKind, command_at, tokenize

__all__ = [
    "DEFAULT_FORBIDDEN",
    "Violation",
    "allowed_axioms",
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
    return [Violation("lean_error", detail, pos and pos.line, pos and pos.column)]


def no_sorry(reply: ReplReply, policy: Policy) -> list[Violation]:
    """No ``sorry``, decided by the ``sorries`` list first and the warning text second."""
    if policy.allow_sorry or not reply.uses_sorry:
        return []
    where = reply.sorries[0].pos if reply.sorries else None
    if where is None:
        warning = next((m for m in reply.messages if is_sorry_warning(m)), None)
        where = warning.pos if warning else None
    return [
        Violation("sorry", "the proof uses sorry", where and where.line, where and where.column)
    ]


# --- 3. axioms --------------------------------------------------------------------------------

SORRY_AXIOM = "sorryAx"


def allowed_axioms(axioms: Iterable[str], policy: Policy) -> list[Violation]:
    """Every axiom the theorem depends on is allowed (``sorryAx`` too when sorry is)."""
    allowed = set(policy.axioms) | ({SORRY_AXIOM} if policy.allow_sorry else set())
    found: list[Violation] = []
    for axiom in dict.fromkeys(axioms):
        if axiom not in allowed:
            found.append(Violation(f"forbidden_axiom:{axiom}", f"depends on axiom {axiom}"))
    return found


# --- 4. forbidden commands --------------------------------------------------------------------

#: Words refused wherever they occur as a token (never inside comments or strings).
_FORBIDDEN_WORDS = frozenset(
    {
        # makes Lean stop checking, or trusts unchecked code
        "#exit", "axiom", "unsafe", "implemented_by", "extern",
        # runs arbitrary code (IO) while elaborating
        "#eval", "#eval!", "#guard", "run_cmd", "run_tac", "run_elab", "run_meta", "by_elab",
        "initialize", "builtin_initialize", "simproc", "dsimproc", "simproc_decl",
        "dsimproc_decl",
        # can change what the statement's symbols mean
        "notation", "notation3", "infix", "infixl", "infixr", "prefix", "postfix", "macro",
        "macro_rules", "elab", "elab_rules", "syntax", "declare_syntax_cat", "instance",
    }
)  # fmt: skip

#: Attributes refused inside ``@[...]`` / ``attribute [...]`` (they are plain words elsewhere).
_FORBIDDEN_ATTRIBUTES = frozenset(
    {"default_instance", "command_elab", "term_elab", "tactic", "init", "builtin_init"}
)

#: Every reason suffix :func:`no_forbidden_commands` can report; pass a subset to allow some.
DEFAULT_FORBIDDEN: frozenset[str] = (
    _FORBIDDEN_WORDS
    | {f"@[{name}]" for name in _FORBIDDEN_ATTRIBUTES}
    | {"open private", "debug.skipKernelTC", "string_interpolation"}
)


def no_forbidden_commands(
    source: str, *, forbidden: Collection[str] = DEFAULT_FORBIDDEN, where: str = "code"
) -> list[Violation]:
    """No forbidden command or attribute anywhere in ``source``.

    Detection works on tokens, so ``-- #exit`` and ``"axiom"`` are not flagged while
    ``set_option`` and ``debug.skipKernelTC`` on different lines, or spelled with ``«»``, are.
    A string literal containing ``{`` is refused as ``string_interpolation``: interpolated
    strings hold code, which a lexer that cannot tell them from plain strings could miss.
    Reasons are ``forbidden_command:<what>``, one per kind of offence (the first occurrence).
    """
    tokens = tokenize(source)
    found: dict[str, Token] = {}
    attribute_depth = 0  # > 0 inside ``@[...]`` or ``attribute [...]``
    for i, tok in enumerate(tokens):
        what = _offence(tokens, i, attribute_depth > 0)
        if what is not None and what in forbidden and what not in found:
            found[what] = tok
        if (
            tok.text == "["
            and i
            and (tokens[i - 1].text == "@" or tokens[i - 1].value == "attribute")
        ):
            attribute_depth = 1
        elif attribute_depth and tok.text == "[":
            attribute_depth += 1
        elif attribute_depth and tok.text == "]":
            attribute_depth -= 1
    return [
        Violation(
            f"forbidden_command:{what}",
            f"`{what}` is not allowed in the {where}",
            tok.line,
            tok.column,
        )
        for what, tok in found.items()
    ]


def _offence(tokens: Sequence[Token], i: int, in_attribute: bool) -> str | None:
    tok = tokens[i]
    if tok.kind is TokenKind.STRING and "{" in tok.text and not tok.text.startswith("r"):
        # ``s!"{...}"``, ``throwError "{...}"``: the braces hold code, and a string inside them
        # would make this lexer (which does not know which strings interpolate) see the rest
        # as text. Refusing every string with a brace keeps it in step with Lean.
        return "string_interpolation"
    if tok.kind not in (TokenKind.IDENT, TokenKind.COMMAND):
        return None
    word = tok.value
    if word in _FORBIDDEN_WORDS:
        return word
    if word.endswith("skipKernelTC"):
        return "debug.skipKernelTC"
    if word == "private" and i and tokens[i - 1].value == "open":
        return "open private"
    if in_attribute and word in _FORBIDDEN_ATTRIBUTES:
        return f"@[{word}]"
    return None


# --- 2. the statement -------------------------------------------------------------------------

#: Options that only bound resources or change printing: repeating them before the statement
#: cannot change what it means.
_HARMLESS_OPTIONS = frozenset(
    {"maxHeartbeats", "maxRecDepth", "synthInstance.maxHeartbeats", "synthInstance.maxSize"}
)
_HARMLESS_OPTION_PREFIXES = ("pp.", "trace.", "linter.", "profiler")


def statement_unchanged(body: str, statement: str | None, header: str = "") -> list[Violation]:
    """The code begins with ``statement`` unchanged.

    Comparison is token by token, so comments, whitespace and line breaks do not matter, except
    where Lean reads them (``h.1`` is not ``h .1``). A ``sorry``
    ending the statement (``... := by sorry``, as some data sets write it) is ignored. Before
    the statement the code may only repeat the header: ``open`` of namespaces the header opens
    and ``set_option`` lines the header has or that only bound resources or printing
    (``maxHeartbeats``, ``pp.*``); any other command there could change what the statement
    means and counts as a change. A statement that stops before ``:=`` must be followed by
    ``:=`` (or ``|``), so the code cannot extend the statement's type.
    """
    if statement is None:
        return []
    want = statement_tokens(statement)
    if not want:
        return []
    tokens = tokenize(body)
    context = _HeaderContext.of(header)
    i = 0
    while not _starts_with(tokens, i, want):
        if i >= len(tokens):
            return [Violation("statement_changed", "the code does not contain the statement")]
        command = command_at(tokens, i)
        if not context.is_harmless(command):
            tok = tokens[i]
            return [
                Violation(
                    "statement_changed",
                    "the code does not begin with the statement",
                    tok.line,
                    tok.column,
                )
            ]
        i += len(command.tokens)
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


def statement_tokens(statement: str) -> list[Token]:
    """The tokens of a statement, without a trailing placeholder ``sorry``."""
    tokens = tokenize(statement)
    if tokens and tokens[-1].value == "sorry":
        tokens.pop()
    return tokens


def _same(tokens: Sequence[Token], i: int, want: Sequence[Token], k: int) -> bool:
    a, b = tokens[i + k], want[k]
    if a.kind is not b.kind or a.value != b.value:
        return False
    # Spacing changes meaning only around a dot (``h.1`` projects, ``h .1`` applies).
    near_dot = a.text == "." or (k > 0 and want[k - 1].text == ".")
    return k == 0 or not near_dot or a.spaced == b.spaced


def _starts_with(tokens: Sequence[Token], i: int, want: Sequence[Token]) -> bool:
    if i + len(want) > len(tokens):
        return False
    return all(_same(tokens, i, want, k) for k in range(len(want)))


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
        tokens = tokenize(header)
        i = 0
        while i < len(tokens):
            command = command_at(tokens, i)
            i += len(command.tokens)
            if command.kind in ("open", "set_option"):
                commands.add(_without_in(command))
            if command.kind == "open" and (names := _simple_open(command)) is not None:
                is_scoped, namespaces = names
                (scoped if is_scoped else opened).update(namespaces)
        return cls(frozenset(commands), frozenset(opened), frozenset(scoped))

    def is_harmless(self, command: Command) -> bool:
        if command.kind == "set_option":
            name = command.words[1] if len(command.words) > 1 else ""
            return (
                name in _HARMLESS_OPTIONS
                or name.startswith(_HARMLESS_OPTION_PREFIXES)
                or _without_in(command) in self.commands
            )
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
