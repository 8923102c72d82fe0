"""Canonical Lean headers: the part of a file that becomes a warm REPL's environment 0.

Importing Mathlib costs tens of seconds and gigabytes, so the pool keeps workers that have
already run a header and the cache keys verdicts by it. Both only work if equivalent headers are
*equal*: two headers that differ in comments, blank lines or layout must give the same text. And
two headers may share a worker or a cache entry only when they are the same environment, so
normalising never changes what Lean runs: every token, string literal included, stays exactly as
written and in its order.

Canonical form, one command per line:

- the leading ``import`` commands, in their order, each once (a second import of a module is a
  no-op in Lean; their order is kept, since it decides the order of the environment);
- then, in their original order, ``open`` and ``set_option`` commands with single spaces between
  tokens, and any other command (``namespace``, ``variable``, a ``def`` ...) verbatim, without
  comments, blank lines or trailing spaces *outside* string literals. An ``import`` after another
  command stays where it is, so Lean rejects it as it would in a file.

:func:`normalise` also moves the *header block* a proof carries at its top into the header: its
leading ``import`` lines always (the REPL accepts imports only in the command that starts a
fresh environment), and, when no header is given, the ``open`` and ``set_option`` lines with the
comments and blank lines between them. So a file posted as one ``code`` and the same text posted
as ``header`` + ``code`` run the same header, and :func:`strip_leading_lines` then makes their
code equal too.

No header means the plain prelude (``""``), never some earlier proof's environment. A user's
``set_option maxHeartbeats`` is kept: it is part of what they asked for, while the service bounds
time with its own timeout regardless.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from verifier_service.soundness.source import (
    Command,
    TokenKind,
    blank_comments,
    first_token,
    line_col,
    split_commands,
    tokenize,
)

__all__ = [
    "Header",
    "normalise",
    "normalise_header",
    "parse_header",
    "split_code",
    "split_header_block",
    "split_imports",
    "strip_leading_lines",
]


@dataclass(frozen=True)
class Header:
    #: Canonical import commands (``"import Mathlib"``), in order, each once.
    imports: tuple[str, ...] = ()
    #: Every other header command in order, canonical (see the module docstring).
    preamble: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The canonical header: what the pool runs as environment 0 and what cache keys use."""
        return "\n".join(self.imports + self.preamble)

    def with_imports(self, imports: list[str] | tuple[str, ...]) -> Header:
        return Header(_unique([*self.imports, *imports]), self.preamble)

    def then(self, other: Header) -> Header:
        """This header followed by ``other``'s commands (its imports join these imports)."""
        return Header(_unique([*self.imports, *other.imports]), self.preamble + other.preamble)


def parse_header(text: str | None) -> Header:
    """Parse a header into its canonical parts. ``None`` and ``""`` give the empty header."""
    if not text:
        return Header()
    stripped = blank_comments(text)
    literals = _literal_spans(text)
    imports: list[str] = []
    preamble: list[str] = []
    for command in split_commands(tokenize(text)):
        if command.kind == "import" and not preamble:
            imports.append(command.canonical)
        elif command.kind in ("import", "open", "set_option"):
            preamble.append(command.canonical)
        else:
            preamble.append(_verbatim(stripped, command, literals))
    return Header(_unique(imports), tuple(preamble))


def normalise_header(text: str | None) -> str:
    """The canonical text of a header (the pool key)."""
    return parse_header(text).text


#: A line of a canonical header that is one of its leading imports (``import M``, with the
#: modifiers Lean allows before the keyword). The canonical form writes each leading import on one
#: line and the first other command never starts with the keyword (it would be an import).
_IMPORT_LINE = re.compile(r"(?:public )?(?:meta )?import \S")


def split_imports(header: str) -> tuple[str, str]:
    """A canonical header's leading imports and the rest of it, each as canonical text.

    The imports decide which process can serve the header (imports only happen when a process
    starts); the rest (``open``, ``set_option``, ...) is an environment derived inside that
    process. Splits by lines, so it costs nothing per lease: ``header`` must be canonical
    (:func:`normalise_header`), and then ``imports + "\n" + rest`` is ``header`` again.
    """
    lines = header.split("\n")
    count = 0
    while count < len(lines) and _IMPORT_LINE.match(lines[count]):
        count += 1
    return "\n".join(lines[:count]), "\n".join(lines[count:])


