"""Lexing Lean 4 source text, just far enough to reason about it safely: a pre-filter.

Header normalisation and the static soundness rules must never mistake the inside of a comment
or a string for code (``-- #exit`` is harmless) and must see through layout (``set_option`` and
``debug.skipKernelTC`` on different lines are one command). Comments, string/char literals,
identifiers (with ``«»`` escapes and dotted parts), numbers and single-character symbols are
enough for that, as long as the lexer agrees with Lean on what is a comment and what is a string.

This lexer is a copy of Lean's, and a copy can only *refuse* early: it never makes a proof
valid on its own (Lean's own parse decides). Each function below names the function of Lean's
``src/Lean/Parser/Basic.lean`` (``whitespace``, ``finishCommentBlock``, ``tokenFn``,
``charLitFnAux``, ``numberFnAux``, ``identFnAux``) or ``Term.lean`` (``docComment``,
``commentBody``) it mirrors. Where Lean's reading depends on something a lexer cannot know (the
token table of the header's environment) or has changed between Lean versions, the lexer records
an :class:`Ambiguity` instead of guessing, and the rules refuse the text
(``ambiguous_source:<class>``, see :func:`ambiguities`):

- ``comment_opener``: ``/-/``. Lean's ``whitespace`` skips the character after a block comment's
  ``/-`` unread, so ``/-/- … -/`` is one level of nesting to Lean and two to a naive lexer;
- ``doc_comment``: a comment in the whitespace right after ``/--`` or ``/-!``. Those are tokens,
  and every token consumes the whitespace after it, line comments included, before the comment's
  body (``commentBody``) starts: ``/-- -- -/`` does not end at its ``-/``;
- ``char_literal``: a character literal glued to a preceding symbol or ``#`` command. Lean's
  ``tokenFn`` reads the longest token of the environment's token table first, and tokens may end
  in a quote (core's ``]'``, Mathlib's ``''`` and ``⁻¹'``), so the quote may not open a literal;
- ``escaped_keyword``: an identifier escaped with ``«»`` that spells a command word or keyword
  (``«theorem»``). To Lean it is an identifier, never the keyword; the rules read words by their
  unescaped value, so they could take it for the keyword.

Where the lexer cannot agree otherwise (unterminated comment or string, a bad escape) Lean
rejects the file anyway. Character classes follow Lean's ``isIdFirst`` / ``isIdRest`` /
``isLetterLike``; whitespace is Lean's ``Char.isWhitespace`` (space, tab, CR, LF: Lean refuses
tabs and lone CRs, which keeps them harmless here).
"""

from __future__ import annotations

import re
import threading
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from verifier_service.soundness.allowlist import (
    ALLOWED_COMMANDS,
    ALLOWED_HASH_COMMANDS,
    CONTINUATION_WORDS,
    DECLARATION_WORDS,
    MODIFIERS,
    REFUSED_HASH_COMMANDS,
    REFUSED_WORDS,
)

