"""Typed Lean REPL replies, and what they say about a proof.

The REPL answers each command with one JSON object (see ``tests/fixtures/lean-repl/README.md``):
``{"env": N}`` plus ``messages`` and ``sorries`` for a command, ``proofStatus``/``goals`` for a
tactic, or ``{"message": "..."}`` when the REPL itself refused the request. Message *texts*
change between Lean versions (``type mismatch`` became ``Type mismatch``; ``declaration uses
'sorry'`` became ``declaration uses `sorry```), so :meth:`ReplReply.kind` decides from the
structured fields (severity, ``sorries``, ``proofStatus``) and reads text only as a second line
of defence for ``sorry``.

``#print axioms NAME`` answers with an info message that :func:`parse_axioms` reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

__all__ = [
    "AxiomsAnswer",
    "MalformedReply",
    "Message",
    "Position",
    "ReplReply",
    "ReplyKind",
    "Sorry",
    "axioms_from_messages",
    "is_sorry_warning",
    "parse_axioms",
    "parse_reply",
    "shift_lines",
]


class MalformedReply(ValueError):
    """The REPL answered something that is not a reply (a bug or a broken process, never the
    proof's fault)."""


class ReplyKind(str, Enum):
    VALID = "valid"
    #: Lean reported an error (or a tactic's ``proofStatus`` is ``Error: ...``).
    LEAN_ERROR = "lean_error"
    #: No error, but the proof uses ``sorry``.
    SORRY = "sorry"
    #: A tactic left goals open (``proofStatus: Incomplete: ...``) without error or sorry.
    INCOMPLETE = "incomplete"
    #: The REPL refused the request itself (``{"message": ...}``: unknown env, bad input).
    REPL_ERROR = "repl_error"


@dataclass(frozen=True)
class Position:
    line: int  # 1-based
    column: int  # 0-based, in code points


@dataclass(frozen=True)
class Message:
    severity: str  # "error", "warning", "info" (lower-cased)
    data: str
    pos: Position | None = None
    end_pos: Position | None = None
    #: The message as the REPL sent it, for passing on to clients.
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


@dataclass(frozen=True)
class Sorry:
    goal: str | None
    pos: Position | None = None
    end_pos: Position | None = None
    proof_state: int | None = None


@dataclass(frozen=True)
class ReplReply:
    env: int | None = None
    messages: tuple[Message, ...] = ()
    sorries: tuple[Sorry, ...] = ()
    #: Tactic mode only: ``"Completed"``, ``"Incomplete: ..."``, ``"Error: ..."``.
    proof_status: str | None = None
    proof_state: int | None = None
    goals: tuple[str, ...] = ()
    #: The REPL's own complaint (``{"message": "Unknown environment."}``), if any.
    repl_message: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def errors(self) -> tuple[Message, ...]:
        return tuple(m for m in self.messages if m.is_error)

    @property
    def has_error(self) -> bool:
        return bool(self.errors) or (self.proof_status or "").startswith("Error")

    @property
    def uses_sorry(self) -> bool:
        """The ``sorries`` list first; the warning text (either spelling) and a tactic's
        ``Incomplete: contains sorry`` catch what the list might miss."""
        return (
            bool(self.sorries)
            or any(is_sorry_warning(m) for m in self.messages)
            or "sorry" in (self.proof_status or "")
        )

    def kind(self) -> ReplyKind:
        """One class per reply; when several apply the worst wins (REPL error, Lean error,
        sorry, incomplete)."""
        if self.repl_message is not None:
            return ReplyKind.REPL_ERROR
        if self.has_error:
            return ReplyKind.LEAN_ERROR
        if self.uses_sorry:
            return ReplyKind.SORRY
        if (self.proof_status or "").startswith("Incomplete"):
            return ReplyKind.INCOMPLETE
        return ReplyKind.VALID


_SORRY_WARNING = re.compile(r"declaration uses ['`‘]sorry['`’]")


def is_sorry_warning(message: Message) -> bool:
    """``declaration uses `sorry``` (recent Lean) or ``declaration uses 'sorry'`` (older)."""
    return message.severity != "info" and bool(_SORRY_WARNING.search(message.data))


def parse_reply(data: object) -> ReplReply:
    """Type a decoded REPL reply; raise :class:`MalformedReply` if it is not one."""
    if not isinstance(data, Mapping):
        raise MalformedReply(f"a REPL reply must be a JSON object, got {type(data).__name__}")
    if "message" in data:
        return ReplReply(repl_message=str(data["message"]), raw=data)
    env = data.get("env")
    if env is not None and not isinstance(env, int):
        raise MalformedReply(f"'env' must be an integer, got {env!r}")
    proof_state = data.get("proofState")
    return ReplReply(
        env=env,
        messages=tuple(_message(m) for m in _list(data, "messages")),
        sorries=tuple(_sorry(s) for s in _list(data, "sorries")),
        proof_status=_optional_str(data, "proofStatus"),
        proof_state=proof_state if isinstance(proof_state, int) else None,
        goals=tuple(str(g) for g in _list(data, "goals")),
        raw=data,
    )


# --- #print axioms ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AxiomsAnswer:
    name: str
    axioms: tuple[str, ...]


_DEPENDS = re.compile(r"^'(?P<name>.+?)' depends on axioms:\s*\[(?P<axioms>.*)\]\s*$", re.DOTALL)
_NO_AXIOMS = re.compile(r"^'(?P<name>.+?)' does not depend on any axioms\s*$", re.DOTALL)


def parse_axioms(text: str) -> AxiomsAnswer | None:
    """Read one ``#print axioms`` answer; ``None`` if ``text`` is not one.

    ``'Ns.foo' depends on axioms: [propext, Classical.choice, Quot.sound]`` (long lists may wrap
    over lines) or ``'Ns.foo' does not depend on any axioms``.
    """
    text = text.strip()
    if match := _NO_AXIOMS.match(text):
        return AxiomsAnswer(match["name"], ())
    if match := _DEPENDS.match(text):
        axioms = tuple(a.strip() for a in match["axioms"].split(",") if a.strip())
        return AxiomsAnswer(match["name"], axioms)
    return None


def axioms_from_messages(messages: Iterable[Message]) -> AxiomsAnswer | None:
    """The first ``#print axioms`` answer among ``messages`` (non-error), if any."""
    for message in messages:
        if not message.is_error and (answer := parse_axioms(message.data)) is not None:
            return answer
    return None


# --- field parsing ----------------------------------------------------------------------------


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedReply(f"{key!r} must be a list, got {type(value).__name__}")
    return value


def _optional_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)


