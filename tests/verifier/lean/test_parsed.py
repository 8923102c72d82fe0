"""The rules on Lean's parse, and the pre-filter checked against it (pure: no process).

Lean's parse here is the REPL double's (computed from the lexer, so the two agree unless a test
makes them differ), read through the same :func:`~verifier_service.lean.trusted.read_parse` as a
real answer.
"""

from __future__ import annotations

import dataclasses

import pytest

from verifier_service.lean.trusted import LeanParse, ParsedCommand, ParsedPart, read_parse
from verifier_service.soundness import find_targets
from verifier_service.soundness.parsed import (
    lean_target,
    lean_violations,
    parse_mismatch,
    statement_declaration,
    statement_for_elaboration,
)
from verifier_service.testing.repl_double import _double_parse

STATEMENT = "theorem foo (a b : ℕ) : a + b = b + a := by\n"


def lean(code: str, statement: str | None = None) -> LeanParse:
    declaration = statement_declaration(statement) if statement is not None else None
    return LeanParse(
        read_parse(_double_parse(code), code),
        read_parse(_double_parse(declaration), declaration) if declaration else None,
    )


def mismatch(code: str, statement: str | None = None, parse: LeanParse | None = None):
    parse = parse or lean(code, statement)
    return parse_mismatch(code, parse, find_targets(code, statement=statement))


# --- the statement as a declaration -------------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "declaration"),
    [
        ("theorem foo : 1 = 1 := by\n", "theorem foo : 1 = 1 := sorry"),
        ("theorem foo : 1 = 1 := by sorry", "theorem foo : 1 = 1 := sorry"),
        ("theorem foo : 1 = 1 :=", "theorem foo : 1 = 1 := sorry"),
        ("theorem foo : 1 = 1", "theorem foo : 1 = 1 := sorry"),
        ("theorem foo : 1 = 1 := -- c\n  by", "theorem foo : 1 = 1 := sorry"),
    ],
)
def test_a_statement_becomes_one_declaration_with_value_sorry(statement, declaration):
    assert statement_declaration(statement) == declaration


def test_an_example_statement_is_elaborated_as_a_named_theorem():
    assert statement_for_elaboration("example : 1 = 1 := sorry") == (
        "theorem sieve_checked_example : 1 = 1 := sorry"
    )
    assert statement_for_elaboration("theorem example_ok : True := sorry").startswith("theorem ex")


# --- agreement ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        STATEMENT + "  omega",
        "lemma helper : True := trivial\n\n" + STATEMENT + "  simp [helper]\n  omega",
        STATEMENT + "  set_option maxRecDepth 1000 in\n  omega",
        "open Real in\n" + STATEMENT + "  omega",
        "/-- doc -/\n" + STATEMENT + "  -- a comment\n  omega\n#print axioms foo",
        "example : True := trivial\n" + STATEMENT + "  omega",
    ],
)
def test_the_lexer_and_lean_agree_on_ordinary_proofs(code):
    assert mismatch(code, STATEMENT) is None
    assert lean_violations(code, lean(code, STATEMENT)) == []


def test_without_a_statement_lean_and_the_lexer_agree_on_namespaced_targets():
    code = "namespace X\n" + STATEMENT + "  omega\nend X"
    assert mismatch(code) is None
    assert lean_violations(code, lean(code)) == []


def test_lean_finds_the_statements_declaration_as_the_target():
    code = "theorem helper : True := trivial\n" + STATEMENT + "  omega"
    target = lean_target(lean(code, STATEMENT))
    assert target is not None and target.decl is not None and target.decl.name == "foo"
    assert lean_target(lean(code)).decl.name == "foo"  # type: ignore[union-attr]


# --- disagreements ------------------------------------------------------------------------------


def _with(parse: LeanParse, **changes) -> LeanParse:
    return dataclasses.replace(parse, code=dataclasses.replace(parse.code, **changes))


