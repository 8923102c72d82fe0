"""Tactic and premise extraction, Shannon and Simpson, on proofs counted by hand."""

import math

import pytest

from trainer_client.evaluation import (
    paper_premises,
    paper_tactics,
    premises,
    proof_diversity,
    response_diversity,
    shannon_entropy,
    simpson_index,
    tactics,
)

PROOF_A = """theorem t (a b : ℝ) (h₀ : 0 < a) : a ^ 2 + b ^ 2 ≥ 2 * a * b := by
  -- the square of a difference is non-negative
  have h : 0 ≤ (a - b) ^ 2 := by positivity
  nlinarith [sq_nonneg (a - b), h₀, mul_pos h₀ h₀]
"""

PROOF_B = """  /- a block
     comment -/
  · simp only [mul_comm, ← add_assoc, -pow_two]
  <;> rw [Nat.succ_le_iff] at h
  nlinarith [sq_nonneg (a + b)]
```
trailing prose after the fence is not proof
"""


def test_tactics_are_first_tokens_of_proof_lines():
    assert tactics(PROOF_A) == ["have", "nlinarith"]
    assert tactics(PROOF_B) == ["simp", "rw", "nlinarith"]


def test_premises_are_head_names_inside_tactic_brackets():
    assert premises(PROOF_A) == ["sq_nonneg", "h₀", "mul_pos"]
    # the ← arrow is dropped; `-pow_two` erases a lemma, so it is not a premise used
    assert premises(PROOF_B) == ["mul_comm", "add_assoc", "Nat.succ_le_iff", "sq_nonneg"]


def test_statement_brackets_are_not_premises():
    proof = "theorem t (l : List ℕ) (h : l = [1, 2]) : l.length = 2 := by\n  simp [h]\n"
    assert premises(proof) == ["h"]


def test_shannon_and_simpson_by_hand():
    # counts 2, 1, 1 -> p = 1/2, 1/4, 1/4
    assert shannon_entropy([2, 1, 1]) == pytest.approx(1.5)
    assert simpson_index([2, 1, 1]) == pytest.approx(1 - (0.25 + 0.0625 + 0.0625))
    assert shannon_entropy([5]) == 0.0
    assert simpson_index([5]) == 0.0
    assert shannon_entropy([]) == 0.0
    assert shannon_entropy([1] * 8) == pytest.approx(3.0)


def test_proof_diversity_pools_a_problems_proofs():
    d = proof_diversity([PROOF_A, PROOF_B])
    # tactics: have, nlinarith, simp, rw, nlinarith -> counts 1, 2, 1, 1 over 5
    probs = [1 / 5, 2 / 5, 1 / 5, 1 / 5]
    assert d.tactic_shannon == pytest.approx(-sum(p * math.log2(p) for p in probs))
    assert d.tactic_simpson == pytest.approx(1 - sum(p * p for p in probs))
    # premises: sq_nonneg ×2, h₀, mul_pos, mul_comm, add_assoc, Nat.succ_le_iff over 7
    premise_probs = [2 / 7] + [1 / 7] * 5
    assert d.premise_shannon == pytest.approx(-sum(p * math.log2(p) for p in premise_probs))
    assert d.distinct_tactics == 4
    assert d.distinct_premises == 6
    assert d.proofs == 2


def test_identical_proofs_have_no_diversity_in_counts_shape():
    same = proof_diversity([PROOF_A] * 5)
    once = proof_diversity([PROOF_A])
    assert same.tactic_shannon == pytest.approx(once.tactic_shannon)
    assert proof_diversity([]).tactic_shannon == 0.0


def test_paper_tactics_are_first_tokens_of_every_non_empty_line():
    # the whole response counts: statement line, comments and fences included (the authors' rule)
    assert paper_tactics(PROOF_A) == ["theorem", "--", "have", "nlinarith"]
    assert paper_tactics("  simp\n\n   \n\tlinarith [h]") == ["simp", "linarith"]
    assert paper_tactics("") == []


def test_paper_premises_split_bracket_contents_on_spaces_and_commas():
    assert paper_premises(PROOF_A) == ["sq_nonneg", "(a", "-", "b)", "h₀", "mul_pos", "h₀", "h₀"]
    assert paper_premises("simp only [mul_comm, ← add_assoc, -pow_two]") == [
        "mul_comm",
        "←",
        "add_assoc",
        "-pow_two",
    ]
    # statement brackets count too, and brackets do not span lines
    assert paper_premises("(h : l = [1, 2]) := by\n  simp [h]\n  exact [a\nb]") == ["1", "2", "h"]
    assert paper_premises("rw []") == []


def test_response_diversity_pools_all_responses_verified_or_not():
    responses = ["simp [a, b]\nlinarith", "simp [a]", "garbage"]
    d = response_diversity(responses)
    # tactics simp, linarith, simp, garbage -> counts 2, 1, 1; premises a, b, a -> 2, 1
    assert d.proofs == 3
    assert d.tactic_shannon == pytest.approx(1.5)
    assert d.tactic_simpson == pytest.approx(1 - (0.25 + 0.0625 + 0.0625))
    assert d.premise_shannon == pytest.approx(
        -(2 / 3) * math.log2(2 / 3) - (1 / 3) * math.log2(1 / 3)
    )
    assert d.premise_simpson == pytest.approx(1 - (4 / 9 + 1 / 9))
    assert (d.distinct_tactics, d.distinct_premises) == (3, 2)