def _position(value: object) -> Position | None:
    if not isinstance(value, Mapping):
        return None
    line, column = value.get("line"), value.get("column")
    if not isinstance(line, int) or not isinstance(column, int):
        return None
    return Position(line, column)


def _message(value: object) -> Message:
    if not isinstance(value, Mapping):
        raise MalformedReply(f"a message must be an object, got {type(value).__name__}")
    severity = value.get("severity")
    if not isinstance(severity, str):
        raise MalformedReply(f"a message needs a 'severity' string, got {severity!r}")
    return Message(
        severity=severity.lower(),
        data=str(value.get("data", "")),
        pos=_position(value.get("pos")),
        end_pos=_position(value.get("endPos")),
        raw=value,
    )


def _sorry(value: object) -> Sorry:
    if not isinstance(value, Mapping):
        raise MalformedReply(f"a sorry must be an object, got {type(value).__name__}")
    proof_state = value.get("proofState")
    return Sorry(
        goal=_optional_str(value, "goal"),
        pos=_position(value.get("pos")),
        end_pos=_position(value.get("endPos")),
        proof_state=proof_state if isinstance(proof_state, int) else None,
    )


def shift_lines(message: Mapping[str, Any], lines: int) -> dict[str, Any]:
    """``message`` with its positions moved ``lines`` down: for code Lean saw with lines before
    or after it that the client did not send (a header's rest, a dropped header block)."""
    shifted = dict(message)
    for key in ("pos", "endPos"):
        pos = shifted.get(key)
        if isinstance(pos, Mapping) and isinstance(pos.get("line"), int):
            shifted[key] = {**pos, "line": pos["line"] + lines}
    return shifted