__all__ = [
    "AMBIGUITY_CLASSES",
    "Ambiguity",
    "Command",
    "Token",
    "TokenKind",
    "ambiguities",
    "attribute_names",
    "attribute_spans",
    "blank_comments",
    "body_commands",
    "command_at",
    "command_head",
    "comment_spans",
    "first_token",
    "line_col",
    "split_commands",
    "starts_with",
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


#: The classes of :class:`Ambiguity` (the ``<class>`` of ``ambiguous_source:<class>``).
AMBIGUITY_CLASSES = ("comment_opener", "doc_comment", "char_literal", "escaped_keyword")


class Ambiguity(NamedTuple):
    """A place where Lean's reading of the text is not certain to be the lexer's."""

    #: One of :data:`AMBIGUITY_CLASSES`.
    kind: str
    #: Offset, 1-based line and 0-based column of the place.
    start: int
    line: int
    column: int
    detail: str


def tokenize(source: str) -> list[Token]:
    """All tokens of ``source``, comments skipped."""
    return list(_lex(source)[0])


def first_token(source: str) -> Token | None:
    """The first token of ``source`` (comments skipped), lexing only as far as it: the header
    normaliser needs no more of a proof's text than that, and the rules lex the text it leaves."""
    with _lexed_lock:
        hit = _lexed.get(source)
    if hit is not None:
        return hit[0][0] if hit[0] else None
    return next(_Lexer(source).tokens(), None)


def comment_spans(source: str) -> list[tuple[int, int]]:
    """``(start, end)`` offsets of every comment (line, block, doc) in ``source``."""
    return list(_lex(source)[1])


def ambiguities(source: str) -> list[Ambiguity]:
    """Every place of ``source`` where Lean may read it otherwise than this lexer does (see the
    module docstring); the rules refuse a text with any."""
    return list(_lex(source)[2])


_Lexed = tuple[tuple[Token, ...], tuple[tuple[int, int], ...], tuple[Ambiguity, ...]]

#: Characters of source whose tokens :func:`_lex` keeps (tokens take about 70 bytes a character).
LEX_CACHE_CHARS = 1_000_000
_lexed: OrderedDict[str, _Lexed] = OrderedDict()
_lexed_chars = 0
_lexed_lock = threading.Lock()


def _lex(source: str) -> _Lexed:
    """Tokens and comment spans of ``source``. The header, the code and the statement are read
    by the checker's ``prepare`` and again by every rule in ``check``, which for a batch runs
    after all its items are prepared; so the most recent texts are kept by their size (up to
    :data:`LEX_CACHE_CHARS`), not by their number, and a batch of proofs stays lexed once."""
    global _lexed_chars
    with _lexed_lock:
        hit = _lexed.get(source)
        if hit is not None:
            _lexed.move_to_end(source)
            return hit
    lexer = _Lexer(source)
    lexed = tuple(lexer.tokens()), tuple(lexer.comments), tuple(lexer.ambiguities)
    if len(source) > LEX_CACHE_CHARS:
        return lexed
    with _lexed_lock:
        if source not in _lexed:
            _lexed[source] = lexed
            _lexed_chars += len(source)
            while _lexed_chars > LEX_CACHE_CHARS:
                _lexed_chars -= len(_lexed.popitem(last=False)[0])
    return lexed


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
#: ``numberFnAux``: ``0b``/``0o``/``0x`` numerals and decimals with ``_`` separators, a fraction
#: and an exponent. A number never takes letters or quotes: ``2'a'`` is ``2`` and ``'a'``, and
#: ``2r"…"`` is ``2`` and a raw string. (Lean also reads ``2.`` as a scientific literal; a dot
#: followed by no digit is left to the next token here, since after a ``.`` Lean reads field
#: indices, not numbers: it is no quote or comment either way.)
_NUMBER = (
    r"0[xX][0-9a-fA-F_]*|0[bB][01_]*|0[oO][0-7_]*"
    r"|[0-9][0-9_]*(?:\.[0-9][0-9_]*)?(?:[eE][+-]?[0-9][0-9_]*)?"
)
#: ``#`` glued to a word: Lean reads the longest ``#…`` token of its token table (``#eval!``);
#: a quote after it is left out, as no ``#`` command ends in one.
_HASH_REST = _ID_REST.replace("'", "")

#: Lean's whitespace (``Char.isWhitespace``), then one token or comment, tried in this order,
#: which is ``whitespace``'s and then ``tokenFn``'s: comments, string, char (handled by
#: :func:`_char_literal_end`), number, name literal, raw string, identifier, then a symbol.
_SCANNER = re.compile(
    r"(?P<space>[ \t\r\n]*)(?:"
    + "|".join(
        [
            r"(?P<line_comment>--[^\n]*)",
            r"(?P<doc_comment>/-[-!])",
            r"(?P<block_comment>/-)",
            r'(?P<string>"(?:[^"\\]|\\.)*(?:"|\\?\Z))',
            r"(?P<quote>')",
            f"(?P<number>{_NUMBER})",
            f"(?P<name>``?(?={_ID_PART}){_IDENT})",
            r'(?P<raw_string>r(?P<hashes>#*)".*?(?:"(?P=hashes)|\Z))',
            f"(?P<command>#[{_ID_FIRST}][{_HASH_REST}]*)",
            f"(?P<ident>{_IDENT})",
            r"(?P<symbol>.)",
            r"\Z",
        ]
    )
    + ")",
    re.DOTALL,
)
_COMMENT_EDGE = re.compile(r"/-|-/")
_NOT_NEWLINE = re.compile(r"[^\n]")
_HEX = frozenset("0123456789abcdefABCDEF")
#: ``isQuotableCharDefault``: the characters ``quotedCharFn`` takes after a backslash as is.
_QUOTABLE = frozenset("\\\"'rnt")
_KINDS = {
    "string": TokenKind.STRING,
    "hashes": TokenKind.STRING,  # the inner group of a raw string
    "raw_string": TokenKind.STRING,
    "name": TokenKind.NAME,
    "command": TokenKind.COMMAND,
    "ident": TokenKind.IDENT,
    "number": TokenKind.NUMBER,
    "symbol": TokenKind.SYMBOL,
}
#: Token kinds that Lean's ``tokenFn`` reads from the token table, where a token may go on
#: into a following quote (core's ``]'``, Mathlib's ``''`` and ``⁻¹'``).
_TABLE_KINDS = frozenset({TokenKind.SYMBOL, TokenKind.COMMAND})


def _unescape_ident(text: str) -> str:
    return text.replace("«", "").replace("»", "")


class _Lexer:
    """Yields tokens and records comment spans and ambiguities; one regex match per token, plus
    small loops for what no regex can match (nested comments, doc comments, char literals)."""

    def __init__(self, source: str) -> None:
        self.src = source
        self.comments: list[tuple[int, int]] = []
        self.ambiguities: list[Ambiguity] = []
        self._line_starts = [0, *(m.end() for m in re.finditer("\n", source))]

    def _ambiguous(self, kind: str, start: int, detail: str) -> None:
        line = bisect_right(self._line_starts, start)
        self.ambiguities.append(
            Ambiguity(kind, start, line, start - self._line_starts[line - 1], detail)
        )

    def tokens(self) -> Iterator[Token]:
        src, i = self.src, 0
        spaced = True
        previous: Token | None = None
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
                    i = self._block_comment(start)
                    self.comments.append((start, i))
                    spaced = True
                    break  # scan again from the end of the comment
                if kind == "doc_comment":
                    i = self._doc_comment(start)
                    self.comments.append((start, i))
                    spaced = True
                    break
                glued = not spaced and start == match.start()
                token_kind: TokenKind
                if kind == "quote":
                    end = _char_literal_end(src, start)
                    if end is None:  # not a literal: Lean reads ``''`` (or fails) from here
                        token_kind = TokenKind.SYMBOL
                    else:
                        token_kind, i = TokenKind.CHAR, end
                        if glued and previous is not None and previous.kind in _TABLE_KINDS:
                            self._ambiguous(
                                "char_literal",
                                start,
                                f"the quote after `{previous.text}` may belong to a token",
                            )
                else:
                    token_kind = _KINDS[kind]
                line = bisect_right(starts, start)
                token = Token(
                    token_kind,
                    src[start:i],
                    start,
                    i,
                    line,
                    start - starts[line - 1],
                    spaced or start > match.start(),
                )
                if token_kind is TokenKind.IDENT and "«" in token.text:
                    self._check_escaped(token)
                yield token
                previous = token
                spaced = False
                if kind == "quote":
                    break  # scan again from the end of the literal
            else:
                return

    def _block_comment(self, start: int) -> int:
        """Lean's ``whitespace`` at ``/-``: the character after ``/-`` is skipped unread, then
        ``finishCommentBlock 1`` runs. A ``/`` there is refused (``comment_opener``): Lean does
        not count ``/-/-`` as two openers, and a lexer that did would disagree on the end."""
        if self.src.startswith("/", start + 2):
            self._ambiguous(
                "comment_opener", start, "`/-/`: Lean skips the character after `/-` unread"
            )
        return _finish_comment_block(self.src, min(start + 3, len(self.src)), 1)

    def _doc_comment(self, start: int) -> int:
        """Lean's ``docComment`` (and the module doc ``/-!``): ``/--`` is a token, so the
        ``whitespace`` after it is consumed first, and then ``commentBody`` runs
        ``finishCommentBlock 1`` from there. A comment in that whitespace is refused
        (``doc_comment``): ``/-- -- -/`` does not end at its ``-/``."""
        body, holds_comment = _whitespace(self.src, start + 3)
        if holds_comment:
            self._ambiguous(
                "doc_comment",
                start,
                f"`{self.src[start : start + 3]}` is followed by a comment, which Lean skips "
                "before the doc comment's text begins",
            )
        return _finish_comment_block(self.src, body, 1)

    def _check_escaped(self, token: Token) -> None:
        """``identFnAux``: ``«theorem»`` is an identifier, never the keyword it spells."""
        if token.value in _ESCAPE_REFUSED or any(
            part in _ESCAPE_REFUSED for part in token.value.split(".")
        ):
            self._ambiguous(
                "escaped_keyword",
                token.start,
                f"`{token.text}` is an identifier to Lean, not the keyword it spells",
            )


def _whitespace(src: str, i: int) -> tuple[int, bool]:
    """Lean's ``whitespace``: where the whitespace and comments from ``i`` end, and whether
    they held a comment. It stops before ``/--`` and ``/-!``, which are tokens."""
    n = len(src)
    holds_comment = False
    while i < n:
        c = src[i]
        if c in " \t\r\n":
            i += 1
        elif src.startswith("--", i):
            newline = src.find("\n", i)
            i = n if newline < 0 else newline
            holds_comment = True
        elif src.startswith("/-", i) and not src.startswith(("/--", "/-!"), i):
            i = _finish_comment_block(src, min(i + 3, n), 1)
            holds_comment = True
        else:
            break
    return i, holds_comment


def _finish_comment_block(src: str, i: int, nesting: int) -> int:
    """Lean's ``finishCommentBlock``: from ``i``, inside ``nesting`` open comments, the end of
    the outermost one. ``/-`` opens and ``-/`` closes, scanning left to right. Unterminated,
    it runs to the end (Lean reports an error)."""
    depth = nesting
    for edge in _COMMENT_EDGE.finditer(src, i):
        depth += 1 if edge.group() == "/-" else -1
        if depth == 0:
            return edge.end()
    return len(src)


def _block_comment_end(src: str, start: int) -> int:
    """The end of the block comment that starts at ``start`` (Lean's ``whitespace``)."""
    return _finish_comment_block(src, min(start + 3, len(src)), 1)


def _char_literal_end(src: str, start: int) -> int | None:
    """Lean's ``tokenFn`` at a quote, then ``charLitFnAux``/``quotedCharFn``: the end of the
    char literal at ``start``, or ``None`` if Lean reads none there (``''``, or a malformed
    literal, which Lean rejects). The character may be any one, a newline included; after a
    backslash come one of ``isQuotableCharDefault``, ``x`` and two hex digits, or ``u`` and
    four."""
    n = len(src)
    i = start + 1
    if i >= n or src[i] == "'":
        return None
    c = src[i]
    i += 1
    if c == "\\":
        if i >= n:
            return None
        q = src[i]
        i += 1
        if q in "xu":
            digits = 2 if q == "x" else 4
            if not all(ch in _HEX for ch in src[i : i + digits]) or i + digits > n:
                return None
            i += digits
        elif q not in _QUOTABLE:
            return None
    if i < n and src[i] == "'":
        return i + 1
    return None


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


# --- commands of a proof body -----------------------------------------------------------------

_OPENERS = frozenset("([{⟨⦃⟦")
_CLOSERS = frozenset(")]}⟩⦄⟧")
#: Words that end a declaration's signature: what follows is its value.
_SIGNATURE_ENDS = frozenset({"|", "where"})


def body_commands(tokens: list[Token]) -> list[Command]:
    """Group a proof's ``tokens`` into the commands Lean will see, as far as a lexer can tell.

    Unlike :func:`split_commands` (enough for headers), a command also ends where a command
    word (``theorem``, ``open``, ``def``, ...) or a known ``#`` command starts outside brackets,
    even in the middle of a line, since Lean starts a new command there; and a line at column 0
    continues a declaration whose signature is not finished (``theorem foo (x : ℝ) :\\nx ≥ 0``).
    A command word inside a tactic block (``open Real in simp``) also splits: every rule then
    judges it as the command it could be. Modifiers and attributes (``@[simp] private``) belong
    to the command they precede. A piece that starts with no command word (the tactics after a
    ``set_option ... in`` inside a proof) has kind ``"continuation"``.
    """
    commands: list[Command] = []
    i, n = 0, len(tokens)
    while i < n:
        kind = _command_kind(tokens, i)
        if kind in ("import", "open", "set_option"):
            j = _command_end(tokens, i)
        else:
            j = _body_command_end(tokens, i)
            if not _starts_command(tokens, i):
                kind = "continuation"
        commands.append(Command(kind, tuple(tokens[i:j])))
        i = j
    return commands


def command_head(command: Command) -> Token | None:
    """The keyword of ``command`` after its attributes and modifiers (``theorem`` of
    ``@[simp] private theorem foo``), or ``None`` if there is none."""
    k = _skip_prefix(list(command.tokens), 0)
    return command.tokens[k] if k < len(command.tokens) else None


def attribute_spans(tokens: list[Token]) -> list[tuple[int, int]]:
    """``(start, end)`` token indices of the inside of every ``@[...]`` and ``attribute [...]``."""
    closing = _closing_brackets(tokens)
    spans: list[tuple[int, int]] = []
    for i, tok in enumerate(tokens):
        before = tokens[i - 1] if i else None
        if tok.text == "[" and before is not None and before.value in ("@", "attribute"):
            if spans and i < spans[-1][1]:
                continue  # nested in the previous one (Lean rejects that): read once, not twice
            spans.append((i + 1, closing[i]))
    return spans


def _closing_brackets(tokens: list[Token]) -> dict[int, int]:
    """Opening bracket index -> its closing bracket's index (or the end), in one pass."""
    closing: dict[int, int] = {}
    stack: list[int] = []
    for j, tok in enumerate(tokens):
        if tok.text in _OPENERS:
            stack.append(j)
        elif tok.text in _CLOSERS and stack:
            closing[stack.pop()] = j
    for j in stack:
        closing[j] = len(tokens)
    return closing


def attribute_names(tokens: list[Token], start: int, end: int) -> list[Token]:
    """The attribute names inside ``tokens[start:end]``: the first identifier of each
    comma-separated entry, after ``local``, ``scoped`` or ``-``."""
    names: list[Token] = []
    depth, expecting = 0, True
    for tok in tokens[start:end]:
        if tok.text in _OPENERS:
            depth += 1
        elif tok.text in _CLOSERS:
            depth -= 1
        elif depth == 0 and tok.text == ",":
            expecting = True
        elif expecting and depth == 0 and tok.kind is TokenKind.IDENT:
            if tok.value in ("local", "scoped"):
                continue
            names.append(tok)
            expecting = False
    return names


def _matching(tokens: list[Token], i: int) -> int:
    """The index of the bracket closing ``tokens[i]`` (or the end)."""
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j].text in _OPENERS:
            depth += 1
        elif tokens[j].text in _CLOSERS:
            depth -= 1
            if depth == 0:
                return j
    return len(tokens)