def split_code(code: str) -> tuple[list[str], str]:
    """Split the leading ``import`` commands off ``code``.

    Returns the canonical imports and the rest of the code. The rest keeps the original line and
    column of every character (the imports become blank lines), so the positions Lean reports for
    the rest are positions in the submitted code.
    """
    imports: list[str] = []
    end = 0
    for command in split_commands(tokenize(code)):
        if command.kind != "import":
            break
        imports.append(command.canonical)
        end = command.end
    if not imports:
        return [], code
    return imports, _rest(code, end)


def split_header_block(code: str) -> tuple[str, str]:
    """Split the leading header block (``import``, ``open``, ``set_option`` commands, and the
    comments and blank lines between them) off ``code``.

    An ``open ... in`` or ``set_option ... in`` belongs to the command after it, so the block
    ends before one. Returns the block's text and the rest of the code, which keeps the original
    line and column of every character.
    """
    end = 0
    for command in split_commands(tokenize(code)):
        if command.kind not in ("import", "open", "set_option") or command.words[-1] == "in":
            break
        end = command.end
    if end == 0:
        return "", code
    return code[:end], _rest(code, end)


def normalise(header: str | None, code: str) -> tuple[str, str]:
    """The canonical header (with the code's header block moved into it) and the code body.

    The code's leading imports always move. When no header is given, its ``open`` and
    ``set_option`` lines move too. (With a header, they stay in the code, where the statement
    rule accepts repeats of the header: a trainer that sends the problem's header with a
    completion that starts with the same lines keeps the prewarmed worker.)
    """
    given = parse_header(header)
    if not given.text:
        block, body = split_header_block(code)
        return parse_header(block).text, body
    code_imports, body = split_code(code)
    return given.with_imports(code_imports).text, body


def strip_leading_lines(code: str) -> tuple[str, int]:
    """``code`` without the blank and comment-only lines before its first token, and how many
    lines were removed (a comment before the first token on its line becomes spaces, so columns
    stay).

    The code that remains after a header block has blank lines where the block was, and a
    header may end in a comment that a whole file keeps before the proof; without them, a proof
    posted as a whole file and as header + code is the same text (and so the same cache entry).
    Comments mean nothing to Lean, so this never changes what it runs. Add the count back to the
    lines Lean reports to point into the submitted code.
    """
    token = first_token(code)
    if token is None:
        return code, 0
    first = token.start
    line_start = code.rfind("\n", 0, first) + 1
    return " " * (first - line_start) + code[first:], code.count("\n", 0, line_start)


def _rest(code: str, end: int) -> str:
    """``code`` after offset ``end``, with the same line and column for every character."""
    line, column = line_col(code, end)
    line_end = code.find("\n", end)
    line_end = len(code) if line_end < 0 else line_end
    if blank_comments(code)[end:line_end].strip():  # code goes on after the block's last line
        return "\n" * (line - 1) + " " * column + code[end:]
    return "\n" * (line - 1) + code[line_end:]


def _unique(imports: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(imports))


def _literal_spans(text: str) -> list[tuple[int, int]]:
    """Offsets of every string and character literal, which normalising must never touch."""
    return [
        (tok.start, tok.end)
        for tok in tokenize(text)
        if tok.kind in (TokenKind.STRING, TokenKind.CHAR)
    ]


def _verbatim(stripped: str, command: Command, literals: list[tuple[int, int]]) -> str:
    """The command's text (comments blanked) without blank lines or trailing spaces, except
    inside string literals, which are kept byte for byte (``"a\n\nb"`` is not ``"a\nb"``)."""
    start, end = command.start, command.end
    inside = [(max(a, start), min(b, end)) for a, b in literals if a < end and b > start]
    lines: list[str] = []
    current: list[str] = []
    position = start
    for a, b in [*inside, (end, end)]:
        # outside a literal: split into lines, drop blank ones and trailing spaces
        outside = stripped[position:a].split("\n")
        current.append(outside[0])
        for piece in outside[1:]:
            lines.append("".join(current))
            current = [piece]
        current.append(stripped[a:b])  # the literal itself, newlines and all
        position = b
    lines.append("".join(current))
    return "\n".join(line.rstrip() for line in lines if line.strip())
