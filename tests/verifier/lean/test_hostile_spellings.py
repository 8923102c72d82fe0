"""Every hostile class in every placement: a class is closed only if no spelling gets through.

Each payload is one thing the rules must refuse (code run while elaborating, code registered to
run later, syntax, instances, options, ...). Each placement puts it somewhere else in an
otherwise genuine proof: before the statement, after the proof, inside the tactic block, in the
middle of a line after a helper lemma (where Lean starts a new command), behind a doc comment,
with modifiers. Every combination must be refused by the static rules, before Lean runs.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from verifier_service.soundness import static_violations

HEADER = "import Mathlib\nimport Aesop\nset_option maxHeartbeats 400000\nopen BigOperators Real Nat"
STATEMENT = "theorem foo (a b : ℕ) : a + b = b + a := by\n"
PROOF = STATEMENT + "  omega\n"
HELPER = "lemma sieve_helper : True := trivial"

PAYLOADS = [
    '#eval IO.println "x"',
    "#eval! (pure () : IO Unit)",
    "run_cmd pure ()",
    "run_elab pure ()",
    "run_meta pure ()",
    "#exit",
    "axiom cheat : False",
    "instance sieveAdd : Add ℕ := ⟨fun a _ => a⟩",
    'local notation "ℕ" => ℤ',
    'notation3 "ℕ" => ℤ',
    'infixl:65 " + " => HSub.hSub',
    'macro "omega" : tactic => `(tactic| sorry)',
    "macro_rules | `(tactic| omega) => `(tactic| sorry)",
    'syntax "sieve" : term',
    'elab "sieve" : tactic => pure ()',
    'binder_predicate x " >> " y:term => `($x > $y)',
    'declare_simp_like_tactic sieveSimp "sieve_simp " fun c => c',
    "register_simp_attr sieve_simps",
    "@[norm_num _ + _] def sieveEval : Mathlib.Meta.NormNum.NormNumExt := sorry",
    "@[positivity _ + _] def sieveExt : Mathlib.Meta.Positivity.PositivityExt := sorry",
    "@[delab app.HAdd.hAdd] def sieveDelab : Lean.PrettyPrinter.Delaborator.Delab := failure",
    "@[term_parser] def sieveParser : Lean.Parser.Parser := sorry",
    "@[command_parser] def sieveCmd : Lean.Parser.Parser := sorry",
    "@[tactic omega] def sieveTac : Lean.Elab.Tactic.Tactic := fun _ => pure ()",
    "@[implemented_by sieveT] def sieveF : Bool := false",
    '@[extern "c_sieve"] opaque sieveE : ℕ',
    "attribute [local instance] Nat.instAdd",
    "attribute [local norm_num] Nat.add_comm",
    "#guard_msgs in #check 1",
    "set_option debug.skipKernelTC true",
    "set_option debug.byAsSorry true",
    "set_option «debug».«skipKernelTC» true",
    "def sieveName : Lean.Name := `debug.skipKernelTC",
    "unsafe def sieveU : ℕ := 1",
    "initialize pure ()",
    "simproc sieveSimproc (_ + _) := fun _ => pure .continue",
    "deriving instance Repr for Nat",
    "export Nat (add_comm)",
    "unif_hint (n : ℕ) where n =?= 0 ⊢ n + 1 =?= 1",
    "open private sieveSecret in #check 1",
    "class SieveClass (α : Type) where x : α",
]


def placements(payload: str) -> dict[str, str]:
    return {
        "before": payload + "\n\n" + PROOF,
        "after": PROOF + payload + "\n",
        "after, indented": PROOF + "  " + payload + "\n",
        "in the tactic block": STATEMENT + "  " + payload + "\n  omega\n",
        "mid-line after a helper": f"{HELPER} {payload}\n\n" + PROOF,
        "mid-line after the proof": STATEMENT + "  omega " + payload + "\n",
        "behind a doc comment": PROOF + "/-- a doc comment -/\n" + payload + "\n",
        "after open ... in": PROOF + "open Real in\n" + payload + "\n",
        "after set_option ... in": PROOF + "set_option maxRecDepth 100 in\n" + payload + "\n",
    }


def cases(payloads: list[str], where_to: Callable[[str], dict[str, str]]) -> list:
    """Every payload in every placement, as ``(payload, where, code)``."""
    return [
        (payload, where, code) for payload in payloads for where, code in where_to(payload).items()
    ]


CASES = cases(PAYLOADS, placements)


@pytest.mark.parametrize(("payload", "where", "code"), CASES)
def test_every_spelling_of_every_class_is_refused(payload, where, code):
    found = static_violations(HEADER, code, STATEMENT)
    assert found, f"accepted: {payload!r} {where}"


@pytest.mark.parametrize("payload", PAYLOADS)
def test_every_class_is_refused_in_the_header_too(payload):
    assert static_violations(HEADER + "\n" + payload, PROOF, STATEMENT), payload


@pytest.mark.parametrize("payload", PAYLOADS)
def test_without_a_statement_too(payload):
    for code in (payload + "\n" + PROOF, PROOF + payload + "\n"):
        assert static_violations(HEADER, code, None), payload


def test_the_genuine_proof_itself_passes():
    # so every refusal above is the payload's doing
    assert static_violations(HEADER, PROOF, STATEMENT) == []
    assert static_violations(HEADER, f"{HELPER}\n\n" + PROOF, STATEMENT) == []


#: Harmless after the statement, but before it they could change what it means.
BEFORE_ONLY = [
    "def two := 2",
    "noncomputable def sieveF : ℝ → ℝ := id",
    "abbrev N := ℤ",
    "variable (x : ℕ)",
    "variable {a b : ℤ}",
    "universe u",
    "namespace X",
    "section",
    "open Evil in",
    "open Evil",
    "open scoped Evil",
    "set_option autoImplicit true in",
    "set_option relaxedAutoImplicit true",
    "attribute [simp] Nat.add_comm",
    "structure S where\n  x : ℕ",
    "inductive T | a | b",
    "mutual\nend",
    "theorem a : True := trivial\nend",
]


def before_placements(payload: str) -> dict[str, str]:
    return {
        "own line": payload + "\n" + PROOF,
        "behind a doc comment": "/-- doc -/\n" + payload + "\n" + PROOF,
        "after a helper": f"{HELPER}\n\n" + payload + "\n" + PROOF,
        "mid-line after a helper": f"{HELPER} {payload}\n" + PROOF,
        "indented after a helper": f"{HELPER}\n  {payload}\n" + PROOF,
        "inside a helper's tactic block": "lemma sieve_h : True := by\n  "
        + payload.replace("\n", "\n  ")
        + "\n  trivial\n"
        + PROOF,
    }


BEFORE_CASES = cases(BEFORE_ONLY, before_placements)


@pytest.mark.parametrize(("payload", "where", "code"), BEFORE_CASES)
def test_before_the_statement_every_spelling_is_a_change(payload, where, code):
    reasons = [v.reason for v in static_violations(HEADER, code, STATEMENT)]
    assert "statement_changed" in reasons, f"not a change: {payload!r} {where}: {reasons}"
