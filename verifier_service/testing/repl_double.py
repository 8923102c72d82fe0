"""A stand-in for the Lean REPL that speaks its exact protocol, for tests and benchmarks.

Run it as ``python -m verifier_service.testing.repl_double [options]`` (or build the argv with
:func:`command`). It reads commands the way the REPL does (one JSON object, then a blank line) and
answers the way the REPL does (Lean's ``Json.pretty`` layout: sorted keys, 80 columns, raw UTF-8,
then a blank line), so the code under test cannot tell the framing apart from the real thing.

How a command is answered:

1. **Replay.** Every recorded ``NAME.in`` / ``NAME.expected.out`` pair under ``--transcripts``
   (default: the recordings vendored in ``tests/fixtures/lean-repl/``) is indexed. A command
   equal to a recorded one, up to its ``env`` / ``proofState`` numbers, gets the recorded reply
   with those numbers remapped to this process's own counters. Recordings are matched in context
   first: a command on env ``e`` prefers the recording whose env is the one ``e`` was replayed
   from.
2. **Synthetic rules** for everything else, so arbitrary proofs work: a command without ``env`` is a
   header (an import of an unknown module is an error, like Lean's ``unknown module prefix``);
   ``sorry`` yields a ``sorries`` entry and the ``declaration uses `sorry``` warning;
   ``-- double:error [TEXT]`` yields an error; ``-- double:needsopen NS`` an error unless the
   command's env has ``open NS`` (from its own or an earlier command), and ``-- double:needsoption
   NAME VALUE`` one unless it has ``set_option NAME VALUE`` (so headers that differ only in
   ``open`` or ``set_option`` give different results, as in Lean); an ``import`` in a command
   run on an env is Lean's error; a line ``exact?`` the suggestion Lean gives when
   it finds a proof (published proofs keep them); ``#print axioms NAME`` answers
   from what the env's code used (``sorryAx``, ``Lean.ofReduceBool`` for ``native_decide``, declared
   ``axiom`` names; ``-- double:noaxioms`` for none); an unknown env or proof state gets the REPL's
   ``{"message": ...}``.
3. **Faults**, as markers in a command's text so one process can misbehave per proof:
   ``-- double:hang``, ``-- double:crash`` (dies mid-reply), ``-- double:stderr N`` (KiB),
   ``-- double:grow N`` (MiB kept resident), ``-- double:sleep S``, ``-- double:spawn`` (starts a
   child process that outlives the command, as an ``IO.Process.spawn`` in a proof would).
   Global: ``--delay S`` per proof command, ``--header-delay S``, ``--crash-after N`` commands
   (the pool's syncs, ``{"path": ...}`` commands, count too).
4. **Forgeries**, what a proof that runs code could write to the REPL's stdout (see
   :func:`_forge`; in ``TEXT``, ``$ENV`` stands for the env number the command's real reply
   carries and ``$NEXT`` for the one after, so a forgery can be numbered right):
   ``-- double:forge [TEXT]`` writes ``TEXT`` (default ``{"env": $ENV}``) and a blank line from
   inside the command, before the real reply; ``-- double:trailer [TEXT]`` writes it right after
   the real reply (default ``{"env": $NEXT}``); ``-- double:envshift K`` sends the real reply
   with its env number moved by ``K``; ``-- double:forgechild S [TEXT]`` starts a child that
   keeps the pipes and writes ``TEXT`` (default ``{"env": $NEXT}``) ``S`` seconds later.
5. **Sieve's trusted programs** (``verifier_service/lean/programs``), recognised by their
   ``namespace SieveTrusted…`` line, are answered as the real ones would be, computed in Python:
   the data literal is decoded (:func:`decode_lean_string`, a model of Lean's string-literal
   grammar), the parse comes from the service's own lexer (``soundness/source.py``, loaded by
   path from ``--lexer DIR``, which :func:`command` passes so that a sandbox shows it; where it
   cannot be read the double answers with a REPL error), and types
   are the signature's tokens. Markers in the *code* make Lean's side differ from the lexer's:
   ``-- double:parse-extra`` (Lean reads a command where the lexer sees a comment),
   ``-- double:parse-kind KIND`` (the command around the marker has syntax kind KIND),
   ``-- double:parse-name NAME`` (Lean's declaration there is named NAME),
   ``-- double:parse-error`` (a parse error), ``-- double:type-differs`` (the declarations of
   that command elaborate to another type than their text says) and
   ``-- double:target-kind KIND`` (they are ``axiom``, ``def``, ``opaque``, ... constants).
   Fault markers inside a trusted program's data are not acted on.
6. **Sandbox probes**: ``-- double:probe KIND ARG`` really attempts something a hostile proof
   would, from inside the (sandboxed) process, and answers an info message
   ``probe KIND ARG: ESCAPED|blocked: detail``. Kinds: ``env NAME``, ``procenv NAME`` (any
   ``/proc/*/environ``), ``read PATH``, ``write PATH``, ``remount PATH`` (read-write),
   ``unix PATH`` and ``tcp HOST:PORT`` (connect), ``kill PID [SIG]``, ``forks N``,
   ``fill PATH MIB``, ``caps`` (any effective capability), ``rlimits`` (processes or file size
   unbounded), ``tmpsize MIB`` (``/tmp`` larger), ``root`` (uid 0). See
   :func:`run_probe`; ``sieve-verifier selftest --sandbox`` and the sandbox tests use them.

The module uses only the standard library, so it starts fast and runs anywhere Python does.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import runpy
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

MODULE = "verifier_service.testing.repl_double"

#: Lean's ``Json.pretty`` default width.
LINE_WIDTH = 80

#: Library roots a header may import; anything else is an unknown module, as in a Mathlib project.
KNOWN_ROOTS = frozenset(
    {
        "Init",
        "Std",
        "Lean",
        "Lake",
        "Mathlib",
        "Aesop",
        "Batteries",
        "Qq",
        "ProofWidgets",
        "Plausible",
        "ImportGraph",
        "LeanSearchClient",
    }
)

DEFAULT_AXIOMS = ["propext", "Classical.choice", "Quot.sound"]
SORRY_AXIOMS = ["propext", "sorryAx"]
NATIVE_AXIOMS = ["propext", "Classical.choice", "Lean.ofReduceBool", "Quot.sound"]
SORRY_WARNING = "declaration uses `sorry`"
EXACT_SUGGESTION = "Try this: exact trivial"


def command(*args: str) -> list[str]:
    """The argv that starts the double, e.g. ``command("--delay", "0.05")`` for a pool.

    It runs this file as a script (it needs only the standard library), so it is this copy that
    runs whatever the child's ``PYTHONPATH`` (the pool clears the environment).
    """
    lexer = ["--lexer", str(LEXER_DIR)] if LEXER_DIR.is_dir() else []
    return [sys.executable, str(Path(__file__).resolve()), *lexer, *args]


def default_transcripts() -> Path | None:
    """This checkout's vendored recordings (:data:`verifier_service.vendored.TRANSCRIPTS`), if any.

    The helper is loaded by file path, not imported: run as a script (the pool clears the
    environment), an import could find another checkout's ``verifier_service``. A lone copy of
    this file (the sandbox tests run one) has no helper beside it, and so no recordings.
    """
    helper = Path(__file__).resolve().parents[1] / "vendored.py"
    if not helper.is_file():
        return None
    path = runpy.run_path(str(helper))["TRANSCRIPTS"]
    return path if path.is_dir() else None


# --- Lean's JSON layout -------------------------------------------------------------------------


def render(value: Any) -> str:
    """Lay out ``value`` exactly as Lean's ``Json.pretty`` does (the REPL's reply format).

    Lean renders an object as a bracketed group of ``"key": value`` groups in descending key
    order, each group on one line when it fits in 80 columns together with what follows it up to
    the next line break; otherwise items go one per line, nested one column under the bracket.
    """
    return _layout(value, 0, 0)


def _escape(text: str) -> str:
    out = ['"']
    for char in text:
        if char == '"':
            out.append('\\"')
        elif char == "\\":
            out.append("\\\\")
        elif char == "\n":
            out.append("\\n")
        elif char == "\r":
            out.append("\\r")
        elif ord(char) < 0x20:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _items(obj: dict[str, Any]) -> list[tuple[str, Any]]:
    return sorted(obj.items(), key=lambda item: item[0], reverse=True)


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_escape(k)}: {_flat(v)}" for k, v in _items(value)) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flat(v) for v in value) + "]"
    if isinstance(value, str):
        return _escape(value)
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return json.dumps(value)
    raise TypeError(f"cannot render {type(value).__name__} as JSON")


def _layout(value: Any, column: int, trailing: int) -> str:
    """``value`` starting at ``column``, followed by ``trailing`` characters before a break."""
    flat = _flat(value)
    if (
        not isinstance(value, (dict, list))
        or not value
        or column + len(flat) + trailing <= LINE_WIDTH
    ):
        return flat
    indent = column + 1
    separator = ",\n" + " " * indent
    parts = []
    entries = _items(value) if isinstance(value, dict) else list(enumerate(value))
    for index, (key, item) in enumerate(entries):
        after = trailing + 1 if index == len(entries) - 1 else 1
        if isinstance(value, list):
            parts.append(_layout(item, indent, after))
            continue
        assert isinstance(key, str)  # a dict's key: a list's items left the loop above
        head = _escape(key) + ":"
        flat_item = _flat(item)
        if indent + len(head) + 1 + len(flat_item) + after <= LINE_WIDTH:
            parts.append(f"{head} {flat_item}")
        else:
            parts.append(head + "\n" + " " * indent + _layout(item, indent, after))
    brackets = "{}" if isinstance(value, dict) else "[]"
    return brackets[0] + separator.join(parts) + brackets[1]


# --- framing ------------------------------------------------------------------------------------


def split_blocks(lines: Iterable[str]) -> Iterator[str]:
    """Group lines into blank-line-separated blocks, the REPL's framing in both directions."""
    block: list[str] = []
    for line in lines:
        if line.strip():
            block.append(line.rstrip("\r\n"))
        elif block:
            yield "\n".join(block)
            block = []
    if block:
        yield "\n".join(block)


