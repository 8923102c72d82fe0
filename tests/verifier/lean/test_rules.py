"""Each soundness rule, with the exploits seen in practice."""

from __future__ import annotations

import pytest

from verifier_service.checkers.base import Policy
from verifier_service.lean.replies import parse_reply
from verifier_service.soundness import (
    DEFAULT_FORBIDDEN,
    allowed_axioms,
    no_forbidden_commands,
    no_lean_errors,
    no_sorry,
    statement_unchanged,
    static_violations,
)

HEADER = "import Mathlib\nimport Aesop\nset_option maxHeartbeats 400000\nopen BigOperators Real Nat"
STATEMENT = "theorem foo (a b : ℕ) : a + b = b + a := by\n"
PROOF = STATEMENT + "  omega\n"


def reasons(violations) -> list[str]:
    return [v.reason for v in violations]


# --- errors and sorry -------------------------------------------------------------------------


def test_lean_error_rule():
    bad = parse_reply({"env": 1, "messages": [{"severity": "error", "data": "Type mismatch"}]})
    good = parse_reply({"env": 1, "messages": [{"severity": "info", "data": "Try this: rfl"}]})
    assert reasons(no_lean_errors(bad)) == ["lean_error"]
    assert no_lean_errors(bad)[0].detail == "Type mismatch"
    assert no_lean_errors(good) == []


def test_sorry_rule(transcripts):
    sorry = parse_reply(transcripts["core/dup_sorries"].replies[0])
    assert reasons(no_sorry(sorry, Policy())) == ["sorry"]
    assert no_sorry(sorry, Policy())[0].line == 1
    assert no_sorry(sorry, Policy(allow_sorry=True)) == []
    assert no_sorry(parse_reply({"env": 0}), Policy()) == []


# --- axioms -----------------------------------------------------------------------------------


def test_standard_axioms_pass():
    assert allowed_axioms(["propext", "Classical.choice", "Quot.sound"], Policy()) == []
    assert allowed_axioms([], Policy()) == []


@pytest.mark.parametrize("axiom", ["sorryAx", "Lean.ofReduceBool", "cheat", "Lean.trustCompiler"])
def test_other_axioms_fail(axiom):
    assert reasons(allowed_axioms(["propext", axiom], Policy())) == [f"forbidden_axiom:{axiom}"]


def test_policy_decides_axioms():
    assert allowed_axioms(["Lean.ofReduceBool"], Policy(axioms=("Lean.ofReduceBool",))) == []
    assert reasons(allowed_axioms(["propext"], Policy(axioms=()))) == ["forbidden_axiom:propext"]
    assert allowed_axioms(["sorryAx"], Policy(allow_sorry=True)) == []