def _is_bracket(tokens: list[Token], i: int) -> bool:
    return i < len(tokens) and tokens[i].text == "[" and not tokens[i].spaced


def _modifies_a_command(tokens: list[Token], i: int) -> bool:
    """Is the modifier at ``i`` one of a command (``private def``), not of a structure field or
    constructor (``| protected id : ...``)?"""
    k = _skip_prefix(tokens, i)
    return k < len(tokens) and (
        (tokens[k].kind is TokenKind.IDENT and tokens[k].value in _START_WORDS)
        or tokens[k].kind is TokenKind.COMMAND
    )


def _is_attribute_start(tokens: list[Token], i: int) -> bool:
    return (
        tokens[i].text == "@"
        and i + 1 < len(tokens)
        and tokens[i + 1].text == "["
        and not tokens[i + 1].spaced
    )


def _skip_prefix(tokens: list[Token], i: int) -> int:
    """Past the attributes and modifiers that begin the command at ``i``."""
    n = len(tokens)
    while i < n:
        if _is_attribute_start(tokens, i):
            i = _matching(tokens, i + 1) + 1
        elif tokens[i].kind is TokenKind.IDENT and tokens[i].value in MODIFIERS:
            i += 1
            if tokens[i - 1].value == "scoped" and _is_bracket(tokens, i):  # ``scoped[Ns]``
                i = _matching(tokens, i) + 1
        else:
            break
    return i