# --- recorded transcripts -----------------------------------------------------------------------


@dataclass
class Step:
    """One recorded command and reply, with the REPL's counters just before it ran."""

    command: dict[str, Any]
    reply: dict[str, Any]
    env_base: int
    state_base: int


@dataclass
class Transcript:
    name: str
    steps: list[Step]


def load_transcripts(directory: Path) -> list[Transcript]:
    """Every ``*.in`` with a matching ``*.expected.out`` under ``directory``, in name order."""
    transcripts = []
    for source in sorted(directory.rglob("*.in")):
        expected = source.with_name(source.name[: -len(".in")] + ".expected.out")
        if not expected.is_file():
            continue
        commands = [
            json.loads(b, strict=False)
            for b in split_blocks(source.read_text("utf-8").splitlines())
        ]
        replies = [json.loads(b) for b in split_blocks(expected.read_text("utf-8").splitlines())]
        steps, env_base, state_base = [], 0, 0
        for cmd, reply in zip(commands, replies):  # noqa: B905 - a .in may run on past its .out
            steps.append(Step(cmd, reply, env_base, state_base))
            env_base = max([env_base, *(n + 1 for n in _numbers(reply, "env"))])
            state_base = max([state_base, *(n + 1 for n in _numbers(reply, "proofState"))])
        name = source.relative_to(directory).as_posix()[: -len(".in")]
        transcripts.append(Transcript(name, steps))
    return transcripts


def _numbers(value: Any, key: str) -> Iterator[int]:
    if isinstance(value, dict):
        for k, v in value.items():
            if k == key and isinstance(v, int) and not isinstance(v, bool):
                yield v
            else:
                yield from _numbers(v, key)
    elif isinstance(value, list):
        for v in value:
            yield from _numbers(v, key)


def _command_key(cmd: dict[str, Any]) -> str:
    """A command with its env/proof-state numbers blanked: what replay matches on."""
    blanked = {k: ("#" if k in ("env", "proofState") else v) for k, v in cmd.items()}
    return json.dumps(blanked, sort_keys=True, ensure_ascii=False)


