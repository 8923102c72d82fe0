"""Canonical Lean headers: the part of a file that becomes a warm REPL's environment 0.

Importing Mathlib costs tens of seconds and gigabytes, so the pool keeps workers that have
already run a header and the cache keys verdicts by it. Both only work if equivalent headers are
*equal*: two headers that differ in comments, blank lines, layout or import order must give the
same text. :func:`normalise` produces that text, and also moves the ``import`` lines a proof
carries at its top into the header, because the REPL accepts imports only in the command that
starts a fresh environment.

Canonical form, one command per line:

- imports first, de-duplicated and sorted (their order does not change the environment);
- then, in their original order, ``open`` and ``set_option`` commands with single spaces, and
  any other command (``namespace``, ``variable``, a ``def`` ...) verbatim but without comments or
  blank lines. Those belong to environment 0 like the rest; the soundness rules still scan the
  header, so an ``#exit`` or ``set_option debug.skipKernelTC`` there is refused like anywhere.

No header means the plain prelude (``""``), never some earlier proof's environment. A user's
``set_option maxHeartbeats`` is kept: it is part of what they asked for, while the service bounds
time with its own timeout regardless.
"""

from __future__ import annotations

from dataclasses import dataclass

from verifier_service.soundness.source import (
    Command,
    blank_comments,
    line_col,
    split_commands,
    tokenize,
)

__all__ = ["Header", "normalise", "normalise_header", "parse_header", "split_code"]


@dataclass(frozen=True)
class Header:
    #: Canonical import commands (``"import Mathlib"``), sorted and unique.
    imports: tuple[str, ...] = ()
    #: Every other header command in order, canonical (see the module docstring).
    preamble: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The canonical header: what the pool runs as environment 0 and what cache keys use."""
        return "\n".join(self.imports + self.preamble)

    def with_imports(self, imports: list[str] | tuple[str, ...]) -> Header:
        return Header(_sorted_imports([*self.imports, *imports]), self.preamble)


def parse_header(text: str | None) -> Header:
    """Parse a header into its canonical parts. ``None`` and ``""`` give the empty header."""
    if not text:
        return Header()
    stripped = blank_comments(text)
    imports: list[str] = []
    preamble: list[str] = []
    for command in split_commands(tokenize(text)):
        if command.kind == "import":
            imports.append(command.canonical)
        elif command.kind in ("open", "set_option"):
            preamble.append(command.canonical)
        else:
            preamble.append(_verbatim(stripped, command))
    return Header(_sorted_imports(imports), tuple(preamble))


def normalise_header(text: str | None) -> str:
    """The canonical text of a header (the pool key)."""
    return parse_header(text).text


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
    line, column = line_col(code, end)
    line_end = code.find("\n", end)
    line_end = len(code) if line_end < 0 else line_end
    if blank_comments(code)[end:line_end].strip():  # code goes on after the last import
        return imports, "\n" * (line - 1) + " " * column + code[end:]
    return imports, "\n" * (line - 1) + code[line_end:]


def normalise(header: str | None, code: str) -> tuple[str, str]:
    """The canonical header (with the code's leading imports moved into it) and the code body."""
    code_imports, body = split_code(code)
    return parse_header(header).with_imports(code_imports).text, body


def _sorted_imports(imports: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    # ``prelude`` must stay first; everything else is order-insensitive.
    return tuple(sorted(set(imports), key=lambda line: (line != "prelude", line)))


def _verbatim(stripped: str, command: Command) -> str:
    lines = stripped[command.start : command.end].split("\n")
    return "\n".join(line.rstrip() for line in lines if line.strip())
