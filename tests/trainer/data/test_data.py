from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainer_client.data import (
    DEFAULT_HEADER,
    PROMPT_PREFIX,
    Problem,
    build_prompt,
    extract_lean_block,
    header_from_src_context,
    load_problems,
    proof_request,
    save_problems,
)
from verifier_service.vendored import data_file


def vendored(name: str) -> Path:
    """A data set vendored in ``data/``; a missing one is a broken checkout, so the test fails."""
    path = data_file(name)
    assert path.is_file(), f"the vendored data set {path} is missing"
    return path


def raw_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# --- loading ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["minif2f.jsonl", "proofnet.jsonl"])
def test_deepseek_jsonl_keeps_the_files_fields(name):
    path = vendored(name)
    rows = raw_rows(path)
    problems = load_problems(path)
    assert len(problems) == len(rows)
    for row, problem in zip(rows, problems, strict=True):
        assert problem.name == row["name"]
        assert problem.statement == row["formal_statement"]
        assert problem.header == row["header"]
        assert problem.informal == row["informal_prefix"]
        assert problem.split == row["split"]
        assert problem.checker == "lean4"


def test_split_and_limit_filter_in_file_order():
    path = vendored("minif2f.jsonl")
    valid_names = [r["name"] for r in raw_rows(path) if r["split"] == "valid"]
    problems = load_problems(path, split="valid")
    assert [p.name for p in problems] == valid_names
    assert [p.name for p in load_problems(path, split="valid", limit=5)] == valid_names[:5]
    assert load_problems(path, split="no-such-split") == []


@pytest.mark.parametrize("name", ["mff-lwb-unseen-200.parquet", "mff-lwb-10k-seen.parquet"])
def test_parquet_splits(name):
    import pandas as pd

    path = vendored(name)
    frame = pd.read_parquet(path, columns=["theorem_full_name", "theorem_statement", "split"])
    problems = load_problems(path)
    assert [p.name for p in problems] == frame["theorem_full_name"].tolist()
    assert [p.statement for p in problems] == frame["theorem_statement"].tolist()
    assert {p.split for p in problems} == set(frame["split"])
    # The project import is replaced by the standard header; its opens are covered by it.
    assert {p.header for p in problems} == {DEFAULT_HEADER}
    assert all(p.informal.startswith("/--") for p in problems)
    valid = load_problems(path, split="valid")
    assert len(valid) == int((frame["split"] == "valid").sum())


def test_sieve_jsonl_roundtrip(tmp_path):
    problems = [
        Problem(name="t1", statement="theorem t1 : 1 + 1 = 2 := by", informal="One plus one."),
        Problem(name="m1", statement="24=", checker="math", header="", answer="24", split="test"),
    ]
    path = save_problems(problems, tmp_path / "sub" / "problems.jsonl")
    assert load_problems(path) == problems
    assert load_problems(path, split="test") == problems[1:]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"problems.jsonl:2: not valid JSON"),
        ('{"name": "x"}', r"problems.jsonl:2: missing or non-string field 'statement'"),
        ('{"name": "x", "statement": "s", "colour": 1}', r"unknown field\(s\) \['colour'\]"),
        ('{"name": "x", "statement": "s", "checker": "coq"}', r"checker: expected one of"),
        ('{"name": "x", "statement": "s", "checker": "math"}', r"answer: required"),
        ("[1, 2]", r"expected a JSON object"),
    ],
)
def test_bad_rows_name_the_line_and_field(tmp_path, line, message):
    path = tmp_path / "problems.jsonl"
    good = json.dumps({"name": "ok", "statement": "theorem ok : True := by"})
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(ValueError, match=message):
        load_problems(path)


def test_unsupported_suffix(tmp_path):
    with pytest.raises(ValueError, match=r"unsupported file type '\.csv'"):
        load_problems(tmp_path / "x.csv")


# --- headers ----------------------------------------------------------------------------------


def test_src_context_of_the_paper_becomes_the_default_header():
    src = "import MiniF2F.Minif2fImport\n  open BigOperators Real Nat Topology\n"
    assert header_from_src_context(src) == DEFAULT_HEADER