# --- forbidden commands -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "what"),
    [
        (PROOF + "#exit\n", "#exit"),
        ("set_option debug.skipKernelTC true in\n" + PROOF, "debug.skipKernelTC"),
        ("set_option\n  debug.skipKernelTC\n    true\n" + PROOF, "debug.skipKernelTC"),
        ("set_option «debug».«skipKernelTC» true\n" + PROOF, "debug.skipKernelTC"),
        ("axiom cheat : False\n" + PROOF, "axiom"),
        ("private axiom cheat : False\n" + PROOF, "axiom"),
        ("@[implemented_by foo] def g : Bool := true\n" + PROOF, "implemented_by"),
        ('@[extern "c_g"] opaque g : Nat\n' + PROOF, "extern"),
        ("open private secret in\n" + PROOF, "open private"),
        ("unsafe def g : Nat := 1\n" + PROOF, "unsafe"),
        ('local notation "ℕ" => Int\n' + PROOF, "notation"),
        ("macro_rules | `(tactic| omega) => `(tactic| sorry)\n" + PROOF, "macro_rules"),
        ('macro "omega" : tactic => `(tactic| sorry)\n' + PROOF, "macro"),
        ('syntax "foo" : term\n' + PROOF, "syntax"),
        ('elab "t" : tactic => pure ()\n' + PROOF, "elab"),
        ('infixl:65 " + " => HSub.hSub\n' + PROOF, "infixl"),
        ('#eval IO.FS.removeFile "/x"\n' + PROOF, "#eval"),
        ('run_cmd Lean.logInfo "hi"\n' + PROOF, "run_cmd"),
        (STATEMENT + "  run_tac Lean.Elab.Tactic.evalTactic (← `(tactic| omega))\n", "run_tac"),
        ("instance : Add ℕ := ⟨fun a _ => a⟩\n" + PROOF, "instance"),
        ("attribute [local instance] Nat.instAdd\n" + PROOF, "instance"),
        ("@[default_instance] def g : Add ℕ := ⟨Nat.add⟩\n" + PROOF, "@[default_instance]"),
        ("@[simp, tactic omega] def g := 1\n" + PROOF, "@[tactic]"),
        # interpolation holds code; with a nested string a lexer could lose track of it
        (STATEMENT + '  exact f s!"{ g "a" (by run_tac t) "b" }"\n', "string_interpolation"),
        # extension attributes register code that tactics run later
        ("@[norm_num _ + _] def evalX : NormNumExt := sorry\n" + PROOF, "@[norm_num]"),
        ("@[positivity _ * _] def evalY : PositivityExt := sorry\n" + PROOF, "@[positivity]"),
        ("@[delab app.HAdd.hAdd] def d : Delab := sorry\n" + PROOF, "@[delab]"),
        ("@[app_unexpander HAdd.hAdd] def u : Unexpander := sorry\n" + PROOF, "@[app_unexpander]"),
        ("@[aesop safe tactic] def t : TacticM Unit := sorry\n" + PROOF, "@[aesop]"),
        ("@[csimp] theorem c : @f = @g := rfl\n" + PROOF, "@[csimp]"),
        ("@[simp, local macro foo] def m := 1\n" + PROOF, "@[macro]"),
        ("attribute [scoped instance] Nat.instAdd\n" + PROOF, "@[instance]"),
        # parser attributes define syntax
        ("@[term_parser] def p : Parser := sorry\n" + PROOF, "@[term_parser]"),
        ("@[command_parser] def p : Parser := sorry\n" + PROOF, "@[command_parser]"),
        ("@[tactic_parser] def p : Parser := sorry\n" + PROOF, "@[tactic_parser]"),
        # syntax-defining commands without the old refused words
        ('binder_predicate x " >> " y:term => `($x > $y)\n' + PROOF, "binder_predicate"),
        (
            'declare_simp_like_tactic mysimp "mysimp " fun c => c\n' + PROOF,
            "declare_simp_like_tactic",
        ),
        ("register_simp_attr my_simps\n" + PROOF, "register_simp_attr"),
        ("register_option foo : Bool := { defValue := true }\n" + PROOF, "register_option"),
        ("unif_hint (n : ℕ) where n =?= 0 ⊢ n + 1 =?= 1\n" + PROOF, "unif_hint"),
        ("deriving instance Repr for Nat\n" + PROOF, "deriving"),
        ("export Nat (add_comm)\n" + PROOF, "export"),
        ("opaque secret : ℕ\n" + PROOF, "opaque"),
        # ... anywhere on a line, where Lean starts a new command
        (
            'theorem a : True := trivial binder_predicate x " >> " y:term => `(1)\n' + PROOF,
            "binder_predicate",
        ),
        # any unknown command keyword
        ("irreducible_def foo : ℕ := 1\n" + PROOF, "irreducible_def"),
        ("assert_not_exists Foo\n" + PROOF, "assert_not_exists"),
        ("suppress_compilation\n" + PROOF, "suppress_compilation"),
        # an option named as a name literal, which meta code could set, or as a string
        (PROOF + "def n : Lean.Name := `debug.skipKernelTC\n", "debug.skipKernelTC"),
        (PROOF + "def n : Lean.Name := ``debug.skipKernelTC\n", "debug.skipKernelTC"),
        (PROOF + 'def n : String := "debug.skipKernelTC"\n', "debug.skipKernelTC"),
        # anything that filters Lean's messages can hide an error
        ("/-- info: 2 -/\n#guard_msgs in\n" + PROOF, "#guard_msgs"),
        ("#guard_msgs (drop error) in\n" + PROOF, "#guard_msgs"),
        (PROOF + "#check_failure (1 : String)\n", "#check_failure"),
        # other # commands that run code or leave the machine
        (PROOF + "#loogle Nat.add_comm\n", "#loogle"),
        (PROOF + "#test ∀ n : ℕ, n = n\n", "#test"),
        (PROOF + "#help tactic\n", "#help"),
    ],
)
def test_forbidden_commands_are_caught(code, what):
    assert f"forbidden_command:{what}" in reasons(no_forbidden_commands(code))


@pytest.mark.parametrize(
    ("code", "option"),
    [
        ("set_option debug.byAsSorry true in\n" + PROOF, "debug.byAsSorry"),
        (STATEMENT + "  set_option debug.proofAsSorry true in\n  omega\n", "debug.proofAsSorry"),
        ("set_option interpreter.prefer_native true\n" + PROOF, "interpreter.prefer_native"),
        ("set_option compiler.extract_closed false\n" + PROOF, "compiler.extract_closed"),
        ("set_option bootstrap.genMatcherCode false\n" + PROOF, "bootstrap.genMatcherCode"),
    ],
)
def test_options_outside_the_allowlist_are_refused(code, option):
    assert reasons(no_forbidden_commands(code)) == [f"forbidden_option:{option}"]