def _rewrite(value: Any, env: Any, state: Any) -> Any:
    """``value`` with every ``env`` / ``proofState`` integer passed through ``env`` / ``state``."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "env" and isinstance(v, int):
                out[k] = env(v)
            elif k == "proofState" and isinstance(v, int):
                out[k] = state(v)
            else:
                out[k] = _rewrite(v, env, state)
        return out
    if isinstance(value, list):
        return [_rewrite(v, env, state) for v in value]
    return value


# --- the simulated REPL ---------------------------------------------------------------------------

_DECL = re.compile(
    r"^[ \t]*(?:@\[[^\]\n]*\][ \t\n]*)?"
    r"(?:(?:private|protected|noncomputable|unsafe|partial)[ \t]+)*"
    r"(?P<kw>theorem|lemma|def|abbrev|instance|example|axiom|opaque)\b[ \t]*(?P<name>[^\s:(\[{]*)",
    re.MULTILINE,
)
_IMPORT = re.compile(
    r"^[ \t]*(?:public[ \t]+)?(?:meta[ \t]+)?import[ \t]+(?:all[ \t]+)?(\S+)", re.M
)
_COMMENT = re.compile(r"--[^\n]*|/-.*?-/", re.DOTALL)
_NOT_NEWLINE = re.compile(r"[^\n]")
_MARKER = re.compile(r"--\s*double:(?P<kind>[a-z]+)[ \t]*(?P<arg>[^\n]*)")
_PRINT_AXIOMS = re.compile(r"^[ \t]*(?P<cmd>#print[ \t]+axioms[ \t]+(?P<name>\S+))", re.MULTILINE)


@dataclass
class Env:
    """What the double knows about one environment."""

    #: Declaration name -> the axioms ``#print axioms`` reports (empty: none).
    decls: dict[str, list[str]] = field(default_factory=dict)
    #: The scopes open at the end of the env's commands, innermost last: ``("namespace",
    #: ["A", "B"])`` for ``namespace A.B``, ``("section", [])`` for ``section Foo``.
    scopes: list[tuple[str, list[str]]] = field(default_factory=list)

    @property
    def namespace(self) -> list[str]:
        return [part for kind, parts in self.scopes if kind == "namespace" for part in parts]

    def declare(self, text: str) -> None:
        _declare(self, text)

    #: ``(transcript index, recorded env)`` pairs this env is a replay of.
    origins: set[tuple[int, int]] = field(default_factory=set)
    #: Declaration name -> (constant kind, type form), as the target program reports them.
    types: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: Namespaces opened (``open A B``) and options set (``set_option NAME VALUE``) by the env's
    #: commands: they carry over to every command run on the env, as the REPL's do.
    opens: set[str] = field(default_factory=set)
    options: dict[str, str] = field(default_factory=dict)

    def child(self) -> Env:
        """A new env on top of this one: its declarations, scopes, opens and options."""
        return Env(
            dict(self.decls),
            scopes=list(self.scopes),
            types=dict(self.types),
            opens=set(self.opens),
            options=dict(self.options),
        )


class ReplDouble:
    """The REPL's state machine: envs, proof states, replay and synthetic answers."""

    def __init__(
        self, transcripts: list[Transcript], *, delay: float = 0.0, header_delay: float = 0.0
    ):
        self.transcripts = transcripts
        self.delay = delay
        self.header_delay = header_delay
        self.envs: dict[int, Env] = {}
        self.states: dict[int, set[tuple[int, int]]] = {}
        self._index: dict[str, list[tuple[int, int]]] = {}
        for t, transcript in enumerate(transcripts):
            for s, step in enumerate(transcript.steps):
                self._index.setdefault(_command_key(step.command), []).append((t, s))

    # public entry point
    def answer(self, cmd: Any) -> dict[str, Any]:
        if not isinstance(cmd, dict):
            return {"message": "Could not parse as a valid JSON command: expected an object"}
        if "env" in cmd and cmd["env"] not in self.envs:
            return {"message": "Unknown environment."}
        if "proofState" in cmd and cmd["proofState"] not in self.states:
            return {"message": "Unknown proof state."}
        text = cmd.get("cmd", cmd.get("tactic"))
        if isinstance(text, str):
            time.sleep(self.header_delay if "cmd" in cmd and "env" not in cmd else self.delay)
        if isinstance(cmd.get("cmd"), str) and (program := trusted_program(cmd["cmd"])):
            return self._program(program, cmd["cmd"], cmd.get("env"))
        reply = self._replay(cmd)
        if reply is not None:
            return reply
        if isinstance(cmd.get("cmd"), str):
            return self._command(cmd["cmd"], cmd.get("env"))
        if isinstance(cmd.get("tactic"), str):
            return self._tactic(cmd["tactic"])
        if isinstance(cmd.get("path"), str):
            try:
                source = Path(cmd["path"]).read_text("utf-8")
            except OSError as exc:
                return {"message": f"{exc.strerror}\n  file: {cmd['path']}"}
            return self._command(source, cmd.get("env"))
        return {"message": f"Could not parse as a valid JSON command: {json.dumps(cmd)}"}

    # replay
    def _replay(self, cmd: dict[str, Any]) -> dict[str, Any] | None:
        candidates = self._index.get(_command_key(cmd), [])
        in_context = [c for c in candidates if self._in_context(cmd, *c)]
        if not in_context and "proofState" not in cmd:
            in_context = candidates
        if not in_context:
            return None
        new_envs: dict[int, int] = {}
        new_states: dict[int, int] = {}
        first_t, first_s = in_context[0]
        reply = self._remap(cmd, first_t, first_s, new_envs, new_states)
        chosen = _shape(self.transcripts[first_t].steps[first_s])
        parent = self.envs.get(cmd.get("env", -1), Env())
        for env in new_envs.values():
            self.envs[env] = parent.child()
            if isinstance(cmd.get("cmd"), str):
                self.envs[env].declare(cmd["cmd"])
        for state in new_states.values():
            self.states[state] = set()
        for t, s in in_context:
            step = self.transcripts[t].steps[s]
            if _shape(step) != chosen:
                continue
            for offset, env in new_envs.items():
                self.envs[env].origins.add((t, step.env_base + offset))
            for offset, state in new_states.items():
                self.states[state].add((t, step.state_base + offset))
        return reply

    def _in_context(self, cmd: dict[str, Any], t: int, s: int) -> bool:
        recorded = self.transcripts[t].steps[s].command
        if "env" in cmd and (t, recorded["env"]) not in self.envs[cmd["env"]].origins:
            return False
        return not (
            "proofState" in cmd
            and (t, recorded["proofState"]) not in self.states[cmd["proofState"]]
        )

    def _remap(
        self,
        cmd: dict[str, Any],
        t: int,
        s: int,
        new_envs: dict[int, int],
        new_states: dict[int, int],
    ) -> dict[str, Any]:
        step = self.transcripts[t].steps[s]

        def lookup(recorded: int, ours: Any, known: dict[int, set[tuple[int, int]]]) -> int:
            if recorded == ours[0]:
                return ours[1]
            for number, origins in known.items():
                if (t, recorded) in origins:
                    return number
            return recorded

        def env(recorded: int) -> int:
            if recorded >= step.env_base:
                offset = recorded - step.env_base
                return new_envs.setdefault(offset, self._next(self.envs) + offset)
            ours = (step.command.get("env"), cmd.get("env"))
            return lookup(recorded, ours, {k: v.origins for k, v in self.envs.items()})

        def state(recorded: int) -> int:
            if recorded >= step.state_base:
                offset = recorded - step.state_base
                return new_states.setdefault(offset, self._next(self.states) + offset)
            ours = (step.command.get("proofState"), cmd.get("proofState"))
            return lookup(recorded, ours, self.states)

        return _rewrite(step.reply, env, state)

    @staticmethod
    def _next(numbers: dict[int, Any]) -> int:
        return len(numbers)  # numbers are handed out in order and never dropped, like the REPL's

    # synthetic answers
    def _command(self, text: str, env: int | None) -> dict[str, Any]:
        code = _without_comments(text)
        lines = _Lines(text)
        messages: list[dict[str, Any]] = []
        sorries: list[dict[str, Any]] = []
        if env is None:
            messages += _import_errors(code, lines)
        else:  # imports start a fresh environment only
            for match in _IMPORT.finditer(code):
                data = "invalid 'import' command, it must be used in the beginning of the file"
                messages.append(_message("error", lines, match.start(), match.end(), data))
        declarations = list(_DECL.finditer(code))
        sorry_decls = set()
        for match in re.finditer(r"\bsorry\b", code):
            state = self._next(self.states)
            self.states[state] = set()
            sorries.append(
                {
                    "proofState": state,
                    "pos": lines.pos(match.start()),
                    "goal": "⊢ " + _goal(code, declarations, match.start()),
                    "endPos": lines.pos(match.end()),
                }
            )
            owner = _owner(declarations, match.start())
            if owner is not None:
                sorry_decls.add(owner)
        for decl in sorry_decls:
            span = decl.span("name") if decl.group("name") else decl.span("kw")
            messages.append(_message("warning", lines, *span, SORRY_WARNING))
        for marker in _MARKER.finditer(text):
            if marker.group("kind") == "error":
                data = marker.group("arg").strip() or "unsolved goals"
                messages.append(_message("error", lines, *marker.span(), data))
            elif marker.group("kind") == "probe":
                result = run_probe(marker.group("arg"))
                messages.append(_message("info", lines, *marker.span(), result))
        for match in re.finditer(r"^[ \t]*exact\?[ \t]*$", code, re.MULTILINE):
            messages.append(_message("info", lines, *match.span(), EXACT_SUGGESTION))
        parent = self.envs[env] if env is not None else Env()
        new = parent.child()
        new.declare(text)
        _scope_settings(new, code)
        for marker in _MARKER.finditer(text):
            kind, arg = marker.group("kind"), marker.group("arg").split()
            if kind == "needsopen" and arg and arg[0] not in new.opens:
                data = f"unknown identifier (namespace {arg[0]} is not open)"
                messages.append(_message("error", lines, *marker.span(), data))
            elif kind == "needsoption" and len(arg) >= 2 and new.options.get(arg[0]) != arg[1]:
                data = f"this needs `set_option {arg[0]} {arg[1]}`"
                messages.append(_message("error", lines, *marker.span(), data))
        for match in _PRINT_AXIOMS.finditer(code):
            # Lean resolves ``_root_.foo`` to ``foo``, a plain name in the open namespaces
            # first, and prints the resolved name.
            name = match.group("name")
            if name.startswith("_root_."):
                name = name.removeprefix("_root_.")
            elif (qualified := ".".join([*new.namespace, name])) in new.decls:
                name = qualified
            span = match.span("cmd")
            if name not in new.decls:
                messages.append(_message("error", lines, *span, f"Unknown constant `{name}`"))
            elif not new.decls[name]:
                messages.append(
                    _message("info", lines, *span, f"'{name}' does not depend on any axioms")
                )
            else:
                listed = ", ".join(new.decls[name])
                messages.append(
                    _message("info", lines, *span, f"'{name}' depends on axioms: [{listed}]")
                )
        messages.sort(key=lambda m: (m["pos"]["line"], m["pos"]["column"]))
        number = self._next(self.envs)
        self.envs[number] = new
        reply: dict[str, Any] = {"env": number}
        if sorries:
            reply["sorries"] = sorries
        if messages:
            reply["messages"] = messages
        return reply

    def _program(self, program: str, text: str, env: int | None) -> dict[str, Any]:
        """A trusted program's answer: one info message ``SIEVE-<PROGRAM> {json}``."""
        match = _DATA_LITERAL.search(text)
        if match is None:
            return {"message": "double: a trusted program without its data literal"}
        try:
            data = json.loads(decode_lean_string(match.group("literal")))
            answer = _PROGRAM_ANSWERS[program](
                data, self.envs.get(env) if env is not None else None
            )
        except LexerUnavailable as exc:
            return {"message": f"double: {exc}"}
        except (ValueError, KeyError, TypeError) as exc:
            return {"message": f"double: bad program data: {exc}"}
        answer["nonce"] = data.get("nonce")
        parent = self.envs[env] if env is not None else Env()
        number = self._next(self.envs)
        self.envs[number] = parent.child()
        tag = f"SIEVE-{program.upper()}"
        lines = _Lines(text)
        payload = tag + " " + json.dumps(answer, ensure_ascii=False, separators=(",", ":"))
        return {"env": number, "messages": [_message("info", lines, 0, 0, payload)]}

    def _tactic(self, text: str) -> dict[str, Any]:
        errors = [
            m.group("arg").strip() for m in _MARKER.finditer(text) if m.group("kind") == "error"
        ]
        if errors:
            return {"message": "Lean error:\n" + (errors[0] or "unsolved goals")}
        state = self._next(self.states)
        self.states[state] = set()
        return {"proofStatus": "Completed", "proofState": state, "goals": []}