def test_lean_reading_code_where_the_lexer_sees_a_comment_is_a_mismatch():
    code = STATEMENT + "  omega\n/- #exit -/"
    parse = lean(code, STATEMENT)
    hidden = code.index("#exit")
    extra = ParsedCommand(
        "Lean.Parser.Command.exit",
        hidden,
        hidden + 5,
        hidden,
        (ParsedPart("Lean.Parser.Command.exit", hidden),),
        None,
        ((hidden, hidden + 5),),
    )
    why = mismatch(code, STATEMENT, _with(parse, commands=(*parse.code.commands, extra)))
    assert why is not None and "Lean does not read as code" not in why
    assert "lexer" in why


def test_lean_missing_a_token_the_lexer_reads_is_a_mismatch():
    code = STATEMENT + "  omega"
    parse = lean(code, STATEMENT)
    (command,) = parse.code.commands
    fewer = dataclasses.replace(command, leaves=command.leaves[:-1])
    why = mismatch(code, STATEMENT, _with(parse, commands=(fewer,)))
    assert why is not None and "'omega'" in why


def test_one_lean_token_over_two_of_the_lexers_with_a_gap_is_a_mismatch():
    code = "theorem t : 'a' = 'a' := rfl"
    parse = lean(code)
    (command,) = parse.code.commands
    merged = ((0, 7), (8, 9), (10, 14), *command.leaves[3:])  # ``t :`` as one token
    why = mismatch(
        code, parse=_with(parse, commands=(dataclasses.replace(command, leaves=merged),))
    )
    assert why is not None


def test_a_command_of_another_kind_is_a_mismatch():
    code = STATEMENT + "  omega"
    why = mismatch(code + "  -- double:parse-kind Lean.Parser.Command.eval", STATEMENT)
    assert why is not None and "'#eval' to Lean and 'theorem' to the lexer" in why


def test_a_target_of_another_name_is_a_mismatch():
    code = STATEMENT + "  omega -- double:parse-name bar"
    why = mismatch(code)
    assert why is not None and "target" in why


def test_a_theorem_the_lexer_did_not_find_is_a_mismatch():
    code = "def x : ℕ := 1\n" + STATEMENT + "  omega"
    parse = lean(code, STATEMENT)
    first = parse.code.commands[0]
    assert first.decl is not None
    as_theorem = dataclasses.replace(
        first,
        decl=dataclasses.replace(first.decl, kind="Lean.Parser.Command.theorem", keyword="theorem"),
    )
    why = mismatch(code, STATEMENT, _with(parse, commands=(as_theorem, *parse.code.commands[1:])))
    assert why is not None and "theorem" in why


# --- rules on Lean's parse ------------------------------------------------------------------------


def test_the_allowlist_goes_by_lean_syntax_kind():
    code = STATEMENT + "  omega"
    parse = lean(code)
    (command,) = parse.code.commands
    for kind, reason in [
        ("Lean.Parser.Command.exit", "forbidden_command:#exit"),
        ("Lean.Parser.Command.macro_rules", "forbidden_command:macro_rules"),
        ("Mathlib.Tactic.someNewCommand", "forbidden_command:Mathlib.Tactic.someNewCommand"),
    ]:
        changed = dataclasses.replace(command, kind=kind, parts=(ParsedPart(kind, 0),), decl=None)
        (violation,) = lean_violations(code, _with(parse, commands=(changed,)))
        assert violation.reason == reason


def test_every_command_of_an_in_chain_is_judged():
    code = "open Real in\n" + STATEMENT + "  omega"
    parse = lean(code)
    (command,) = parse.code.commands
    assert [p.kind for p in command.parts] == [
        "Lean.Parser.Command.open",
        "Lean.Parser.Command.declaration",
    ]
    eval_first = (ParsedPart("Lean.Parser.Command.eval", 0), command.parts[1])
    changed = dataclasses.replace(command, parts=eval_first)
    (violation,) = lean_violations(code, _with(parse, commands=(changed,)))
    assert violation.reason == "forbidden_command:#eval"


