"""The trusted Lean programs' Python side: the data literal, the commands, reading the answers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from verifier_service.lean import trusted
from verifier_service.lean.repl import ProtocolViolation, UnencodableCommand, encode_command
from verifier_service.lean.trusted import (
    PLACEHOLDER,
    ProgramUnavailable,
    build_command,
    lean_string_literal,
    program_source,
    read_answer,
    read_parse,
)
from verifier_service.testing.repl_double import _DATA_LITERAL, decode_lean_string

PROGRAMS = Path(trusted.__file__).parent / "programs"

#: Characters that matter to a Lean string literal, a comment, or interpolation, plus any text.
_TRICKY = st.sampled_from(['"', "\\", "{", "}", "\n", "\r", "\t", "\x00", "\x7f", "-/", "/-", "'"])
_TEXT = st.lists(
    st.one_of(_TRICKY, st.text(st.characters(blacklist_categories=("Cs",)), max_size=5)),
    max_size=30,
).map("".join)


@given(_TEXT)
@example('s!"{x}" -/ \\" \\\\ \\x41 \\u0041 \\\n  gap')
@example("\ud7ff\ue000\U0010ffff𝓝")
def test_a_literal_decodes_to_its_text_by_leans_grammar(text):
    literal = lean_string_literal(text)
    assert decode_lean_string(literal) == text  # raises if the literal ended early
    assert "\n" not in literal and "\r" not in literal  # one line: no gap, no raw newline
    assert not literal.startswith(("s!", "m!", "f!"))  # plain: braces are text, never code


@given(_TEXT)
def test_a_program_with_any_code_is_sendable_and_holds_it_as_data(code):
    command = build_command("parse", {"nonce": "n", "code": code, "statement": ""})
    encode_command({"cmd": command, "env": 0})  # UTF-8, JSON: sendable as it is
    source = program_source("parse")
    before, after = source.split(PLACEHOLDER)
    # the program's own text is untouched around the one literal, which holds the data
    assert command.startswith(before) and command.endswith(after)
    literal = command[len(before) : len(command) - len(after)]
    assert json.loads(decode_lean_string(literal)) == {"nonce": "n", "code": code, "statement": ""}
    # the double finds the same literal the way a reader of the program would
    match = _DATA_LITERAL.search(command)
    assert match is not None and match.group("literal") == literal


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb", "theorem x : True := \udc80trivial"])
def test_a_lone_surrogate_is_refused_before_anything_is_sent(text):
    with pytest.raises(UnencodableCommand):
        lean_string_literal(text)
    with pytest.raises(UnencodableCommand):
        build_command("parse", {"nonce": "n", "code": text, "statement": ""})


@pytest.mark.parametrize("name", ["parse", "statement", "target"])
def test_each_program_has_one_placeholder_and_says_which_lean_it_supports(name):
    text = (PROGRAMS / f"{name}.lean").read_text("utf-8")
    assert text.count(PLACEHOLDER) == 1
    assert "v4.9.0" in text and "v4.19.0" in text
    assert "NOT compiled" in text  # says plainly how far it was checked
    assert re.search(rf"^namespace SieveTrusted{name.capitalize()}$", text, re.MULTILINE)


def test_the_statement_and_target_programs_serialise_terms_identically():
    def block(name: str) -> str:
        text = (PROGRAMS / f"{name}.lean").read_text("utf-8")
        return text[text.index("-- BEGIN SIEVE-EXPR") : text.index("-- END SIEVE-EXPR")]

    assert block("statement") == block("target")
    assert "serExpr" in block("target")


def test_an_unknown_program_is_refused():
    with pytest.raises(ValueError, match="no trusted program"):
        program_source("eval")


# --- answers ------------------------------------------------------------------------------------


def _reply(*data: str, severity: str = "info") -> dict:
    return {"env": 3, "messages": [{"severity": severity, "data": d} for d in data]}


def test_an_answer_with_the_requests_nonce_is_read():
    raw = _reply("other info", 'SIEVE-TARGET {"nonce": "abc", "kind": "theorem", "type": "t"}')
    assert read_answer(raw, "SIEVE-TARGET", "abc") == {
        "nonce": "abc",
        "kind": "theorem",
        "type": "t",
    }


@pytest.mark.parametrize(
    "raw",
    [
        _reply('SIEVE-TARGET {"nonce": "forged", "kind": "theorem", "type": "t"}'),
        _reply('SIEVE-TARGET {"kind": "theorem", "type": "t"}'),
        _reply('SIEVE-TARGET {"nonce": "abc"}', 'SIEVE-TARGET {"nonce": "abc"}'),
        _reply("SIEVE-TARGET not json"),
        _reply('SIEVE-TARGET {"nonce": "abc"}', severity="error"),
    ],
    ids=["other-nonce", "no-nonce", "two-answers", "not-json", "not-info"],
)
def test_an_answer_that_is_not_ours_is_a_protocol_violation(raw):
    with pytest.raises(ProtocolViolation):
        read_answer(raw, "SIEVE-TARGET", "abc")


@pytest.mark.parametrize(
    "raw",
    [
        {"message": "Unknown environment."},
        _reply("unknown namespace 'Lean'", severity="error"),
        {"env": 4},
    ],
)
def test_no_answer_at_all_means_the_program_is_unavailable(raw):
    with pytest.raises(ProgramUnavailable):
        read_answer(raw, "SIEVE-TARGET", "abc")


def test_byte_offsets_become_code_point_offsets():
    text = "theorem α : ℕ := 1"
    at = [len(text[:i].encode()) for i in range(len(text) + 1)]
    data = {
        "commands": [
            {
                "kind": "Lean.Parser.Command.declaration",
                "start": 0,
                "stop": at[len(text)],
                "head": 0,
                "parts": [{"kind": "Lean.Parser.Command.declaration", "head": 0}],
                "decl": None,
                "leaves": [at[8], at[9], at[12], at[13]],
            }
        ],
        "errors": [],
    }
    (command,) = read_parse(data, text).commands
    assert command.leaves == ((8, 9), (12, 13))
    assert text[8:9] == "α" and text[12:13] == "ℕ"
    assert command.stop == len(text)


def test_an_offset_inside_a_character_is_a_protocol_violation():
    data = {"commands": [{"kind": "k", "start": 1, "stop": 2, "head": 1, "leaves": []}]}
    with pytest.raises(ProtocolViolation):
        read_parse(data, "ℕ x")


def test_the_text_lean_read_is_told_by_its_size():
    from verifier_service.lean.trusted import read_text

    text = "a\r\nb"
    assert read_text({"size": 4}, text) == text
    assert read_text({"size": 3}, text) == "a\nb"
    assert read_text({}, text) == text
    with pytest.raises(ProtocolViolation):
        read_text({"size": 2}, text)