def _shape(step: Step) -> str:
    """A recorded reply with new numbers made relative, to tell equivalent recordings apart."""

    def env(n: int) -> str:
        return f"new+{n - step.env_base}" if n >= step.env_base else f"old{n}"

    def state(n: int) -> str:
        return f"new+{n - step.state_base}" if n >= step.state_base else f"old{n}"

    return json.dumps(_rewrite(step.reply, env, state), sort_keys=True)


class _Lines:
    """Offsets to Lean positions (1-based line, 0-based column in code points)."""

    def __init__(self, text: str) -> None:
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def pos(self, offset: int) -> dict[str, int]:
        line = max(i for i, start in enumerate(self.starts) if start <= offset)
        return {"line": line + 1, "column": offset - self.starts[line]}


def _message(severity: str, lines: _Lines, start: int, end: int, data: str) -> dict[str, Any]:
    return {"severity": severity, "pos": lines.pos(start), "endPos": lines.pos(end), "data": data}


def _import_errors(code: str, lines: _Lines) -> list[dict[str, Any]]:
    errors = []
    for match in _IMPORT.finditer(code):
        module = match.group(1)
        root = module.split(".")[0]
        if root not in KNOWN_ROOTS:
            data = (
                f"unknown module prefix '{root}'\n\nNo directory '{root}' or file '{root}.olean' "
                "in the search path entries:\n/opt/lean/lib/lean"
            )
        elif "DoesNotExist" in module:
            data = f"object file of module {module} does not exist"
        else:
            continue
        errors.append(_message("error", lines, match.start(1), match.end(1), data))
    return errors


_OPEN = re.compile(r"^[ \t]*open[ \t]+(?P<names>[^\n]*)$", re.MULTILINE)
_SET_OPTION = re.compile(
    r"^[ \t]*set_option[ \t]+(?P<name>\S+)[ \t]+(?P<value>\S+)[ \t]*$", re.MULTILINE
)


def _scope_settings(env: Env, code: str) -> None:
    """Record the ``open`` and ``set_option`` commands of ``code`` (comments blanked) that
    apply to the rest of the env: not the ``... in`` forms, which apply to one command."""
    for match in _OPEN.finditer(code):
        names = match.group("names").split()
        if "in" not in names:
            env.opens.update(names)
    for match in _SET_OPTION.finditer(code):
        env.options[match.group("name")] = match.group("value")


