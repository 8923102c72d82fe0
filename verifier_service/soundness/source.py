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

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

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


@dataclass(frozen=True)
class Token:
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
    chars = list(source)
    for start, end in comment_spans(source):
        for i in range(start, end):
            if chars[i] != "\n":
                chars[i] = " "
    return "".join(chars)


def line_col(source: str, offset: int) -> tuple[int, int]:
    """The 1-based line and 0-based column of ``offset`` in ``source``."""
    line = source.count("\n", 0, offset) + 1
    column = offset - (source.rfind("\n", 0, offset) + 1)
    return line, column


# --- character classes (Lean 4 ``Init/Meta.lean``) --------------------------------------------


def is_letter_like(c: str) -> bool:
    o = ord(c)
    return (
        (0x3B1 <= o <= 0x3C9 and o != 0x3BB)  # lower Greek, but not λ
        or (0x391 <= o <= 0x3A9 and o not in (0x3A0, 0x3A3))  # upper Greek, but not Π and Σ
        or 0x3CA <= o <= 0x3FB  # Coptic
        or 0x1F00 <= o <= 0x1FFE  # polytonic Greek
        or 0x2100 <= o <= 0x214F  # letter-like block (ℕ, ℝ, ...)
        or 0x1D49C <= o <= 0x1D59F  # script letters
    )


def is_subscript_alnum(c: str) -> bool:
    o = ord(c)
    return 0x2080 <= o <= 0x2089 or 0x2090 <= o <= 0x209C or 0x1D62 <= o <= 0x1D6A or o == 0x2C7C


def is_id_first(c: str) -> bool:
    return (c.isascii() and c.isalpha()) or c == "_" or is_letter_like(c)


def is_id_rest(c: str) -> bool:
    return is_id_first(c) or (c.isascii() and c.isdigit()) or c in "'!?" or is_subscript_alnum(c)


def _unescape_ident(text: str) -> str:
    return text.replace("«", "").replace("»", "")


class _Lexer:
    def __init__(self, source: str) -> None:
        self.src = source
        self.n = len(source)
        self.i = 0
        self.comments: list[tuple[int, int]] = []

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.src[j] if j < self.n else ""

    def tokens(self) -> Iterator[Token]:
        src = self.src
        spaced = True
        line, line_start = 1, 0
        while self.i < self.n:
            c = src[self.i]
            if c.isspace():
                if c == "\n":
                    line += 1
                    line_start = self.i + 1
                self.i += 1
                spaced = True
                continue
            if c == "-" and self.peek(1) == "-":
                start = self.i
                end = src.find("\n", self.i)
                self.i = self.n if end < 0 else end
                self.comments.append((start, self.i))
                spaced = True
                continue
            if c == "/" and self.peek(1) == "-":
                start = self.i
                self._skip_block_comment()
                self.comments.append((start, self.i))
                line += src.count("\n", start, self.i)
                line_start = src.rfind("\n", 0, self.i) + 1
                spaced = True
                continue
            start = self.i
            kind = self._scan_token()
            text = src[start : self.i]
            yield Token(kind, text, start, self.i, line, start - line_start, spaced)
            if "\n" in text:  # multi-line string literal
                line += text.count("\n")
                line_start = src.rfind("\n", 0, self.i) + 1
            spaced = False

    def _skip_block_comment(self) -> None:
        """Lean block comments nest: ``/- a /- b -/ c -/`` is one comment."""
        depth = 0
        src = self.src
        while self.i < self.n:
            if src.startswith("/-", self.i):
                depth += 1
                self.i += 2
            elif src.startswith("-/", self.i):
                depth -= 1
                self.i += 2
                if depth == 0:
                    return
            else:
                self.i += 1
        # unterminated: Lean reports an error; everything to the end is comment

    def _scan_token(self) -> TokenKind:
        src, c = self.src, self.src[self.i]
        if c == '"':
            self._skip_string()
            return TokenKind.STRING
        if c == "r" and (self.peek(1) == '"' or (self.peek(1) == "#" and self._raw_ahead())):
            self._skip_raw_string()
            return TokenKind.STRING
        if c == "'" and (end := self._char_literal_end()) is not None:
            self.i = end
            return TokenKind.CHAR
        if c == "`":
            j = self.i + 1
            if j < self.n and src[j] == "`":
                j += 1
            if j < self.n and (is_id_first(src[j]) or src[j] == "«"):
                self.i = j
                self._skip_ident()
                return TokenKind.NAME
            self.i += 1
            return TokenKind.SYMBOL
        if c == "#" and self.i + 1 < self.n and is_id_first(src[self.i + 1]):
            self.i += 1
            while self.i < self.n and is_id_rest(src[self.i]):
                self.i += 1
            return TokenKind.COMMAND
        if is_id_first(c) or c == "«":
            self._skip_ident()
            return TokenKind.IDENT
        if c.isascii() and c.isdigit():
            self.i += 1
            while self.i < self.n and (
                is_id_rest(src[self.i])
                or (src[self.i] == "." and self.peek(1).isascii() and self.peek(1).isdigit())
            ):
                self.i += 1
            return TokenKind.NUMBER
        self.i += 1
        return TokenKind.SYMBOL

    def _skip_ident(self) -> None:
        """One identifier with its dotted parts: ``Nat.add_comm``, ``«my thm».x``."""
        src = self.src
        while True:
            if self.i < self.n and src[self.i] == "«":
                end = src.find("»", self.i + 1)
                self.i = self.n if end < 0 else end + 1
            else:
                while self.i < self.n and is_id_rest(src[self.i]):
                    self.i += 1
            nxt = self.peek(1)
            if self.peek() == "." and nxt and (is_id_first(nxt) or nxt == "«"):
                self.i += 1
                continue
            return

    def _skip_string(self) -> None:
        src = self.src
        self.i += 1
        while self.i < self.n:
            c = src[self.i]
            if c == "\\":
                self.i += 2
            elif c == '"':
                self.i += 1
                return
            else:
                self.i += 1
        self.i = self.n

    def _raw_ahead(self) -> bool:
        j = self.i + 1
        while j < self.n and self.src[j] == "#":
            j += 1
        return j < self.n and self.src[j] == '"'

    def _skip_raw_string(self) -> None:
        src = self.src
        j = self.i + 1
        hashes = 0
        while src[j] == "#":
            hashes += 1
            j += 1
        closing = '"' + "#" * hashes
        end = src.find(closing, j + 1)
        self.i = self.n if end < 0 else end + len(closing)

    def _char_literal_end(self) -> int | None:
        """Where ``'a'`` or ``'\\n'`` ends; ``None`` if no char literal starts here. (The prime
        of ``h'`` never gets here: it is lexed with ``h``.)"""
        src, j = self.src, self.i + 1
        if j >= self.n or src[j] == "\n":
            return None
        if src[j] == "\\":  # escape: '\\n', '\\'', '\\x41', '\\u{3b1}'
            k = j + 2
            while k < self.n and k < j + 12 and src[k] not in "'\n":
                k += 1
            return k + 1 if k < self.n and src[k] == "'" else None
        return j + 2 if j + 1 < self.n and src[j + 1] == "'" else None


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
