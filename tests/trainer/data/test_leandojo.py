from __future__ import annotations

import json
import sys

import pytest

from trainer_client.data import load_problems
from trainer_client.leandojo import (
    load_leandojo_benchmark,
    problem_from_theorem,
    problems_from_repo,
    split_statement,
)

SOURCE = """import Mathlib.Data.Nat.Basic

namespace Nat

/-- Adding zero changes nothing. -/
theorem add_zero' (n : ℕ) : n + 0 = n := by
  simp

theorem le_def' {m n : ℕ} (h : m ≤ n := by omega) : m ≤ n :=
  h

def double : ℕ → ℕ
  | 0 => 0
  | n + 1 => double n + 2

end Nat
"""


def record(full_name: str, start: list[int], end: list[int], **extra) -> dict:
    return {
        "url": "https://github.com/example/repo",
        "commit": "0123abc",
        "file_path": "Example/Basic.lean",
        "full_name": full_name,
        "start": start,
        "end": end,
        "traced_tactics": [
            {
                "tactic": "simp",
                "annotated_tactic": ["simp", []],
                "state_before": "n : ℕ\n⊢ n + 0 = n",
                "state_after": "no goals",
            }
        ],
        **extra,
    }


@pytest.fixture
def checkout(tmp_path):
    (tmp_path / "Example").mkdir()
    (tmp_path / "Example" / "Basic.lean").write_text(SOURCE, encoding="utf-8")
    return tmp_path


def test_benchmark_with_statements_loads_through_load_problems(tmp_path):
    path = tmp_path / "train.json"
    records = [
        record(
            "Nat.add_zero'",
            [6, 1],
            [7, 7],
            theorem_statement="theorem add_zero' (n : ℕ) : n + 0 = n := by\n  simp",
        ),
        record("Foo.bar", [1, 1], [1, 30], theorem_statement="lemma Foo.bar : True := trivial"),
    ]
    path.write_text(json.dumps(records), encoding="utf-8")
    problems = load_problems(path)
    assert [p.name for p in problems] == ["Nat.add_zero'", "Foo.bar"]
    first, second = problems
    assert first.statement == "theorem Nat_add_zero__sieve (n : ℕ) : n + 0 = n := by\n"
    assert first.header == "import Example.Basic\nopen Nat\n"
    assert first.split == "train"
    assert second.statement == "lemma Foo_bar_sieve : True := by\n"
    assert load_problems(path, split="test") == []
    assert load_problems(path, limit=1) == problems[:1]


def test_benchmark_reads_statements_from_a_checkout(tmp_path, checkout):
    path = tmp_path / "val.json"
    records = [
        record("Nat.add_zero'", [5, 1], [7, 7]),
        record("Nat.le_def'", [9, 1], [10, 4]),
        record("Nat.double", [12, 1], [14, 28]),  # equation-style: no statement to cut, skipped
    ]
    path.write_text(json.dumps(records), encoding="utf-8")
    problems = load_leandojo_benchmark(path, repo_dir=checkout, header="import Mathlib\n")
    assert [p.name for p in problems] == ["Nat.add_zero'", "Nat.le_def'"]
    assert problems[0].informal == "/-- Adding zero changes nothing. -/\n"
    assert problems[0].statement.startswith("theorem Nat_add_zero__sieve (n : ℕ)")
    # A default argument's ":=" is not the one that starts the proof.
    assert problems[1].statement == (
        "theorem Nat_le_def__sieve {m n : ℕ} (h : m ≤ n := by omega) : m ≤ n := by\n"
    )
    assert {p.header for p in problems} == {"import Mathlib\nopen Nat\n"}
    assert {p.split for p in problems} == {"val"}


def test_original_names_can_be_kept(tmp_path):
    path = tmp_path / "bench.json"
    statement = "theorem t : True := trivial"
    path.write_text(json.dumps([record("t", [1, 1], [1, 9], theorem_statement=statement)]))
    (problem,) = load_leandojo_benchmark(path, fresh_names=False, split="x")
    assert problem.statement == "theorem t : True := by\n"
    assert problem.header == "import Example.Basic\n"
    assert problem.split == "x"


def test_missing_statement_without_checkout_names_the_field(tmp_path):
    path = tmp_path / "test.json"
    path.write_text(json.dumps([record("Nat.add_zero'", [5, 1], [7, 7])]))
    with pytest.raises(ValueError, match=r"test.json\[0\]\.theorem_statement: missing.*repo_dir"):
        load_leandojo_benchmark(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not valid JSON"),
        ('{"a": 1}', "expected a JSON list"),
        ("[1]", r"\[0\]: expected a JSON object"),
        ('[{"file_path": "A.lean"}]', r"\[0\]\.full_name: missing"),
    ],
)
def test_malformed_files(tmp_path, content, message):
    path = tmp_path / "bench.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_leandojo_benchmark(path)


def test_bad_positions_and_paths_name_the_field(tmp_path, checkout):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps([record("Nat.x", [5], [7, 7])]))
    with pytest.raises(ValueError, match=r"\[0\]\.start: expected \[line, column\]"):
        load_leandojo_benchmark(path, repo_dir=checkout)
    path.write_text(json.dumps([{**record("Nat.x", [5, 1], [7, 7]), "file_path": "No.lean"}]))
    with pytest.raises(ValueError, match=r"\[0\]\.file_path: .*not found"):
        load_leandojo_benchmark(path, repo_dir=checkout)


def test_split_statement():
    assert split_statement("theorem a : 1 = 1 := rfl") == "theorem a : 1 = 1 := by\n"
    assert split_statement("theorem a (x : ℕ := 2) : x = x :=\n  rfl") == (
        "theorem a (x : ℕ := 2) : x = x := by\n"
    )
    assert split_statement("theorem a : P\n  | x => y") is None


def test_private_namespaces_are_not_opened():
    problem = problem_from_theorem(
        "_private.Example.Basic.0.Nat.secret",
        "private theorem secret : True := trivial",
        file_path="Example/Basic.lean",
    )
    assert problem is not None
    assert "open" not in problem.header


def test_problems_from_repo_names_the_extra_when_lean_dojo_is_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "lean_dojo", None)  # makes `import lean_dojo` fail
    with pytest.raises(ImportError, match=r"sieve\[leandojo\]"):
        problems_from_repo("https://github.com/example/repo", "0123abc")