def _owner(declarations: list[re.Match[str]], offset: int) -> re.Match[str] | None:
    owners = [d for d in declarations if d.start() <= offset]
    return owners[-1] if owners else None


def _goal(code: str, declarations: list[re.Match[str]], offset: int) -> str:
    """The statement of the declaration around ``offset``: the type after its top-level colon."""
    owner = _owner(declarations, offset)
    if owner is None:
        return "?"
    signature = code[owner.end() : offset].split(":=")[0]
    depth, colon = 0, -1
    for i, char in enumerate(signature):
        if char in "([{⦃":
            depth += 1
        elif char in ")]}⦄":
            depth -= 1
        elif char == ":" and depth == 0:
            colon = i
            break
    return " ".join(signature[colon + 1 :].split()) or "?"


def _without_comments(text: str) -> str:
    """``text`` with comments blanked out, so offsets (and Lean positions) stay the same."""
    return _COMMENT.sub(lambda m: _NOT_NEWLINE.sub(" ", m.group()), text)


_SCOPE = re.compile(
    r"^[ \t]*(?:noncomputable[ \t]+)?(?P<kw>namespace|section|end)\b[ \t]*(?P<name>[^\s]*)",
    re.MULTILINE,
)


def _declare(env: Env, text: str) -> None:
    """Add ``text``'s declarations to ``env``, qualified by the namespaces open where each one
    stands (``namespace A`` ... ``end A``, across commands too), as Lean names them."""
    code = _without_comments(text)
    axioms = _declarations(text, code)
    types = _declared_types(text)
    events = sorted(
        [(m.start(), "scope", m) for m in _SCOPE.finditer(code)]
        + [(m.start(), "decl", m) for m in _DECL.finditer(code) if m.group("name")]
    )
    for _, kind, match in events:
        name = match.group("name")
        if kind == "decl":
            full = (
                name.removeprefix("_root_.")
                if name.startswith("_root_.")
                else ".".join([*env.namespace, name])
            )
            env.decls[full] = axioms[name]
            if (declared := types.get(match.start("kw"))) is not None:
                env.types[full] = declared
        elif match.group("kw") == "namespace":
            env.scopes.append(("namespace", name.split(".")))
        elif match.group("kw") == "section":
            env.scopes.append(("section", []))
        else:  # ``end`` closes the innermost scope; ``end A.B`` a namespace ``A.B``
            wanted = len(name.split(".")) if name else 1
            while wanted > 0 and env.scopes:
                kind, parts = env.scopes.pop()
                wanted -= len(parts) if kind == "namespace" and parts else 1


def _declarations(text: str, code: str) -> dict[str, list[str]]:
    """Declaration name -> the axioms ``#print axioms`` reports for it (``code`` is ``text``
    with comments blanked)."""
    declared_axioms = [m.group("name") for m in _DECL.finditer(code) if m.group("kw") == "axiom"]
    if "double:noaxioms" in text:
        axioms: list[str] = []
    elif re.search(r"\bsorry(?:Ax)?\b", code):  # ``sorryAx`` written out: no warning, but the axiom
        axioms = SORRY_AXIOMS
    elif "native_decide" in code:
        axioms = NATIVE_AXIOMS
    else:
        axioms = DEFAULT_AXIOMS
    axioms = [*declared_axioms, *axioms]
    return {m.group("name"): list(axioms) for m in _DECL.finditer(code) if m.group("name")}


# --- Sieve's trusted programs -----------------------------------------------------------------

_TRUSTED = re.compile(r"^namespace SieveTrusted(?P<which>Parse|Statement|Target)\b", re.MULTILINE)
_DATA_LITERAL = re.compile(r'let data : String := (?P<literal>"(?:[^"\\]|\\.)*")')
_DOUBLE_MARKER = re.compile(r"--\s*double:(?P<kind>[a-z-]+)[ \t]*(?P<arg>[^\n]*)")
#: The lexer's words -> the syntax kinds Lean gives those commands (the inverse of the service's
#: ``soundness/allowlist.py`` tables, for the commands a proof writes).
_DECLARATION_KINDS = {
    "theorem": "Lean.Parser.Command.theorem",
    "def": "Lean.Parser.Command.definition",
    "abbrev": "Lean.Parser.Command.abbrev",
    "example": "Lean.Parser.Command.example",
    "inductive": "Lean.Parser.Command.inductive",
    "structure": "Lean.Parser.Command.structure",
    "class": "Lean.Parser.Command.structure",
    "instance": "Lean.Parser.Command.instance",
    "axiom": "Lean.Parser.Command.axiom",
    "opaque": "Lean.Parser.Command.opaque",
}
_COMMAND_KINDS = {
    "open": "Lean.Parser.Command.open",
    "set_option": "Lean.Parser.Command.set_option",
    "namespace": "Lean.Parser.Command.namespace",
    "section": "Lean.Parser.Command.section",
    "end": "Lean.Parser.Command.end",
    "universe": "Lean.Parser.Command.universe",
    "variable": "Lean.Parser.Command.variable",
    "include": "Lean.Parser.Command.include",
    "omit": "Lean.Parser.Command.omit",
    "attribute": "Lean.Parser.Command.attribute",
    "mutual": "Lean.Parser.Command.mutual",
    "#check": "Lean.Parser.Command.check",
    "#print": "Lean.Parser.Command.print",
    "#reduce": "Lean.Parser.Command.reduce",
    "#synth": "Lean.Parser.Command.synth",
    "#exit": "Lean.Parser.Command.exit",
    "#eval": "Lean.Parser.Command.eval",
    "lemma": "lemma",
}
_THEOREM_KINDS = {"theorem": "theorem", "lemma": "theorem", "example": "theorem"}


class LexerUnavailable(RuntimeError):
    """The service's lexer cannot be loaded here (a sandbox shows only the paths on the command
    line: start the double with ``--lexer DIR``, as :func:`command` does)."""


def trusted_program(text: str) -> str | None:
    """``parse``, ``statement`` or ``target`` when ``text`` is one of Sieve's trusted programs."""
    match = _TRUSTED.search(text)
    return match.group("which").lower() if match else None


