"""The lexer reads comments, doc comments, char literals, numbers and escaped identifiers as
Lean's parser does (``src/Lean/Parser/Basic.lean``), and refuses where it cannot be sure.

Each case names the Lean function it follows; what Lean itself did with texts of every class is
recorded in ``tests/verifier/oracle`` and replayed there.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier_service.soundness import static_violations
from verifier_service.soundness.source import (
    AMBIGUITY_CLASSES,
    TokenKind,
    ambiguities,
    comment_spans,
    tokenize,
)


def texts(source: str) -> list[str]:
    return [t.text for t in tokenize(source)]


def classes(source: str) -> list[str]:
    return [a.kind for a in ambiguities(source)]


# --- whitespace / finishCommentBlock ------------------------------------------------------------


def test_the_character_after_a_block_comment_opener_is_skipped_unread():
    # ``/-/- -/``: the second ``/-`` is no opener to Lean, so the comment ends at the first
    # ``-/`` and ``x`` is code.
    assert texts("/-/- -/ x -/ y") == ["x", "-", "/", "y"]
    assert texts("/-/ a -/ b") == ["b"]


def test_a_comment_opener_followed_by_a_slash_is_refused():
    assert classes("/-/- -/ #exit -- -/") == ["comment_opener"]
    assert classes("/- /-/ -/ -/ x") == []  # nested openers are read whole, as Lean does


def test_nesting_is_unchanged_elsewhere():
    assert texts("a /- b /- c -/ d -/ e") == ["a", "e"]
    assert texts("a /- b --/ c -/ e") == ["a", "c", "-", "/", "e"]  # ``--/`` closes


# --- docComment / commentBody ----------------------------------------------------------------


def test_a_doc_comment_body_starts_after_its_token():
    # ``/--`` is a token: ``/--/`` is not a closed comment, the body runs to the next ``-/``.
    assert texts("/--/\ntheorem hidden : False := x\n-/ theorem t : True := trivial")[:2] == [
        "theorem",
        "t",
    ]
    assert texts("/-!/ a -/ b") == ["b"]


def test_whitespace_after_a_doc_comment_token_is_skipped_first_and_refused():
    # The line comment after ``/--`` holds the ``-/`` a naive lexer would stop at.
    source = "/-- -- -/\ntheorem hidden : False := x\n-/\ntheorem t : True := trivial"
    assert texts(source)[:2] == ["theorem", "t"]
    assert classes(source) == ["doc_comment"]
    assert classes("/-! /- x -/ y -/ z") == ["doc_comment"]


def test_ordinary_doc_comments_pass():
    assert texts("/-- a /- b -/ c -/ d") == ["d"]
    assert texts("/-- doc -/\ntheorem t : True := trivial")[0] == "theorem"
    assert classes("/-- doc -/ /-! module doc -/ theorem t") == []


# --- tokenFn / charLitFnAux ---------------------------------------------------------------------


def test_a_char_literal_glued_to_a_symbol_is_refused():
    # core's ``]'`` token takes the quote: Lean then reads a string from ``"``
    assert classes("xs[0]'\"' x") == ["char_literal"]
    assert classes("#check'a'") == ["char_literal"]


def test_quotes_lean_reads_for_certain_pass():
    assert classes("f '' s") == []  # ``''`` is no char literal (tokenFn checks the next char)
    assert classes("xs[i]'h") == []  # ``]'h``: no literal here either way
    assert classes("x 'a' \"s\"'b' h'") == []
    assert [t.kind for t in tokenize("'a' '\\n' '\\x41' '\\u0041'")] == [TokenKind.CHAR] * 4


def test_char_literals_follow_lean_exactly():
    assert [t.kind for t in tokenize("'\n'")] == [TokenKind.CHAR]  # any character, newline too
    assert texts("'\\u{41}'")[0] == "'"  # Lean's ``\\u`` takes exactly four hex digits
    assert texts("'''") == ["'", "'", "'"]


# --- numberFnAux ----------------------------------------------------------------------------


def test_numbers_take_no_letters_or_quotes():
    assert texts("2'a'") == ["2", "'a'"]
    # ``2r"…"``: Lean reads ``2`` and a raw string, which ends at the first quote
    assert texts('2r"a\\"b" -- "') == ["2", 'r"a\\"', "b", '" -- "']
    assert texts("0x1F 1_000 2.5e-3 h.1.2") == ["0x1F", "1_000", "2.5e-3", "h", ".", "1.2"]


# --- identFnAux ---------------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["theorem", "lemma", "example", "instance", "in", "def"])
def test_an_escaped_identifier_spelling_a_keyword_is_refused(word):
    assert classes(f"have «{word}» x : True := trivial") == ["escaped_keyword"]


def test_other_escaped_identifiers_pass():
    assert classes("«my thm» «debug».«skipKernelTC» Foo.«bar»") == []


# --- the rule -----------------------------------------------------------------------------------

HEADER = "import Mathlib"
STATEMENT = "theorem foo (a b : ℕ) : a + b = b + a := by\n"

HOSTILE = {
    "comment_opener": "/-/- -/ #exit -- -/\n" + STATEMENT + "  omega\n",
    "doc_comment": "/-- -- -/\n" + STATEMENT + "  omega\n-/\ntheorem foo : True := trivial\n",
    "char_literal": "example : True := by\n  have := (#[()] : Array Unit)[0]'\"'\n  trivial\n"
    + STATEMENT
    + "  omega\n",
    "escaped_keyword": "example : True := let «theorem» foo (a b : ℕ) : a + b = b + a := "
    "by omega; trivial\n" + STATEMENT + "  omega\n",
}


def test_every_class_has_a_hostile_text():
    assert set(HOSTILE) == set(AMBIGUITY_CLASSES)


@pytest.mark.parametrize("kind", AMBIGUITY_CLASSES)
def test_every_class_is_refused_with_its_reason(kind):
    reasons = [v.reason for v in static_violations(HEADER, HOSTILE[kind], STATEMENT)]
    assert f"ambiguous_source:{kind}" in reasons


@pytest.mark.parametrize("kind", AMBIGUITY_CLASSES)
def test_in_the_header_too(kind):
    reasons = [v.reason for v in static_violations(HOSTILE[kind], STATEMENT + "  omega", None)]
    assert f"ambiguous_source:{kind}" in reasons


def test_a_genuine_proof_is_not_ambiguous():
    assert static_violations(HEADER, STATEMENT + "  omega\n", STATEMENT) == []


# --- every text: tokens and comments tile the non-blank text ------------------------------------

FRAGMENTS = [
    "/-", "-/", "/--", "/-!", "/-/", "--", "--/", "\n", " ", '"', "'", "'\"'", "'a'", "''",
    "]'", "«", "»", "«theorem»", "#exit", "theorem foo : True := trivial", 'r"', "r#\"", "`x",
    "2", "0x", "1.5e", "\\", "x", "'\\n'",
]  # fmt: skip


@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join))
@settings(max_examples=300, deadline=None)
def test_tokens_and_comments_tile_every_text(source):
    pieces = sorted(
        [(t.start, t.end) for t in tokenize(source)] + [tuple(c) for c in comment_spans(source)]
    )
    done = 0
    for start, end in pieces:
        assert start >= done, (source, pieces)
        assert source[done:start].strip(" \t\r\n") == "", (source, pieces)
        done = end
    assert source[done:].strip(" \t\r\n") == ""
    for found in ambiguities(source):
        assert found.kind in AMBIGUITY_CLASSES