#: Words that start a command wherever they stand outside brackets.
_START_WORDS = COMMAND_WORDS | ALLOWED_COMMANDS | MODIFIERS | {"prelude"}
#: Words an escaped identifier may not spell (:meth:`_Lexer._check_escaped`): every word the
#: rules read as a command, modifier or keyword.
_ESCAPE_REFUSED = (
    _START_WORDS
    | DECLARATION_WORDS
    | CONTINUATION_WORDS
    | REFUSED_WORDS
    | {"import", "in", "by", "at", "have", "show", "from", "fun", "let", "meta", "all"}
)
#: ``#`` commands that start a command wherever they stand (elsewhere ``#s`` is notation).
_HASH_COMMANDS = ALLOWED_HASH_COMMANDS | REFUSED_HASH_COMMANDS


def _starts_command(tokens: list[Token], i: int) -> bool:
    """Does ``tokens[i]`` begin a command (rather than continue one)?"""
    tok = tokens[i]
    if _is_attribute_start(tokens, i) or tok.kind is TokenKind.COMMAND:
        return True
    if tok.kind is not TokenKind.IDENT:
        return False
    if tok.value in MODIFIERS:
        return _modifies_a_command(tokens, i)
    if tok.value in _START_WORDS:
        return True
    # An unknown word at the start of a line is taken for a command (and refused as one).
    first_on_line = i == 0 or tokens[i - 1].line != tok.line
    return first_on_line and tok.column == 0 and tok.value not in CONTINUATION_WORDS


