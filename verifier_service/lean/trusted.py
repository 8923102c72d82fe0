"""Sieve's trusted Lean programs: build their commands, run them in a worker, read their answers.

Three programs ship with the service, as Lean source under ``verifier_service/lean/programs``:

- ``parse.lean`` reads the submitted code (and the statement) with ``Lean.Parser.parseCommand``
  over the header's environment, before anything of the proof is elaborated, and returns every
  command's syntax kind, byte range, tokens and, for a declaration, its kind, name and the syntax
  of its signature (:class:`LeanParse`);
- ``statement.lean`` elaborates the statement alone on the header's environment (after checking
  that it is exactly one theorem-like declaration) and returns its type as an exact structural
  form of the kernel term (:class:`ConstantType`);
- ``target.lean`` returns the kind (theorem, axiom, def, ...) and the same form of the type of a
  constant in the environment the proof elaborated to.

**Untrusted text reaches them only as data.** Each program has one placeholder string literal,
``"SIEVE-DATA"``; :func:`build_command` replaces it with ONE plain Lean string literal made by
:func:`lean_string_literal`, holding a JSON object. Nothing of the proof is ever spliced into
Lean source. The programs' source says which Lean versions each supports (4.9.0 and 4.19.0, from
the sources: they were not compiled where they were written).

**Answers are tied to the request.** Each command carries a fresh random nonce; the program
answers with one info message ``SIEVE-<PROGRAM> {json}`` whose JSON carries that nonce.
:func:`read_answer` raises :class:`~verifier_service.lean.repl.ProtocolViolation` for an answer
with another nonce (code running in the worker forging one) and :class:`ProgramUnavailable`
when the program produced no answer at all (it did not elaborate: e.g. a header without
``import Lean``).
"""

from __future__ import annotations

import bisect
import functools
import json
import secrets
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from verifier_service.lean.repl import LeanWorker, ProtocolViolation, ReplError, UnencodableCommand

__all__ = [
    "PARSE_TAG",
    "PLACEHOLDER",
    "STATEMENT_TAG",
    "TARGET_TAG",
    "ConstantType",
    "LeanParse",
    "ParseError",
    "ParseResult",
    "ParsedCommand",
    "ParsedDecl",
    "ParsedPart",
    "ProgramUnavailable",
    "build_command",
    "elaborate_statement",
    "lean_string_literal",
    "parse_code",
    "program_source",
    "read_answer",
    "target_type",
]

#: The one placeholder in each program, replaced by the data literal.
PLACEHOLDER = '"SIEVE-DATA"'
PARSE_TAG = "SIEVE-PARSE"
STATEMENT_TAG = "SIEVE-STATEMENT"
TARGET_TAG = "SIEVE-TARGET"
#: Program name -> the tag its answer starts with.
PROGRAMS = {"parse": PARSE_TAG, "statement": STATEMENT_TAG, "target": TARGET_TAG}
#: Statements whose elaborated type each worker remembers, keyed by header and statement.
STATEMENT_CACHE_SIZE = 256


class ProgramUnavailable(ReplError):
    """A trusted program gave no answer: it did not elaborate on this header (one without
    ``import Lean``), or the REPL refused it. Not the proof's fault: the verdict is ``error``."""


# --- the data literal --------------------------------------------------------------------------

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def lean_string_literal(text: str) -> str:
    """``text`` as one plain Lean string literal (``"..."``), which Lean decodes back to ``text``.

    Lean's string literal grammar (``Lean/Parser/Basic.lean``: ``strLitFnAux``,
    ``quotedCharCoreFn``, ``isQuotableCharDefault``): any character but ``"`` and ``\\`` stands
    for itself; ``\\`` starts an escape (``\\\\ \\" \\' \\r \\n \\t \\xHH \\uHHHH``, and in
    recent versions a string gap, ``\\`` then a newline). So ``\\`` and ``"`` are escaped, and so
    is every control character (``\\xHH``), which keeps the literal on one line; everything else
    (``{``, ``}``, ``-/``, ``--``, non-ASCII letters) is itself. A plain literal has no
    interpolation: braces are only text. A lone surrogate has no UTF-8 form and no Lean
    ``Char``: it raises :class:`~verifier_service.lean.repl.UnencodableCommand`, the error the
    worker raises for such a command, so nothing is sent.
    """
    out = ['"']
    for char in text:
        code = ord(char)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            raise UnencodableCommand("text holds a lone surrogate, which Lean cannot represent")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