def decode_lean_string(literal: str) -> str:
    """The value of one Lean string literal (``"..."``), by Lean's grammar (``strLitFnAux``,
    ``quotedCharCoreFn``): ``\\\\ \\" \\' \\r \\n \\t \\xHH \\uHHHH`` and string gaps (``\\``, a
    newline, then whitespace) are escapes; any other character stands for itself. Raises
    ``ValueError`` for anything that is not exactly one complete literal."""
    if len(literal) < 2 or literal[0] != '"':
        raise ValueError("a string literal starts with '\"'")
    out: list[str] = []
    i, n = 1, len(literal)
    simple = {"\\": "\\", '"': '"', "'": "'", "r": "\r", "n": "\n", "t": "\t"}
    while i < n:
        char = literal[i]
        if char == '"':
            if i != n - 1:
                raise ValueError(f"the literal ends at {i}, before the end of the text")
            return "".join(out)
        if char != "\\":
            out.append(char)
            i += 1
            continue
        if i + 1 >= n:
            raise ValueError("unterminated escape")
        code = literal[i + 1]
        if code in simple:
            out.append(simple[code])
            i += 2
        elif code in "xu":
            width = 2 if code == "x" else 4
            digits = literal[i + 2 : i + 2 + width]
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError(f"bad \\{code} escape at {i}")
            out.append(chr(int(digits, 16)))
            i += 2 + width
        elif code == "\n":  # a string gap: the newline and the whitespace after it vanish
            i += 2
            while i < n and literal[i] in " \t\r\n":
                i += 1
        else:
            raise ValueError(f"invalid escape \\{code} at {i}")
    raise ValueError("unterminated string literal")


#: Where the service's lexer lives. :func:`command` passes it as ``--lexer DIR``: an absolute
#: path on the command line is what a sandbox makes visible to the process, so a sandboxed double
#: answers the trusted programs too.
LEXER_DIR = Path(__file__).resolve().parents[1] / "soundness"
#: The modules of ``soundness/`` the lexer needs, in the order they are loaded.
LEXER_MODULES = ("allowlist", "source")


def _lexer() -> Any:
    """The service's lexer (``soundness/source.py``), loaded by path so that this script needs
    neither the package's dependencies nor an installed copy of it."""
    import importlib.util

    full = "verifier_service.soundness.source"
    if full in sys.modules:
        return sys.modules[full]
    directory = LEXER_DIR
    for name in LEXER_MODULES:
        dotted = f"verifier_service.soundness.{name}"
        if dotted in sys.modules:
            continue
        path = directory / f"{name}.py"
        spec = importlib.util.spec_from_file_location(dotted, path)
        if spec is None or spec.loader is None or not path.is_file():
            raise LexerUnavailable(f"the lexer is not readable here ({path})")
        module = importlib.util.module_from_spec(spec)
        sys.modules[dotted] = module
        try:
            spec.loader.exec_module(module)
        except OSError as exc:
            del sys.modules[dotted]
            raise LexerUnavailable(f"the lexer is not readable here: {exc}") from None
    return sys.modules[full]


class _Bytes:
    """Code-point offsets to UTF-8 byte offsets (Lean's ``String.Pos``)."""

    def __init__(self, text: str) -> None:
        self.starts = [0]
        for char in text:
            self.starts.append(self.starts[-1] + len(char.encode("utf-8", "surrogatepass")))

    def __call__(self, offset: int) -> int:
        return self.starts[offset]


def _signature(tokens: list[Any], k: int) -> tuple[str | None, list[Any]]:
    """The name and signature tokens of the declaration whose keyword is ``tokens[k]``: up to
    ``:=``, ``|`` or ``where`` outside brackets."""
    name = None
    j = k + 1
    if tokens[k].value != "example" and j < len(tokens) and tokens[j].kind.value == "ident":
        name = tokens[j].value
        j += 1
    sig, depth = [], 0
    while j < len(tokens):
        tok = tokens[j]
        if depth == 0 and (
            tok.text in ("|", "where")
            or (
                tok.text == ":"
                and j + 1 < len(tokens)
                and tokens[j + 1].text == "="
                and not tokens[j + 1].spaced
            )
        ):
            break
        if tok.text in "([{⟨⦃⟦":
            depth += 1
        elif tok.text in ")]}⟩⦄⟧":
            depth -= 1
        sig.append(tok)
        j += 1
    return name, sig


def _sig_form(sig: list[Any]) -> str:
    return " ".join(tok.value for tok in sig)


def _double_parse(text: str) -> dict[str, Any]:
    """The parse program's answer, from the lexer's command split: pieces inside a command (an
    indented ``set_option ... in``, tactics after it) join the command they are in, as in Lean."""
    source = _lexer()
    text = text.replace("\r\n", "\n")  # as ``mkInputContext`` of recent Lean versions does
    tokens = source.tokenize(text)
    at = _Bytes(text)
    commands: list[dict[str, Any]] = []
    chained = False  # the previous piece ended with ``in``: this one is the next part
    mutual = False  # inside ``mutual ... end``: declarations are parts of the block
    for piece in source.body_commands(tokens):
        first = piece.tokens[0]
        head = source.command_head(piece)
        word = piece.kind if piece.kind in ("open", "set_option") else (head and head.value)
        is_decl = word in _DECLARATION_KINDS or word == "lemma"
        starts = (
            not commands
            or chained
            or (mutual and is_decl)
            or (not mutual and first.column == 0 and piece.kind != "continuation")
            or (not mutual and is_decl)
        )
        leaves = [n for tok in piece.tokens for n in (at(tok.start), at(tok.end))]
        if not starts:
            commands[-1]["stop"] = at(piece.end)
            commands[-1]["leaves"] += leaves
            chained = False
            mutual = mutual and word != "end"
            continue
        if word in _DECLARATION_KINDS:
            kind = "Lean.Parser.Command.declaration"
        else:
            kind = _COMMAND_KINDS.get(word or "", f"double.unknown.{word}")
        part = {"kind": kind, "head": at(piece.start)}
        decl = None
        if head is not None and (word in _DECLARATION_KINDS or word == "lemma"):
            k = piece.tokens.index(head)
            name, sig = _signature(list(piece.tokens), k)
            stop = sig[-1].end if sig else head.end
            decl = {
                "kind": _DECLARATION_KINDS.get(word, "lemma"),
                "keyword": head.value,
                "name": name,
                "modifiers": " ".join(t.value for t in piece.tokens[:k]),
                "signature": _sig_form(sig),
                "range": [at(piece.start), at(stop)],
            }
        part["decl"] = decl
        if (chained or mutual) and commands:
            command = commands[-1]
            if chained:
                command["kind"] = "Lean.Parser.Command.in"
            command["parts"].append(part)
            command["stop"] = at(piece.end)
            command["leaves"] += leaves
            command["decl"] = decl or command["decl"]
        else:
            commands.append(
                {
                    "kind": kind,
                    "start": at(piece.start),
                    "stop": at(piece.end),
                    "head": at(piece.start),
                    "parts": [part],
                    "decl": decl,
                    "leaves": leaves,
                }
            )
        chained = piece.kind in ("open", "set_option") and piece.tokens[-1].value == "in"
        mutual = mutual or word == "mutual"
    errors: list[dict[str, Any]] = []
    for marker in _DOUBLE_MARKER.finditer(text):
        kind, arg = marker.group("kind"), marker.group("arg").strip()
        offset = at(marker.start())
        around = [c for c in commands if c["start"] <= offset] or commands[:1]
        if kind == "parse-extra":
            commands.append(
                {
                    "kind": "Lean.Parser.Command.exit",
                    "start": offset,
                    "stop": at(marker.end()),
                    "head": offset,
                    "parts": [{"kind": "Lean.Parser.Command.exit", "head": offset}],
                    "decl": None,
                    "leaves": [offset, at(marker.end())],
                }
            )
            commands.sort(key=lambda c: c["start"])
        elif kind == "parse-kind" and around:
            around[-1]["parts"][0]["kind"] = arg
            around[-1]["kind"] = arg
            around[-1]["decl"] = None
        elif kind == "parse-name" and around and around[-1]["decl"] is not None:
            around[-1]["decl"]["name"] = arg
        elif kind == "parse-error":
            line = text.count("\n", 0, marker.start()) + 1
            errors.append({"line": line, "column": 0, "message": "unexpected token (double)"})
    return {"commands": commands, "errors": errors, "size": at(len(text))}