@pytest.mark.parametrize(
    "code",
    [
        # what the published proofs and data sets use
        "@[simp] theorem h (n : ℕ) : n + 0 = n := rfl\n" + PROOF,
        "@[simp ←, norm_cast] lemma h : (1 : ℤ) = ((1 : ℕ) : ℤ) := by simp\n" + PROOF,
        "attribute [local simp] Nat.add_comm in\n" + PROOF,
        "attribute [-simp] Nat.add_comm\n" + PROOF,
        '@[deprecated (since := "2024-01-01")] theorem old : True := trivial\n' + PROOF,
        "@[simp, mfld_simps] theorem s : True := trivial\n" + PROOF,
        "set_option maxHeartbeats 400000 in\n" + PROOF,
        "set_option maxRecDepth 10000\nset_option tactic.hygienic false\n" + PROOF,
        "set_option pp.numericTypes true\nset_option linter.unusedVariables false\n" + PROOF,
        "set_option autoImplicit false\n" + PROOF,
        STATEMENT + "  set_option maxRecDepth 1000 in\n  omega\n",
        STATEMENT + "  have : #s = 1 := rfl\n  omega\n",  # Mathlib's cardinality notation
        "theorem foo (x : ℝ) (h : x = 1) :\nx ^ 2 = 1 := by\n  simp [h]\n",  # signature at col 0
        "def f : ℕ → ℕ\n| 0 => 1\n| n + 1 => f n\n" + PROOF,
        "def g (n : ℕ) : ℕ := n\ntermination_by n\n" + PROOF,
        "noncomputable section\nopen Real\n" + PROOF + "end\n",
        "namespace X\n" + PROOF + "end X\n#print axioms X.foo\n#check X.foo\n",
        "structure P where\n  x : ℕ\n  y : ℕ\n" + PROOF,
        "mutual\ntheorem e : True := trivial\nend\n" + PROOF,
    ],
)
def test_what_provers_write_is_allowed(code):
    assert no_forbidden_commands(code) == []


def test_a_tactic_at_column_zero_reads_as_an_unknown_command():
    # Lean would accept this layout; the rules cannot tell it from a command, so refuse it
    # (no published proof writes a tactic at column 0).
    assert reasons(no_forbidden_commands(STATEMENT + "omega\n")) == ["forbidden_command:omega"]


@pytest.mark.parametrize(
    "code",
    [
        PROOF + "-- #exit axiom unsafe\n",
        PROOF + "/- set_option debug.skipKernelTC true\n  instance -/\n",
        PROOF + '#check "#exit axiom instance"\n',
        PROOF + "/-- a doc comment mentioning `#eval` -/\ntheorem bar : True := trivial\n",
        PROOF + "#print axioms foo\n#check inferInstance\n",
        "theorem my_axiom_free (h_instance : True) : True := h_instance\n",
        STATEMENT + "  exact (by tactic_like_name_is_fine)\n",
    ],
)
def test_harmless_mentions_are_not_flagged(code):
    assert no_forbidden_commands(code) == []


def test_violation_points_at_the_command():
    (violation,) = no_forbidden_commands(PROOF + "  \n   #exit")
    assert (violation.line, violation.column) == (4, 3)
    message = violation.to_message()
    assert message["severity"] == "error" and message["pos"] == {"line": 4, "column": 3}


def test_forbidden_set_is_configurable():
    code = "instance : Inhabited ℕ := ⟨0⟩\n" + PROOF
    assert no_forbidden_commands(code, forbidden=DEFAULT_FORBIDDEN - {"instance"}) == []


def test_header_is_scanned_too():
    found = static_violations("import Mathlib\n#exit", PROOF, STATEMENT)
    assert reasons(found) == ["forbidden_command:#exit"]
    assert "header" in found[0].detail


# --- the statement ----------------------------------------------------------------------------


def test_unchanged_statement_passes():
    assert statement_unchanged(PROOF, STATEMENT, HEADER) == []


def test_no_statement_no_check():
    assert statement_unchanged("theorem foo : True := trivial", None) == []


def test_layout_and_comments_do_not_matter():
    code = "theorem foo (a b : ℕ) :\n    a + b = b + a -- commute\n  := by omega"
    assert statement_unchanged(code, STATEMENT) == []
    assert statement_unchanged("/-- informal -/\n-- note\n" + PROOF, STATEMENT) == []