def test_src_context_keeps_what_the_default_header_lacks():
    src = (
        "import Foo.Bar\nopen Real Finset\nopen scoped Matrix\n"
        "set_option maxHeartbeats 0\nset_option pp.all true\nopen Nat in\n"
    )
    header = header_from_src_context(src)
    assert header.startswith(DEFAULT_HEADER)
    extra = header[len(DEFAULT_HEADER) :].splitlines()
    assert extra == ["open Finset", "open scoped Matrix", "set_option pp.all true", "open Nat in"]
    assert "Foo.Bar" not in header


# --- prompts and proofs -----------------------------------------------------------------------

STATEMENT = "theorem two : (1 : ℕ) + 1 = 2 := by\n"
PROBLEM = Problem(name="two", statement=STATEMENT, informal="/-- One plus one is two. -/\n")


def test_prompt_is_the_papers():
    prompt = build_prompt(PROBLEM)
    assert prompt.startswith(PROMPT_PREFIX)
    header = DEFAULT_HEADER.rstrip("\n")
    assert prompt == PROMPT_PREFIX + header + "\n\n/-- One plus one is two. -/\n" + STATEMENT


def test_prompt_wraps_plain_informal_text_as_a_doc_comment():
    problem = Problem(name="two", statement=STATEMENT, informal="One plus one is two.")
    assert "/-- One plus one is two. -/\n" + STATEMENT in build_prompt(problem)
    bare = Problem(name="two", statement=STATEMENT)
    assert build_prompt(bare).endswith(DEFAULT_HEADER.rstrip("\n") + "\n\n" + STATEMENT)


def test_prompt_of_a_math_problem_is_the_question():
    problem = Problem(name="q", statement="24=", checker="math", answer="24")
    assert build_prompt(problem) == "24="


def test_the_last_complete_block_wins():
    text = "```lean4\nfirst\n```\nthen\n```lean\nsecond\n```\n```lean4\nunclosed"
    assert extract_lean_block(text) == "second"


def test_an_unclosed_block_counts_up_to_the_end():
    text = "intro\n```lean4\ntheorem x := by\n  simp"
    assert extract_lean_block(text) == "theorem x := by\n  simp"


def test_no_block():
    assert extract_lean_block("no code here") is None
    assert extract_lean_block("```python\nprint(1)\n```") is None


def test_lean_proof_request():
    prompt = build_prompt(PROBLEM)
    completion = "  -- simplify\n  norm_num\n```\nDone."
    request = proof_request(PROBLEM, prompt, completion, id="s1", timeout_s=30)
    assert request == {
        "id": "s1",
        "checker": "lean4",
        "code": "/-- One plus one is two. -/\n" + STATEMENT + "  -- simplify\n  norm_num",
        "header": DEFAULT_HEADER,
        "statement": STATEMENT,
        "timeout_s": 30,
    }


def test_lean_proof_request_drops_a_rewritten_header():
    prompt = build_prompt(PROBLEM)
    rewritten = "```lean4\nimport Mathlib\nimport Aesop\n\n" + STATEMENT + "  rfl\n```"
    completion = "  sorry\n```\nBetter:\n" + rewritten
    request = proof_request(PROBLEM, prompt, completion, id="s2")
    assert request["code"] == STATEMENT + "  rfl"
    assert "timeout_s" not in request


def test_lean_proof_request_without_any_block_sends_the_completion():
    request = proof_request(PROBLEM, "plain prompt", "  rfl", id="s3")
    assert request["code"] == "  rfl"
    assert request["statement"] == STATEMENT


def test_math_proof_request():
    problem = Problem(name="q", statement="24=", checker="math", header="", answer="24")
    request = proof_request(problem, "24=", "\n 3*8 \nrest", id="m")
    assert request == {"id": "m", "checker": "math", "code": "3*8", "answer": "24"}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"checker": "coq"}, "checker"),
        ({"statement": "  "}, "statement"),
        ({"checker": "math"}, "answer"),
    ],
)
def test_problem_validation_names_the_field(kwargs, field):
    base = {"name": "x", "statement": "theorem x : True := by"}
    with pytest.raises(ValueError, match=field):
        Problem(**{**base, **kwargs})