def _answer_parse(data: dict[str, Any], _env: Env | None) -> dict[str, Any]:
    statement = data.get("statement") or ""
    return {
        "code": _double_parse(data["code"]),
        "statement": _double_parse(statement) if statement else None,
    }


def _types_of(text: str) -> dict[int, tuple[str, str, str]]:
    """Keyword offset -> (name as written, constant kind, type form), for each declaration."""
    source = _lexer()
    tokens = source.tokenize(text)
    kinds = {"def": "def", "abbrev": "def", "instance": "def", "axiom": "axiom"}
    kinds |= {"opaque": "opaque", **_THEOREM_KINDS}
    found: dict[int, tuple[str, str, str]] = {}
    for k, tok in enumerate(tokens):
        if tok.kind.value != "ident" or tok.value not in kinds:
            continue
        if k and tokens[k - 1].line == tok.line and tokens[k - 1].value not in _MODIFIERS:
            continue
        name, sig = _signature(tokens, k)
        found[tok.start] = (name or "", kinds[tok.value], _sig_form(sig))
    return found


_MODIFIERS = frozenset(
    {"private", "protected", "noncomputable", "partial", "nonrec", "unsafe", "]"}
)


def _answer_statement(data: dict[str, Any], _env: Env | None) -> dict[str, Any]:
    types = _types_of(data["statement"])
    if len(types) != 1:
        return {"error": "the statement is not exactly one declaration"}
    ((_, kind, type_),) = types.values()
    return {"kind": kind, "type": type_}


def _answer_target(data: dict[str, Any], env: Env | None) -> dict[str, Any]:
    name = str(data["name"]).removeprefix("_root_.")
    found = (env.types if env is not None else {}).get(name)
    if found is None:
        return {"error": f"unknown constant {name}"}
    return {"kind": found[0], "type": found[1]}


def _declared_types(text: str) -> dict[int, tuple[str, str]]:
    """Keyword offset -> (constant kind, type form) of each declaration ``text`` elaborates,
    with the ``type-differs`` and ``target-kind`` markers applied (none without the lexer)."""
    try:
        types = _types_of(text)
    except LexerUnavailable:
        return {}
    markers = {m.group("kind"): m.group("arg").strip() for m in _DOUBLE_MARKER.finditer(text)}
    out = {}
    for offset, (_, kind, type_) in types.items():
        if "type-differs" in markers:
            type_ += " ∧ True"
        out[offset] = (markers.get("target-kind") or kind, type_)
    return out


_PROGRAM_ANSWERS = {
    "parse": _answer_parse,
    "statement": _answer_statement,
    "target": _answer_target,
}


# --- sandbox probes ------------------------------------------------------------------------------


def run_probe(spec: str) -> str:
    """Attempt one escape (``KIND ARG``) from this process; say whether it worked.

    Each probe really tries: the answer is ``ESCAPED`` only when the attempt succeeded, and a
    probe that raises counts as ``blocked`` (the error is the detail).
    """
    kind, _, arg = spec.strip().partition(" ")
    probe = _PROBES.get(kind)
    if probe is None:
        return f"probe {spec.strip()}: unknown probe"
    try:
        escaped, detail = probe(arg.strip())
    except Exception as exc:  # the attempt failed: that is what a sandbox is for
        escaped, detail = False, f"{type(exc).__name__}: {exc}"
    return f"probe {spec.strip()}: {'ESCAPED' if escaped else 'blocked'}: {detail}"


def _probe_env(name: str) -> tuple[bool, str]:
    value = os.environ.get(name)
    return value is not None, "set" if value is not None else "not set"


def _probe_procenv(name: str) -> tuple[bool, str]:
    needle = name.encode() + b"="
    readable, found = 0, []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as environ:
                data = environ.read()
        except OSError:
            continue
        readable += 1
        if data.startswith(needle) or b"\0" + needle in data:
            found.append(entry)
    return bool(found), f"{readable} environ files readable; {name} in pids {found[:5]}"


def _probe_read(path: str) -> tuple[bool, str]:
    with open(path, "rb") as file:
        data = file.read(64)
    return True, f"read {len(data)} bytes"


def _probe_write(path: str) -> tuple[bool, str]:
    with open(path, "w", encoding="utf-8") as file:
        file.write("written from inside the sandbox\n")
    return True, f"wrote {path}"


def _probe_remount(path: str) -> tuple[bool, str]:
    import ctypes
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    ms_remount, ms_bind = 32, 4096
    if libc.mount(None, path.encode(), None, ms_remount | ms_bind, None) == 0:
        return True, f"{path} remounted read-write"
    return False, os.strerror(ctypes.get_errno())


def _probe_unix(path: str) -> tuple[bool, str]:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(3)
        sock.connect(path)
    return True, f"connected to {path}"


def _probe_tcp(address: str) -> tuple[bool, str]:
    import socket

    host, _, port = address.rpartition(":")
    socket.create_connection((host, int(port)), timeout=3).close()
    return True, f"connected to {address}"


def _probe_kill(arg: str) -> tuple[bool, str]:
    pid, _, signum = arg.partition(" ")
    os.kill(int(pid), int(signum or 0))
    return True, f"signalled {pid}"


def _probe_forks(arg: str) -> tuple[bool, str]:
    wanted = int(arg or 200)
    children: list[int] = []
    error = ""
    for _ in range(wanted):
        try:
            pid = os.fork()
        except OSError as exc:
            error = f"; then {exc.strerror}"
            break
        if pid == 0:  # the child: stay alive a moment, so the forks overlap
            time.sleep(2)
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    return len(children) == wanted, f"{len(children)} of {wanted} forks succeeded{error}"


def _probe_fill(arg: str) -> tuple[bool, str]:
    path, _, size = arg.partition(" ")
    wanted = int(size or 64)
    chunk, written, error = b"\0" * (1 << 20), 0, ""
    try:
        with open(path, "wb") as file:
            for _ in range(wanted):
                file.write(chunk)
                file.flush()
                written += 1
    except OSError as exc:
        error = f"; then {exc.strerror}"
    finally:
        if os.path.exists(path):
            os.unlink(path)
    return written == wanted, f"wrote {written} of {wanted} MiB{error}"