def test_goal_changed_to_true():
    code = "theorem foo (a b : ℕ) : True := trivial"
    assert reasons(statement_unchanged(code, STATEMENT)) == ["statement_changed"]


def test_statement_left_out():
    assert reasons(statement_unchanged("theorem bar : 1 = 1 := rfl", STATEMENT)) == [
        "statement_changed"
    ]
    assert reasons(statement_unchanged("", STATEMENT)) == ["statement_changed"]


@pytest.mark.parametrize(
    "helpers",
    [
        "theorem helper : 1 = 1 := rfl\n",
        "lemma helper (n : ℕ) : n + 0 = n := by\n  simp\n\nlemma helper2 : True := trivial\n",
        "@[simp] private lemma helper (n : ℕ) : n * 1 = n := by simp\n",
        "/-- a doc comment -/\ntheorem helper (x : ℝ) (h : 0 ≤ x) :\nx ≥ 0 := by\n  linarith\n",
        "example : 2 + 2 = 4 := by norm_num\n",
        "lemma helper : True := by\n  set_option maxRecDepth 2000 in\n  trivial\n",
        "lemma helper : True := by\n  open Real in\n  trivial\n",  # the header opens Real
    ],
)
def test_helper_lemmas_before_the_statement_are_accepted(helpers):
    # Goedel-Prover-V2, Kimina-Prover and Seed-Prover put helper lemmas first
    code = helpers + "\n" + PROOF
    assert statement_unchanged(code, STATEMENT, HEADER) == []
    assert no_forbidden_commands(code) == []


@pytest.mark.parametrize(
    "prelude",
    [
        "def two := 2\n",
        "noncomputable def f : ℝ → ℝ := id\n",
        "abbrev N := ℕ\n",
        "variable (x : ℕ)\n",
        "universe u\n",
        "namespace X\n",
        "section\n",
        "attribute [simp] Nat.add_comm\n",
        "structure S where\n  x : ℕ\n",
        "inductive T | a | b\n",
        # a command hidden at the end of a helper lemma, where Lean starts a new command
        "lemma helper : True := by\n  trivial\nopen Evil in\n",
        "lemma helper : True := trivial open Evil in\n",
        "lemma helper : True := (by open Evil in trivial)\n",
        "lemma helper : True := trivial\nset_option autoImplicit true in\n",
        "lemma helper : True := by\n  trivial\n  variable (x : ℕ)\n",
        # a helper that declares a name the statement uses could shadow it
        "theorem b : True := trivial\n",
    ],
)
def test_other_declarations_before_the_statement_are_a_change(prelude):
    found = statement_unchanged(prelude + PROOF, STATEMENT, HEADER)
    assert reasons(found) == ["statement_changed"], prelude


def test_hypothesis_added_is_a_change():
    code = "theorem foo (a b : ℕ) (h : False) : a + b = b + a := by omega"
    assert reasons(statement_unchanged(code, STATEMENT)) == ["statement_changed"]


def test_statement_without_assignment_cannot_be_extended():
    statement = "theorem foo : 1 = 1"
    assert statement_unchanged("theorem foo : 1 = 1 := rfl", statement) == []
    assert reasons(statement_unchanged("theorem foo : 1 = 1 ∨ True := by simp", statement)) == [
        "statement_changed"
    ]


def test_placeholder_sorry_in_the_statement_is_ignored():
    statement = "theorem foo : 1 = 1 := by sorry"
    assert statement_unchanged("theorem foo : 1 = 1 := by rfl", statement) == []


def test_dot_spacing_matters():
    statement = "theorem foo (h : A ∧ B) : h.1 = h.1 := by"
    code = "theorem foo (h : A ∧ B) : h .1 = h.1 := by rfl"
    assert reasons(statement_unchanged(code, statement)) == ["statement_changed"]


def test_header_repeats_before_the_statement_are_allowed():
    code = "set_option maxHeartbeats 400000\nopen BigOperators Real Nat\nopen Real\n\n" + PROOF
    assert statement_unchanged(code, STATEMENT, HEADER) == []
    assert statement_unchanged("set_option maxHeartbeats 0 in\n" + PROOF, STATEMENT, HEADER) == []


def test_new_opens_or_options_before_the_statement_are_a_change():
    for prelude in (
        "open Evil\n",
        "open scoped Evil in\n",
        "set_option autoImplicit true\n",
        'local notation "x" => 1\n',
    ):
        found = statement_unchanged(prelude + PROOF, STATEMENT, HEADER)
        assert reasons(found) == ["statement_changed"], prelude