def _body_command_end(tokens: list[Token], i: int) -> int:
    n = len(tokens)
    starts, hashes = _START_WORDS, _HASH_COMMANDS
    k = _skip_prefix(tokens, i)
    if k >= n:
        return n
    in_signature = tokens[k].value in DECLARATION_WORDS
    depth = 0
    j = k + 1
    while j < n:
        tok = tokens[j]
        if depth == 0:
            if tok.kind is TokenKind.IDENT and tok.value in MODIFIERS:
                after = _skip_prefix(tokens, j)
                if after < n and _starts_command(tokens, after) and tokens[after].value in starts:
                    return j
                if after < n and tokens[after].kind is TokenKind.COMMAND:
                    return j
                j = max(after, j + 1)  # a field's modifiers (``| protected id``): skip them all
                continue
            if tok.kind is TokenKind.IDENT and tok.value in starts:
                return j
            if tok.kind is TokenKind.COMMAND and tok.value in hashes:
                return j
            if _is_attribute_start(tokens, j):
                return j
            new_line = tokens[j - 1].line != tok.line
            if (
                new_line
                and tok.column == 0
                and not in_signature
                and (tok.kind in (TokenKind.IDENT, TokenKind.COMMAND))
                and tok.value not in CONTINUATION_WORDS
            ):
                return j
            if in_signature and (
                tok.value in _SIGNATURE_ENDS
                or (
                    tok.text == ":"
                    and j + 1 < n
                    and tokens[j + 1].text == "="
                    and not tokens[j + 1].spaced
                )
            ):
                in_signature = False
        if tok.text in _OPENERS:
            depth += 1
        elif tok.text in _CLOSERS:
            depth = max(0, depth - 1)
        j += 1
    return n


def starts_with(tokens: list[Token], i: int, want: list[Token]) -> bool:
    """Do ``tokens`` from ``i`` on begin with ``want``, token for token? Spacing counts only
    around a dot, where Lean reads it (``h.1`` projects, ``h .1`` applies)."""
    if i + len(want) > len(tokens):
        return False
    for k, b in enumerate(want):
        a = tokens[i + k]
        if a.kind is not b.kind or a.value != b.value:
            return False
        near_dot = a.text == "." or (k > 0 and want[k - 1].text == ".")
        if k and near_dot and a.spaced != b.spaced:
            return False
    return True
