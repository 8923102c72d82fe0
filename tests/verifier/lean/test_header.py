"""Header normalisation: equivalent headers share one pool key and cache entries, and only
headers that are the same environment do."""

from __future__ import annotations

import json

from verifier_service.lean.header import (
    Header,
    normalise,
    normalise_header,
    parse_header,
    split_code,
)
from verifier_service.vendored import data_file

STANDARD = (
    "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\n"
    "open BigOperators Real Nat Topology Rat\n"
)


def test_canonical_form():
    header = parse_header(STANDARD)
    assert header.imports == ("import Mathlib", "import Aesop")
    assert header.preamble == (
        "set_option maxHeartbeats 400000",
        "open BigOperators Real Nat Topology Rat",
    )
    assert header.text == "\n".join(header.imports + header.preamble)


def test_comments_blank_lines_layout_and_repeated_imports_do_not_matter():
    variant = (
        "-- the usual header\nimport Mathlib   -- everything\n/- a block\n comment -/\n"
        "import Aesop\nimport Mathlib\n\n\nset_option   maxHeartbeats\n  400000\n"
        "open BigOperators Real\n  Nat Topology Rat  -- trailing\n"
    )
    assert normalise_header(variant) == normalise_header(STANDARD)


def test_import_order_is_kept():
    # The order of imports decides the order of the environment (which of two instances of
    # equal priority is tried first), so two orders are two environments.
    a = normalise_header("import Mathlib\nimport Aesop")
    b = normalise_header("import Aesop\nimport Mathlib")
    assert a != b
    assert a == "import Mathlib\nimport Aesop"


def test_an_import_after_another_command_stays_where_lean_rejects_it():
    header = parse_header("import Mathlib\nopen Real\nimport Aesop")
    assert header.imports == ("import Mathlib",)
    assert header.preamble == ("open Real", "import Aesop")


def test_string_literals_are_kept_byte_for_byte():
    # blank lines and trailing spaces inside a string are part of the environment
    a = normalise_header('import Mathlib\ndef hs : String := "a\n\nb"')
    b = normalise_header('import Mathlib\ndef hs : String := "a\nb"')
    c = normalise_header('import Mathlib\ndef hs : String := "a  \nb"')
    assert len({a, b, c}) == 3
    assert a.endswith('def hs : String := "a\n\nb"')
    assert c.endswith('def hs : String := "a  \nb"')
    # a comment-like text inside a string is not a comment
    d = normalise_header('def s := "-- not a comment"\ndef t := 1 -- a comment')
    assert d == 'def s := "-- not a comment"\ndef t := 1'


def test_opens_and_options_keep_their_order():
    a = normalise_header("import Mathlib\nopen Real\nset_option pp.all true")
    b = normalise_header("import Mathlib\nset_option pp.all true\nopen Real")
    assert a != b
    assert a.splitlines()[1:] == ["open Real", "set_option pp.all true"]


def test_other_commands_stay_verbatim_without_comments():
    header = parse_header("import Mathlib\ndef f (n : ℕ) : ℕ := -- doubles\n  2 * n\n\nopen Real")
    assert header.preamble == ("def f (n : ℕ) : ℕ :=\n  2 * n", "open Real")


def test_forbidden_commands_in_the_header_are_kept_for_the_rules():
    header = parse_header("import Mathlib\nset_option debug.skipKernelTC true\n#exit")
    assert "set_option debug.skipKernelTC true" in header.preamble
    assert "#exit" in header.preamble


def test_no_header_is_the_plain_prelude():
    assert parse_header(None) == Header()
    assert normalise_header("") == ""
    assert normalise_header("-- only a comment\n\n") == ""


def test_indented_open_after_import():
    # the training parquet's ``src_context`` indents its ``open`` line
    header = parse_header("import MiniF2F.Minif2fImport\n  open BigOperators Real Nat Topology\n")
    assert header.imports == ("import MiniF2F.Minif2fImport",)
    assert header.preamble == ("open BigOperators Real Nat Topology",)


def test_split_code_moves_leading_imports_and_keeps_positions():
    code = "import Mathlib\n-- note\nimport Aesop\n\ntheorem foo : 1 = 1 := rfl\n"
    imports, rest = split_code(code)
    assert imports == ["import Mathlib", "import Aesop"]
    assert rest.splitlines()[4] == "theorem foo : 1 = 1 := rfl"  # still line 5
    assert "import" not in rest


def test_split_code_with_code_on_the_import_line_keeps_the_column():
    imports, rest = split_code("import Mathlib theorem foo : 1 = 1 := rfl")
    assert imports == ["import Mathlib"]
    assert rest.index("theorem") == len("import Mathlib ")


def test_split_code_without_imports_is_untouched():
    code = "-- import Mathlib\ntheorem foo : True := trivial"
    assert split_code(code) == ([], code)


def test_normalise_merges_code_imports_into_the_header():
    header, body = normalise(
        "import Aesop", "import Mathlib\nimport Aesop\ntheorem x : True := trivial"
    )
    assert header == "import Aesop\nimport Mathlib"
    assert body.strip() == "theorem x : True := trivial"
    assert normalise(None, "import Aesop\nimport Mathlib\n")[0] == header


def test_imports_later_in_the_code_are_not_moved():
    header, body = normalise(None, "theorem x : True := trivial\nimport Mathlib")
    assert header == ""
    assert "import Mathlib" in body  # Lean will reject it, as it should


def test_import_modifiers_are_kept():
    header = parse_header("public import Mathlib\nimport all Foo\nprelude")
    assert header.imports == ("public import Mathlib", "import all Foo", "prelude")


def _dataset_headers() -> list[str]:
    lines = data_file("minif2f.jsonl").read_text("utf-8").splitlines()[:50]
    return [json.loads(line)["header"] for line in lines]


def test_dataset_headers_normalise_to_few_keys():
    headers = _dataset_headers()
    assert len(headers) == 50
    keys = {normalise_header(h) for h in headers}
    assert len(keys) == 1
    (key,) = keys
    assert key.startswith("import Mathlib\nimport Aesop\n")