def test_the_statement_is_compared_as_lean_syntax():
    changed = "theorem foo (a b : ℕ) : a + b = a + b := by\n  rfl"
    (violation,) = lean_violations(changed, lean(changed, STATEMENT))
    assert violation.reason == "statement_changed"
    extended = "theorem foo (a b : ℕ) : a + b = b + a ∨ True := by\n  omega"
    (violation,) = lean_violations(extended, lean(extended, STATEMENT))
    assert violation.reason == "statement_changed"
    spaced = "theorem  foo (a b : ℕ) :\n    a + b = b + a := by -- same\n  omega"
    assert lean_violations(spaced, lean(spaced, STATEMENT)) == []


def test_only_helpers_prints_open_and_set_option_may_come_before_the_target():
    code = "def helper : ℕ := 1\n" + STATEMENT + "  omega"
    (violation,) = lean_violations(code, lean(code, STATEMENT))
    assert violation.reason == "statement_changed" and "def" in violation.detail


def test_a_parse_error_is_a_lean_error():
    code = STATEMENT + "  omega -- double:parse-error"
    (violation,) = lean_violations(code, lean(code, STATEMENT))
    assert violation.reason == "lean_error"


def test_a_statement_lean_cannot_take_as_one_declaration_is_a_statement_error():
    code = STATEMENT + "  omega"
    two = "theorem a : True := trivial\ntheorem b : True := trivial"
    parse = LeanParse(lean(code).code, read_parse(_double_parse(two), two))
    (violation,) = lean_violations(code, parse)
    assert violation.reason == "statement_error"


def test_readme_gives_every_reason_of_lean_s_parse_and_the_kernel_terms():
    from tests.docs import doc_section

    section = doc_section("soundness", "## What `lean4` counts as verified")
    for reason in [
        "parse_mismatch",
        "statement_error",
        "target_not_theorem",
        "statement_mismatch",
        "parse_unavailable",
        "statement_unavailable",
        "target_unavailable",
        "parse_timeout",
        "statement_timeout",
        "target_timeout",
        "protocol_violation",
        "sieve_lean_parse_mismatch_total",
    ]:
        assert f"`{reason}`" in section, reason
    assert "fixpoint" in section


def test_an_example_renamed_where_lean_sees_no_example_is_a_mismatch():
    code = "example : True := trivial\n" + STATEMENT + "  omega"
    parse = lean(code, STATEMENT)
    first = parse.code.commands[0]
    assert first.decl is not None and first.decl.keyword == "example"
    as_theorem = dataclasses.replace(
        first, decl=dataclasses.replace(first.decl, keyword="theorem", name="t")
    )
    why = mismatch(code, STATEMENT, _with(parse, commands=(as_theorem, *parse.code.commands[1:])))
    assert why is not None and "example" in why


def test_each_declaration_of_a_mutual_block_is_judged_by_its_kind():
    code = (
        "mutual\n  theorem even_a : True := trivial\n  theorem even_b : True := trivial\nend\n"
        + STATEMENT
        + "  omega"
    )
    parse = lean(code)
    block = parse.code.commands[0]
    assert [p.kind for p in block.parts] == [
        "Lean.Parser.Command.mutual",
        "Lean.Parser.Command.declaration",
        "Lean.Parser.Command.declaration",
    ]
    assert mismatch(code) is None and lean_violations(code, parse) == []
    inner = block.parts[1]
    assert inner.decl is not None
    as_instance = dataclasses.replace(
        inner, decl=dataclasses.replace(inner.decl, kind="Lean.Parser.Command.instance")
    )
    changed = dataclasses.replace(block, parts=(block.parts[0], as_instance, block.parts[2]))
    (violation,) = lean_violations(code, _with(parse, commands=(changed, *parse.code.commands[1:])))
    assert violation.reason == "forbidden_command:instance"
