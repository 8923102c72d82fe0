"""Properties of header normalisation (hypothesis): it is idempotent, and it never changes what
Lean runs: every string literal, ``set_option`` and ``open`` survives exactly, and every token
other than a repeated import stays, in its order."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from verifier_service.lean.header import normalise, normalise_header, split_header_block
from verifier_service.soundness.source import (
    TokenKind,
    blank_comments,
    split_commands,
    tokenize,
)

NAMES = st.sampled_from(["Real", "Nat", "BigOperators", "Topology", "Finset", "Polynomial"])
MODULES = st.sampled_from(["Mathlib", "Aesop", "Mathlib.Tactic", "Batteries", "Qq"])
# string contents: spaces, blank lines, trailing spaces, comment markers, unicode
TEXT = st.lists(st.sampled_from([*"ab -/\n\t·ℝ", "  \n", "\n\n", "--", "/-", "-/"])).map("".join)
SPACE = st.sampled_from([" ", "  ", "\t", "\n  ", " -- note\n  "])
GAP = st.sampled_from(["\n", "\n\n", "  \n", "\n-- a comment\n", "\n/- block\n -/\n", "\n\n\n"])


def _string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


BLOCK_KINDS = ["open", "scoped", "option", "string_option"]


@st.composite
def commands(draw, kinds: list[str] = [*BLOCK_KINDS, "def", "def2"]) -> str:  # noqa: B006
    kind = draw(st.sampled_from(kinds))
    sp = draw(SPACE)
    if kind == "open":
        names = draw(st.lists(NAMES, min_size=1, max_size=3))
        return "open" + sp + " ".join(names)
    if kind == "scoped":
        return "open scoped" + sp + draw(NAMES)
    if kind == "option":
        value = draw(st.sampled_from(["400000", "0", "true", "false"]))
        return f"set_option{sp}maxHeartbeats {value}"
    if kind == "string_option":
        return f"set_option{sp}pp.oneline.omission {_string(draw(TEXT))}"
    if kind == "def":
        return f"def hs{draw(st.integers(0, 9))} : String :={sp}{_string(draw(TEXT))}"
    return f"def c{draw(st.integers(0, 9))} : Char := 'x'  -- trailing\n  -- more"


@st.composite
def headers(draw, block_only: bool = False) -> str:
    imports = draw(st.lists(MODULES, max_size=4))
    parts = [f"import {m}" for m in imports]
    kinds = BLOCK_KINDS if block_only else [*BLOCK_KINDS, "def", "def2"]
    parts += draw(st.lists(commands(kinds), max_size=5))
    text = ""
    for part in parts:
        text += part + draw(GAP)
    return draw(st.sampled_from(["", "-- leading comment\n", "\n\n"])) + text


def _strings(text: str) -> list[str]:
    return [t.text for t in tokenize(text) if t.kind in (TokenKind.STRING, TokenKind.CHAR)]


def _non_import_tokens(text: str) -> list[str]:
    return [
        tok.text
        for command in split_commands(tokenize(text))
        if command.kind != "import"
        for tok in command.tokens
    ]


def _commands(text: str, kind: str) -> list[tuple[str, ...]]:
    return [c.words for c in split_commands(tokenize(text)) if c.kind == kind]


@settings(max_examples=150, deadline=None)
@given(headers())
def test_normalising_is_idempotent(header):
    once = normalise_header(header)
    assert normalise_header(once) == once


@settings(max_examples=150, deadline=None)
@given(headers())
def test_every_string_literal_survives_exactly(header):
    assert _strings(normalise_header(header)) == _strings(header)


@settings(max_examples=150, deadline=None)
@given(headers())
def test_every_open_and_set_option_survives_exactly(header):
    canonical = normalise_header(header)
    for kind in ("open", "set_option"):
        assert _commands(canonical, kind) == _commands(header, kind)
    # and nothing else changes either: every token but repeated imports, in its order
    assert _non_import_tokens(canonical) == _non_import_tokens(header)


@settings(max_examples=150, deadline=None)
@given(headers(), headers())
def test_headers_share_a_key_only_if_lean_reads_the_same_tokens(a, b):
    if normalise_header(a) == normalise_header(b):
        assert _strings(a) == _strings(b)
        assert _non_import_tokens(a) == _non_import_tokens(b)


@settings(max_examples=200, deadline=None)
@given(headers(block_only=True))
def test_a_header_block_moves_from_code_to_header_unchanged(header):
    code = header + "\n\ntheorem t : True := trivial\n"
    block, rest = split_header_block(code)
    assert normalise(None, code)[0] == normalise_header(block)
    assert blank_comments(rest).strip().startswith("theorem t")
    assert rest.count("\n") == code.count("\n")  # every line stays where it was