@functools.cache
def program_source(name: str) -> str:
    """The Lean source of program ``name`` (``parse``, ``statement``, ``target``)."""
    if name not in PROGRAMS:
        raise ValueError(f"no trusted program {name!r}")
    text = (
        resources.files("verifier_service.lean")
        .joinpath(f"programs/{name}.lean")
        .read_text("utf-8")
    )
    if text.count(PLACEHOLDER) != 1:
        raise RuntimeError(f"programs/{name}.lean must hold {PLACEHOLDER} exactly once")
    return text


def build_command(name: str, data: Mapping[str, Any]) -> str:
    """Program ``name`` with ``data`` (JSON) in its placeholder, as one string literal."""
    literal = lean_string_literal(json.dumps(data, ensure_ascii=False))
    return program_source(name).replace(PLACEHOLDER, literal, 1)


def new_nonce() -> str:
    return secrets.token_hex(16)


def read_answer(raw: Mapping[str, Any], tag: str, nonce: str) -> dict[str, Any]:
    """The JSON a program answered with: the one info message ``{tag} {json}`` carrying
    ``nonce``. Raises :class:`ProtocolViolation` for an answer with another nonce, more than one
    answer, or an answer that is not JSON; :class:`ProgramUnavailable` when there is none."""
    if "message" in raw and "env" not in raw:
        raise ProgramUnavailable(f"the REPL refused the {tag} program: {raw['message']}")
    messages = raw.get("messages") or []
    if not isinstance(messages, list):
        raise ProtocolViolation(f"{tag}: 'messages' is not a list")
    answers = [
        m
        for m in messages
        if isinstance(m, Mapping)
        and isinstance(m.get("data"), str)
        and m["data"].startswith(tag + " ")
    ]
    if not answers:
        errors = [
            str(m.get("data", ""))
            for m in messages
            if isinstance(m, Mapping) and m.get("severity") == "error"
        ]
        detail = errors[0].splitlines()[0] if errors else "no answer"
        raise ProgramUnavailable(f"the {tag} program did not answer: {detail}")
    if len(answers) > 1:
        raise ProtocolViolation(f"{tag}: {len(answers)} answers to one request")
    (answer,) = answers
    if answer.get("severity") != "info":
        raise ProtocolViolation(f"{tag}: the answer is not an info message")
    try:
        data = json.loads(answer["data"][len(tag) + 1 :])
    except json.JSONDecodeError as exc:
        raise ProtocolViolation(f"{tag}: the answer is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("nonce") != nonce:
        raise ProtocolViolation(f"{tag}: the answer does not carry this request's nonce")
    return data


# --- the parse ---------------------------------------------------------------------------------


class _Offsets:
    """UTF-8 byte offsets (Lean's ``String.Pos``) to code-point offsets (Python's)."""

    def __init__(self, text: str) -> None:
        self.byte_starts: list[int] = []
        total = 0
        for char in text:
            self.byte_starts.append(total)
            total += len(char.encode("utf-8", "surrogatepass"))
        self.byte_starts.append(total)

    def char(self, byte: int) -> int:
        """The code-point offset of byte offset ``byte`` (``ProtocolViolation`` inside a
        character or past the end: Lean's positions are always on character boundaries)."""
        index = bisect.bisect_left(self.byte_starts, byte)
        if index >= len(self.byte_starts) or self.byte_starts[index] != byte:
            raise ProtocolViolation(f"parse: byte offset {byte} is not a character boundary")
        return index


@dataclass(frozen=True)
class ParsedDecl:
    """A declaration as Lean parsed it."""

    #: ``Lean.Parser.Command.theorem``, ``Lean.Parser.Command.definition``, ``lemma``, ...
    kind: str
    #: Its keyword atom (``theorem``, ``lemma``, ``def``, ``class``, ...).
    keyword: str
    #: The declared name (``None`` for ``example``), as Lean prints it.
    name: str | None
    #: The modifiers' and the signature's syntax without positions, whitespace or comments.
    modifiers: str
    signature: str
    #: Code-point offsets: the command's start to the end of the signature.
    start: int
    stop: int

    def same_statement(self, other: ParsedDecl) -> bool:
        """The same declaration up to whitespace and comments, as far as its value: keyword,
        name, modifiers and signature, each compared as Lean's syntax."""
        return (self.keyword, _plain(self.name), self.modifiers, self.signature) == (
            other.keyword,
            _plain(other.name),
            other.modifiers,
            other.signature,
        )


@dataclass(frozen=True)
class ParsedPart:
    """One command of an ``in`` chain or ``mutual`` block (or the whole command)."""

    kind: str
    head: int
    decl: ParsedDecl | None = None


@dataclass(frozen=True)
class ParsedCommand:
    kind: str
    start: int
    stop: int
    #: Offset of the first token outside a doc comment.
    head: int
    parts: tuple[ParsedPart, ...]
    decl: ParsedDecl | None
    #: ``(start, stop)`` of every token outside doc comments, in code points.
    leaves: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class ParseError:
    line: int
    column: int
    message: str

    def to_message(self) -> dict[str, Any]:
        return {
            "severity": "error",
            "pos": {"line": self.line, "column": self.column},
            "data": self.message,
        }


@dataclass(frozen=True)
class ParseResult:
    commands: tuple[ParsedCommand, ...]
    errors: tuple[ParseError, ...]


@dataclass(frozen=True)
class LeanParse:
    """Lean's parse of the code, and of the statement when one was given."""

    code: ParseResult
    statement: ParseResult | None
    #: The code as Lean read it (its offsets refer to this): the code, or with CRLF made LF.
    text: str | None = None


def _plain(name: str | None) -> str | None:
    return None if name is None else name.replace("«", "").replace("»", "")


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProtocolViolation(f"parse: {what} is not an offset: {value!r}")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ProtocolViolation(f"parse: {what} is not a string: {value!r}")
    return value


def read_parse(data: Any, text: str) -> ParseResult:
    """A :class:`ParseResult` from the program's JSON for ``text`` (byte offsets converted);
    anything malformed is a :class:`ProtocolViolation`."""
    if not isinstance(data, Mapping):
        raise ProtocolViolation("parse: the result is not an object")
    offsets = _Offsets(text)
    commands = []
    for raw in data.get("commands") or []:
        if not isinstance(raw, Mapping):
            raise ProtocolViolation("parse: a command is not an object")
        start = offsets.char(_int(raw.get("start"), "start"))
        leaves_raw = raw.get("leaves") or []
        if not isinstance(leaves_raw, list) or len(leaves_raw) % 2:
            raise ProtocolViolation("parse: leaves must be start/stop pairs")
        leaves = tuple(
            (offsets.char(_int(a, "leaf")), offsets.char(_int(b, "leaf")))
            for a, b in zip(leaves_raw[::2], leaves_raw[1::2], strict=True)
        )
        parts = tuple(
            ParsedPart(
                _str(p.get("kind"), "kind"),
                offsets.char(_int(p.get("head"), "head")),
                _decl(p.get("decl"), offsets),
            )
            for p in raw.get("parts") or []
            if isinstance(p, Mapping)
        )
        decl = _decl(raw.get("decl"), offsets)
        commands.append(
            ParsedCommand(
                kind=_str(raw.get("kind"), "kind"),
                start=start,
                stop=offsets.char(_int(raw.get("stop"), "stop")),
                head=offsets.char(_int(raw.get("head"), "head")),
                parts=parts or (ParsedPart(_str(raw.get("kind"), "kind"), start, decl),),
                decl=decl,
                leaves=leaves,
            )
        )
    errors = tuple(
        ParseError(int(e.get("line", 0)), int(e.get("column", 0)), str(e.get("message", "")))
        for e in data.get("errors") or []
        if isinstance(e, Mapping)
    )
    return ParseResult(tuple(commands), errors)


def _decl(d: Any, offsets: _Offsets) -> ParsedDecl | None:
    if not isinstance(d, Mapping):
        return None
    bounds = d.get("range")
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise ProtocolViolation("parse: a declaration's range is not [start, stop]")
    name = d.get("name")
    return ParsedDecl(
        kind=_str(d.get("kind"), "decl kind"),
        keyword=_str(d.get("keyword"), "keyword"),
        name=None if name is None else _str(name, "name"),
        modifiers=_str(d.get("modifiers"), "modifiers"),
        signature=_str(d.get("signature"), "signature"),
        start=offsets.char(_int(bounds[0], "range")),
        stop=offsets.char(_int(bounds[1], "range")),
    )


# --- running the programs ----------------------------------------------------------------------


async def _run(
    worker: LeanWorker, program: str, env: int, data: dict[str, Any], timeout_s: float
) -> dict[str, Any]:
    nonce = new_nonce()
    command = build_command(program, {"nonce": nonce, **data})
    raw = await worker.send({"cmd": command, "env": env}, timeout_s=timeout_s)
    try:
        return read_answer(raw, PROGRAMS[program], nonce)
    except ProtocolViolation:
        worker.kill("protocol")  # something in the worker answers for us: never reuse it
        raise


async def parse_code(
    worker: LeanWorker, env: int, code: str, statement: str | None, timeout_s: float
) -> LeanParse:
    """Lean's parse of ``code`` (and ``statement``) on environment ``env`` (the header's)."""
    data = await _run(worker, "parse", env, {"code": code, "statement": statement or ""}, timeout_s)
    text = read_text(data.get("code"), code)
    parsed = read_parse(data.get("code"), text)
    stmt = data.get("statement")
    if not statement or not stmt:
        return LeanParse(parsed, None, text)
    return LeanParse(parsed, read_parse(stmt, read_text(stmt, statement)), text)


def read_text(data: Any, text: str) -> str:
    """The text Lean's offsets refer to: ``text``, or ``text`` with CRLF line endings made LF
    (``String.crlfToLf``, which ``mkInputContext`` applies from some Lean version on), told
    apart by the byte size the program reports; a parse without a size is of ``text``."""
    size = data.get("size") if isinstance(data, Mapping) else None
    if size is None or size == len(text.encode("utf-8", "surrogatepass")):
        return text
    normalised = text.replace("\r\n", "\n")
    if size == len(normalised.encode("utf-8", "surrogatepass")):
        return normalised
    raise ProtocolViolation(f"parse: {size} bytes parsed, which is not the text sent")


@dataclass(frozen=True)
class ConstantType:
    """A constant's kind and exact type form, or why there is none (``error``)."""

    kind: str | None = None
    type: str | None = None
    error: str | None = None

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> ConstantType:
        if isinstance(data.get("error"), str):
            return cls(error=data["error"])
        kind, type_ = data.get("kind"), data.get("type")
        if not isinstance(kind, str) or not isinstance(type_, str):
            raise ProtocolViolation("a type answer needs 'kind' and 'type' strings")
        return cls(kind=kind, type=type_)


_statement_cache: weakref.WeakKeyDictionary[
    LeanWorker, OrderedDict[tuple[str, str], ConstantType]
] = weakref.WeakKeyDictionary()


async def elaborate_statement(
    worker: LeanWorker, env: int, statement: str, timeout_s: float, *, header: str
) -> ConstantType:
    """The statement elaborated alone on ``env``, the environment of ``header`` in this worker:
    its constant's kind and type. Remembered per worker, header and statement, for the worker's
    life: one worker serves every header with its imports (each on its own env), and the same
    statement can mean another thing under another ``open`` or ``set_option``."""
    key = (header, statement)
    cache = _statement_cache.setdefault(worker, OrderedDict())
    hit = cache.get(key)
    if hit is not None:
        cache.move_to_end(key)
        return hit
    answer = ConstantType.of(
        await _run(worker, "statement", env, {"statement": statement}, timeout_s)
    )
    cache[key] = answer
    while len(cache) > STATEMENT_CACHE_SIZE:
        cache.popitem(last=False)
    return answer


async def target_type(worker: LeanWorker, env: int, name: str, timeout_s: float) -> ConstantType:
    """Kind and type of constant ``name`` in environment ``env`` (the proof's)."""
    return ConstantType.of(await _run(worker, "target", env, {"name": name}, timeout_s))


def statement_cache_size(worker: LeanWorker) -> int:
    return len(_statement_cache.get(worker, ()))


def leaves_of(commands: Sequence[ParsedCommand]) -> list[tuple[int, int]]:
    return sorted(leaf for command in commands for leaf in command.leaves if leaf[0] < leaf[1])