def _probe_caps(_arg: str) -> tuple[bool, str]:
    with open("/proc/self/status", encoding="ascii") as status:
        caps = next(line.split()[1] for line in status if line.startswith("CapEff:"))
    return int(caps, 16) != 0, f"CapEff {caps}"


def _probe_rlimits(_arg: str) -> tuple[bool, str]:
    import resource

    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    fsize = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    unbounded = resource.RLIM_INFINITY in (nproc, fsize)
    show = {resource.RLIM_INFINITY: "unlimited"}
    return unbounded, f"processes {show.get(nproc, nproc)}, file size {show.get(fsize, fsize)}"


def _probe_tmpsize(arg: str) -> tuple[bool, str]:
    stat = os.statvfs("/tmp")
    mib = stat.f_blocks * stat.f_frsize >> 20
    return mib > int(arg or 1024) + 1, f"/tmp holds {mib} MiB"


def _probe_root(_arg: str) -> tuple[bool, str]:
    return os.geteuid() == 0, f"uid {os.getuid()} euid {os.geteuid()}"


_PROBES = {
    "env": _probe_env,
    "procenv": _probe_procenv,
    "read": _probe_read,
    "write": _probe_write,
    "remount": _probe_remount,
    "unix": _probe_unix,
    "tcp": _probe_tcp,
    "kill": _probe_kill,
    "forks": _probe_forks,
    "fill": _probe_fill,
    "caps": _probe_caps,
    "rlimits": _probe_rlimits,
    "tmpsize": _probe_tmpsize,
    "root": _probe_root,
}


# --- the process ----------------------------------------------------------------------------------

_HELD: list[bytearray] = []


def _apply_faults(text: str) -> bool:
    """Act on fault markers before answering; return True when the reply must be cut short."""
    crash = False
    for marker in _MARKER.finditer(text):
        kind, arg = marker.group("kind"), marker.group("arg").strip()
        if kind == "hang":
            while True:
                time.sleep(3600)
        elif kind == "sleep":
            time.sleep(float(arg or 1))
        elif kind == "stderr":
            chunk = b"x" * 1023 + b"\n"
            for _ in range(int(arg or 1)):
                sys.stderr.buffer.write(chunk)
            sys.stderr.buffer.flush()
        elif kind == "grow":
            size = int(float(arg or 1) * (1 << 20))
            block = bytearray(size)
            block[::4096] = b"\x01" * len(range(0, size, 4096))  # touch every page: resident
            _HELD.append(block)
        elif kind == "spawn":
            child = subprocess.Popen(["sleep", "3600"], stdin=subprocess.DEVNULL)
            sys.stderr.write(f"spawned {child.pid}\n")
            sys.stderr.flush()
        elif kind == "crash":
            crash = True
    return crash


@dataclass
class _Forgery:
    """What the forgery markers of one command ask for (see the module docstring, point 4)."""

    shift: int = 0
    trailer: bytes = b""


def _forged(text: str, default: str, env: int) -> bytes:
    """``text`` (or ``default``) with ``$ENV``/``$NEXT`` filled in, framed like a reply."""
    body = (text or default).replace("$NEXT", str(env + 1)).replace("$ENV", str(env))
    return body.encode("utf-8") + b"\n\n"


def _forge(text: str, env: int, stdout: IO[bytes]) -> _Forgery:
    """Act on the forgery markers in ``text`` while the command runs; ``env`` is the number its
    real reply will carry. Writes go to the same stdout as the replies, as a proof's would."""
    forgery = _Forgery()
    for marker in _MARKER.finditer(text):
        kind, arg = marker.group("kind"), marker.group("arg").strip()
        if kind == "forge":
            stdout.write(_forged(arg, '{"env": $ENV}', env))
            stdout.flush()
        elif kind == "trailer":
            forgery.trailer += _forged(arg, '{"env": $NEXT}', env)
        elif kind == "envshift":
            forgery.shift += int(arg or 1)
        elif kind == "forgechild":
            delay, _, rest = arg.partition(" ")
            data = _forged(rest.strip(), '{"env": $NEXT}', env)
            script = (
                "import os, sys, time\n"
                f"time.sleep({float(delay or 0.5)!r})\n"
                f"os.write(1, {data!r})\n"
            )
            # stdout is inherited: the child holds the REPL's pipe after the command is answered
            subprocess.Popen(
                [sys.executable, "-c", script],
                stdin=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
    return forgery


def serve(
    double: ReplDouble, stdin: IO[str], stdout: IO[bytes], *, crash_after: int | None = None
) -> int:
    """Answer commands from ``stdin`` until EOF, like ``repl`` does."""
    for count, block in enumerate(split_blocks(stdin), start=1):
        if crash_after is not None and count > crash_after:
            os._exit(1)
        try:
            cmd = json.loads(block, strict=False)
        except json.JSONDecodeError as exc:
            reply: dict[str, Any] = {"message": f"Could not parse JSON:\n{exc}"}
            crash, forgery = False, _Forgery()
        else:
            text = cmd.get("cmd", cmd.get("tactic", "")) if isinstance(cmd, dict) else ""
            if not isinstance(text, str) or trusted_program(text):
                text = ""  # a trusted program's data is the proof's text: its markers are inert
            crash = _apply_faults(text)
            forgery = _forge(text, ReplDouble._next(double.envs), stdout)
            reply = double.answer(cmd)
            if forgery.shift and isinstance(reply.get("env"), int):
                reply["env"] += forgery.shift
        data = (render(reply) + "\n\n").encode("utf-8")
        if crash:
            stdout.write(data[: len(data) // 2])
            stdout.flush()
            os._exit(1)
        stdout.write(data + forgery.trailer)  # one write: the trailer lands with the reply
        stdout.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=__doc__.split("\n")[0])
    parser.add_argument("--transcripts", type=Path, default=None, help="recordings to replay")
    parser.add_argument("--no-transcripts", action="store_true", help="answer synthetically only")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds per proof command")
    parser.add_argument("--header-delay", type=float, default=0.0, help="seconds per header")
    parser.add_argument("--crash-after", type=int, default=None, help="die on command N+1")
    parser.add_argument("--lexer", type=Path, default=None, help="the service's soundness/ dir")
    args = parser.parse_args(argv)
    if args.lexer is not None:
        global LEXER_DIR
        LEXER_DIR = args.lexer
    directory = None if args.no_transcripts else (args.transcripts or default_transcripts())
    if directory is not None and not directory.is_dir():
        parser.error(f"--transcripts: no such directory: {directory}")
    transcripts = load_transcripts(directory) if directory is not None else []
    double = ReplDouble(transcripts, delay=args.delay, header_delay=args.header_delay)
    stdin = open(sys.stdin.fileno(), encoding="utf-8", closefd=False)  # noqa: SIM115
    return serve(double, stdin, sys.stdout.buffer, crash_after=args.crash_after)


if __name__ == "__main__":
    sys.exit(main())
