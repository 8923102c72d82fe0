"""Lexing Lean 4 source text, just far enough to reason about it safely.

Header normalisation and the static soundness rules must never mistake the inside of a comment
or a string for code (``-- #exit`` is harmless) and must see through layout (``set_option`` and
``debug.skipKernelTC`` on different lines are one command). A full Lean parser is not needed for
that: comments, string/char literals, identifiers (with ``«»`` escapes and dotted parts), numbers
and single-character symbols are enough, as long as the lexer agrees with Lean on what is a
comment and what is a string. Where it cannot agree (unterminated comment or string) Lean
rejects the file anyway.

Character classes follow Lean's ``isIdFirst`` / ``isIdRest`` / ``isLetterLike``.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

__all__ = [
    "Command",
    "Token",
    "TokenKind",
    "blank_comments",
    "command_at",
    "comment_spans",
    "line_col",
    "split_commands",
    "tokenize",
]


class TokenKind(str, Enum):
    IDENT = "ident"  # also keywords: Lean's keywords lex like identifiers here
    COMMAND = "command"  # ``#exit``, ``#eval``, ``#print``: ``#`` glued to a word
    NUMBER = "number"
    STRING = "string"  # ``"..."``, ``r"..."``, ``r#"..."#``
    CHAR = "char"  # ``'a'``
    NAME = "name"  # `` `foo `` and ``` ``foo ```
    SYMBOL = "symbol"  # any other single character


class Token(NamedTuple):
    """One token. (A named tuple: code can carry tens of thousands of them.)"""

    kind: TokenKind
    #: The source text exactly as written.
    text: str
    #: Offsets into the source, ``source[start:end] == text``.
    start: int
    end: int
    #: 1-based line and 0-based column (in code points, as Lean reports them).
    line: int
    column: int
    #: Whether whitespace or a comment separates this token from the previous one. Lean is
    #: sensitive to that in a few places (``h.1`` vs ``h .1``), so statement comparison keeps it.
    spaced: bool

    @property
    def value(self) -> str:
        """The canonical form: an identifier without its ``«»`` escapes (``«debug».x`` is
        ``debug.x``), anything else as written."""
        if self.kind is TokenKind.IDENT and "«" in self.text:
            return _unescape_ident(self.text)
        return self.text


def tokenize(source: str) -> list[Token]:
    """All tokens of ``source``, comments skipped."""
    return list(_Lexer(source).tokens())


def comment_spans(source: str) -> list[tuple[int, int]]:
    """``(start, end)`` offsets of every comment (line, block, doc) in ``source``."""
    lexer = _Lexer(source)
    for _ in lexer.tokens():
        pass
    return lexer.comments


def blank_comments(source: str) -> str:
    """``source`` with every comment replaced by spaces, newlines kept, so offsets, lines and
    columns still refer to the original text."""
    parts: list[str] = []
    done = 0
    for start, end in comment_spans(source):
        parts += [source[done:start], _NOT_NEWLINE.sub(" ", source[start:end])]
        done = end
    parts.append(source[done:])
    return "".join(parts)


def line_col(source: str, offset: int) -> tuple[int, int]:
    """The 1-based line and 0-based column of ``offset`` in ``source``."""
    line = source.count("\n", 0, offset) + 1
    column = offset - (source.rfind("\n", 0, offset) + 1)
    return line, column


# --- character classes (Lean 4 ``Init/Meta.lean``: isIdFirst, isIdRest, isLetterLike) -----

_LETTER_LIKE = (
    "\u03b1-\u03ba\u03bc-\u03c9"  # lower Greek, but not λ
    "\u0391-\u039f\u03a1-\u03a2\u03a4-\u03a9"  # upper Greek, but not Π and Σ
    "\u03ca-\u03fb"  # Coptic
    "\u1f00-\u1ffe"  # polytonic Greek
    "\u2100-\u214f"  # letter-like block (ℕ, ℝ, ...)
    "\U0001d49c-\U0001d59f"  # script letters
)
_SUBSCRIPTS = "\u2080-\u2089\u2090-\u209c\u1d62-\u1d6a\u2c7c"
_ID_FIRST = f"A-Za-z_{_LETTER_LIKE}"
_ID_REST = f"{_ID_FIRST}0-9'!?{_SUBSCRIPTS}"
_ID_PART = f"(?:«[^»]*(?:»|\\Z)|[{_ID_FIRST}][{_ID_REST}]*)"
_IDENT = f"{_ID_PART}(?:\\.{_ID_PART})*"

#: Whitespace, then one token or comment (the alternatives are tried in this order).
_SCANNER = re.compile(
    r"(?P<space>\s*)(?:"
    + "|".join(
        [
            r"(?P<line_comment>--[^\n]*)",
            r"(?P<block_comment>/-)",
            r'(?P<string>"(?:[^"\\]|\\.)*(?:"|\\?\Z))',
            r'(?P<raw_string>r(?P<hashes>#*)".*?(?:"(?P=hashes)|\Z))',
            r"(?P<char>'(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]{1,6}\}|[^\n])|[^\\\n])')",
            f"(?P<name>``?(?={_ID_PART}){_IDENT})",
            f"(?P<command>#[{_ID_FIRST}][{_ID_REST}]*)",
            f"(?P<ident>{_IDENT})",
            f"(?P<number>[0-9](?:[{_ID_REST}]|\\.(?=[0-9]))*)",
            r"(?P<symbol>.)",
            r"\Z",
        ]
    )
    + ")",
    re.DOTALL,
)
_COMMENT_EDGE = re.compile(r"/-|-/")
_NOT_NEWLINE = re.compile(r"[^\n]")
_KINDS = {
    "string": TokenKind.STRING,
    "hashes": TokenKind.STRING,  # the inner group of a raw string
    "raw_string": TokenKind.STRING,
    "char": TokenKind.CHAR,
    "name": TokenKind.NAME,
    "command": TokenKind.COMMAND,
    "ident": TokenKind.IDENT,
    "number": TokenKind.NUMBER,
    "symbol": TokenKind.SYMBOL,
}


def _unescape_ident(text: str) -> str:
    return text.replace("«", "").replace("»", "")


class _Lexer:
    """Yields tokens and records comment spans; one regex match per token, plus a small loop for
    nested block comments (which no regex can match)."""

    def __init__(self, source: str) -> None:
        self.src = source
        self.comments: list[tuple[int, int]] = []
        self._line_starts = [0, *(m.end() for m in re.finditer("\n", source))]

    def tokens(self) -> Iterator[Token]:
        src, i = self.src, 0
        spaced = True
        starts = self._line_starts
        while i < len(src):
            for match in _SCANNER.finditer(src, i):
                kind = match.lastgroup
                start, i = match.end("space"), match.end()
                if kind == "space" or kind is None:  # trailing whitespace
                    break
                if kind == "line_comment":
                    self.comments.append((start, i))
                    spaced = True
                    continue
                if kind == "block_comment":  # nests, so the regex cannot find its end
                    i = _block_comment_end(src, start)
                    self.comments.append((start, i))
                    spaced = True
                    break  # scan again from the end of the comment
                line = bisect_right(starts, start)
                yield Token(
                    _KINDS[kind],
                    src[start:i],
                    start,
                    i,
                    line,
                    start - starts[line - 1],
                    spaced or start > match.start(),
                )
                spaced = False
            else:
                return


def _block_comment_end(src: str, start: int) -> int:
    """Lean block comments nest: ``/- a /- b -/ c -/`` is one comment. Unterminated, it runs to
    the end (Lean reports an error)."""
    depth = 0
    for edge in _COMMENT_EDGE.finditer(src, start):
        depth += 1 if edge.group() == "/-" else -1
        if depth == 0:
            return edge.end()
    return len(src)


# --- commands ---------------------------------------------------------------------------------

#: Words that begin a command; an ``open`` ends where one of them (or a line at column 0) starts.
COMMAND_WORDS = frozenset(
    {
        "abbrev", "attribute", "axiom", "class", "def", "deriving", "elab", "elab_rules", "end",
        "example", "export", "import", "inductive", "infix", "infixl", "infixr", "initialize",
        "instance", "lemma", "local", "macro", "macro_rules", "mutual", "namespace",
        "noncomputable", "notation", "opaque", "open", "partial", "postfix", "prefix", "private",
        "protected", "public", "scoped", "section", "set_option", "structure", "syntax",
        "theorem", "universe", "unsafe", "variable",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Command:
    """One top-level command as far as the lexer can tell: ``import``, ``open``, ``set_option``
    have known extents; any other command runs until the next token at column 0 (Lean's layout
    convention, and the only one that matters for a header)."""

    kind: str  # "import", "open", "set_option" or "other"
    tokens: tuple[Token, ...]

    @property
    def start(self) -> int:
        return self.tokens[0].start

    @property
    def end(self) -> int:
        return self.tokens[-1].end

    @property
    def canonical(self) -> str:
        """The tokens with canonical whitespace: one space where the source had any."""
        parts: list[str] = []
        for i, tok in enumerate(self.tokens):
            if i and tok.spaced:
                parts.append(" ")
            parts.append(tok.text)
        return "".join(parts)

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(tok.value for tok in self.tokens)


def split_commands(tokens: list[Token]) -> list[Command]:
    """Group ``tokens`` into top-level commands (see :class:`Command`)."""
    commands: list[Command] = []
    i = 0
    while i < len(tokens):
        command = command_at(tokens, i)
        commands.append(command)
        i += len(command.tokens)
    return commands


def command_at(tokens: list[Token], i: int) -> Command:
    """The command that starts at ``tokens[i]``."""
    return Command(_command_kind(tokens, i), tuple(tokens[i : _command_end(tokens, i)]))


_IMPORT_MODIFIERS = frozenset({"public", "meta", "private"})


def _command_kind(tokens: list[Token], i: int) -> str:
    word = tokens[i].value
    if word in ("import", "prelude"):
        return "import"
    if word in _IMPORT_MODIFIERS:
        j = i
        while j < len(tokens) and tokens[j].value in _IMPORT_MODIFIERS:
            j += 1
        if j < len(tokens) and tokens[j].value == "import":
            return "import"
    if word in ("open", "set_option"):
        return word
    return "other"


def _command_end(tokens: list[Token], i: int) -> int:
    n = len(tokens)
    kind = _command_kind(tokens, i)
    if kind == "import":
        if tokens[i].value == "prelude":
            return i + 1
        while tokens[i].value != "import":
            i += 1
        i += 1
        if i < n and tokens[i].value == "all":
            i += 1
        return min(i + 1, n)
    if kind == "set_option":
        j = min(i + 3, n)
        return j + 1 if j < n and tokens[j].value == "in" else j
    if kind == "open":
        j = i + 1
        while j < n:
            tok = tokens[j]
            if tok.value == "in":
                return j + 1
            if tok.column == 0 and tok.line != tokens[i].line:
                return j
            if tok.kind is TokenKind.COMMAND or (
                tok.value in COMMAND_WORDS and not (tok.value == "scoped" and j == i + 1)
            ):
                return j
            j += 1
        return n
    j = i + 1
    while j < n and not (tokens[j].column == 0 and tokens[j].line != tokens[j - 1].line):
        j += 1
    return j
