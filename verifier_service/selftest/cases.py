"""The bundled cases: proofs whose verdict under the default policy is known.

Every ``valid`` case is a genuine Lean 4 + Mathlib proof in a style real provers publish (helper
lemmas first, the whole file as code, an ``example``, options that only bound resources). Every
``invalid`` case is one hostile class the soundness rules close; ``reasons`` lists the reason
prefixes that may refuse it, so a hostile proof that is refused by accident (a Lean error where
a rule should have caught it) still shows up. Names are unique: they are the request ids.

The statements use names no library declares (``sieve_selftest_…``), so the cases mean the same
under any Mathlib.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal

from verifier_service.checkers.base import DEFAULT_AXIOMS

__all__ = ["CASES", "DEFAULT_HEADER", "NATIVE_AXIOMS", "Case", "Expect"]

#: The header most data sets use; ``--header`` changes it.
DEFAULT_HEADER = (
    "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 400000\n\n"
    "open BigOperators Real Nat Topology Rat\n"
)
#: A policy that trusts the compiler (``native_decide``).
NATIVE_AXIOMS: tuple[str, ...] = (*DEFAULT_AXIOMS, "Lean.ofReduceBool")


class Expect(str, Enum):
    VALID = "valid"
    INVALID = "invalid"


@dataclass(frozen=True)
class Case:
    name: str
    #: The class of proof this case stands for (shown in the table).
    kind: str
    expect: Expect
    code: str
    statement: str | None = None
    #: ``split``: header + code; ``file``: the header written at the top of the code, no
    #: header field; ``bare``: no header at all (the plain prelude).
    posting: Literal["split", "file", "bare"] = "split"
    #: For ``invalid``: a reason must start with one of these (empty: any refusal will do).
    reasons: tuple[str, ...] = ()
    axioms: tuple[str, ...] = DEFAULT_AXIOMS
    allow_sorry: bool = False

    def request(self, header: str, timeout_s: float) -> dict[str, Any]:
        """The ``/verify`` item for this case."""
        item: dict[str, Any] = {
            "id": self.name,
            "checker": "lean4",
            "code": self.code,
            "timeout_s": timeout_s,
        }
        if self.posting == "split":
            item["header"] = header
        elif self.posting == "file":
            item["code"] = header.rstrip("\n") + "\n\n" + self.code
        if self.statement is not None:
            item["statement"] = self.statement
        return item


def _valid(name: str, kind: str, code: str, statement: str | None = None, **kw: Any) -> Case:
    return Case(name, kind, Expect.VALID, code, statement, **kw)


def _hostile(
    name: str, kind: str, code: str, statement: str | None = None, *reasons: str, **kw: Any
) -> Case:
    return Case(name, kind, Expect.INVALID, code, statement, reasons=reasons, **kw)


ADD = "theorem sieve_selftest_add (a b : ℕ) : a + b = b + a := by\n"
ADD_PROOF = ADD + "  omega\n"
POW = "theorem sieve_selftest_pow : 2 ^ 20 % 7 = 4 := by\n"
HELPER = "lemma sieve_selftest_helper (n : ℕ) : n + 0 = n := by\n  simp\n\n"

#: ``reasons`` of the static rules, which refuse before Lean runs.
FORBIDDEN = "forbidden_command:"
CHANGED = "statement_changed"

CASES: tuple[Case, ...] = (
    # --- genuine proofs: must be valid ------------------------------------------------------
    _valid("valid_omega", "statement + proof", ADD_PROOF, ADD),
    _valid("valid_whole_file", "whole file as code", ADD_PROOF, ADD, posting="file"),
    _valid(
        "valid_helper_lemma",
        "helper lemma first",
        HELPER + "theorem sieve_selftest_uses (n : ℕ) : (n + 0) + 0 = n := by\n"
        "  rw [sieve_selftest_helper, sieve_selftest_helper]\n",
        "theorem sieve_selftest_uses (n : ℕ) : (n + 0) + 0 = n := by",
    ),
    _valid(
        "valid_simp_helper",
        "@[simp] helper lemma",
        "@[simp] theorem sieve_selftest_simp (n : ℕ) : n * 1 + 0 = n := by simp\n\n"
        "theorem sieve_selftest_by_simp (n : ℕ) : n * 1 + 0 + 0 = n := by\n  simp\n",
        "theorem sieve_selftest_by_simp (n : ℕ) : n * 1 + 0 + 0 = n := by",
    ),
    _valid(
        "valid_resource_options",
        "resource options before the statement",
        "set_option maxRecDepth 2000\nset_option maxHeartbeats 200000 in\n" + ADD_PROOF,
        ADD,
    ),
    _valid("valid_no_statement", "no statement", ADD_PROOF),
    _valid("valid_example", "example, no statement", "example : (2 : ℕ) + 2 = 4 := by norm_num\n"),
    _valid(
        "valid_native_decide_allowed",
        "native_decide, policy trusts the compiler",
        POW + "  native_decide\n",
        POW,
        axioms=NATIVE_AXIOMS,
    ),
    # --- the classics: must be invalid ----------------------------------------------------
    _hostile("hostile_sorry", "sorry", ADD + "  sorry\n", ADD, "sorry", "forbidden_axiom:sorryAx"),
    _hostile(
        "hostile_sorryax",
        "sorryAx",
        ADD + "  exact sorryAx _ false\n",
        ADD,
        "sorry",
        "forbidden_axiom:sorryAx",
    ),
    _hostile(
        "hostile_axiom",
        "injected axiom",
        "axiom sieve_selftest_cheat : False\n\n" + ADD + "  exact sieve_selftest_cheat.elim\n",
        ADD,
        FORBIDDEN + "axiom",
        CHANGED,
    ),
    _hostile(
        "hostile_true_trivial",
        "statement changed to True",
        "theorem sieve_selftest_add (a b : ℕ) : True := trivial\n",
        ADD,
        CHANGED,
    ),
    _hostile(
        "hostile_hypothesis_added",
        "hypothesis added",
        "theorem sieve_selftest_add (a b : ℕ) (h : False) : a + b = b + a := by\n  omega\n",
        ADD,
        CHANGED,
    ),
    _hostile(
        "hostile_statement_left_out",
        "statement left out",
        "theorem sieve_selftest_other : 1 = 1 := rfl\n",
        ADD,
        CHANGED,
    ),
    _hostile(
        "hostile_native_decide",
        "native_decide",
        POW + "  native_decide\n",
        POW,
        "forbidden_axiom:Lean.ofReduceBool",
    ),
    _hostile(
        "hostile_skip_kernel",
        "set_option debug.skipKernelTC",
        "set_option debug.skipKernelTC true in\n" + ADD + "  omega\n",
        ADD,
        FORBIDDEN,
        CHANGED,
    ),
    _hostile("hostile_exit", "#exit", ADD + "  sorry\n#exit\n", ADD, FORBIDDEN + "#exit"),
    _hostile(
        "hostile_instance",
        "redefined instance",
        "instance (priority := high) sieveAdd : Add ℕ := ⟨fun a _ => a⟩\n\n" + ADD_PROOF,
        ADD,
        FORBIDDEN,
        CHANGED,
    ),
    _hostile(
        "hostile_notation",
        "redefined notation",
        'local notation:65 a " + " b => HMul.hMul a b\n\n' + ADD_PROOF,
        ADD,
        FORBIDDEN,
        CHANGED,
    ),
    _hostile(
        "hostile_implemented_by",
        "implemented_by",
        "def sieveTrue : Bool := true\n@[implemented_by sieveTrue] def sieveFalse : Bool := false\n"
        + ADD_PROOF,
        ADD,
        FORBIDDEN,
        CHANGED,
    ),
    _hostile(
        "hostile_eval",
        "#eval (IO while elaborating)",
        ADD_PROOF + '#eval IO.println "hello"\n',
        ADD,
        FORBIDDEN,
    ),
    _hostile(
        "hostile_macro",
        "macro shadowing a tactic",
        ADD + '  omega\nmacro "sieve_cheat" : tactic => `(tactic| sorry)\n',
        ADD,
        FORBIDDEN,
    ),
    # --- code run while elaborating, or registered to run later, in other spellings ----------
    _hostile(
        "hostile_norm_num_extension",
        "@[norm_num] extension",
        "open Lean Meta in\n@[norm_num _ + _] def sieveEval : Mathlib.Meta.NormNum.NormNumExt"
        " where\n  eval _ := failure\n\n" + ADD_PROOF,
        ADD,
        FORBIDDEN + "@[norm_num]",
        CHANGED,
    ),
    _hostile(
        "hostile_positivity_extension",
        "@[positivity] extension",
        ADD_PROOF
        + "@[positivity _ + _] def sieveExt : Mathlib.Meta.Positivity.PositivityExt where\n"
        "  eval _ _ _ := failure\n",
        ADD,
        FORBIDDEN + "@[positivity]",
    ),
    _hostile(
        "hostile_delab",
        "@[delab] (runs while printing)",
        ADD_PROOF + "open Lean PrettyPrinter Delaborator in\n"
        "@[delab app.HAdd.hAdd] def sieveDelab : Delab := failure\n",
        ADD,
        FORBIDDEN + "@[delab]",
    ),
    _hostile(
        "hostile_term_parser",
        "@[term_parser]",
        ADD_PROOF + "open Lean Parser in\n@[term_parser] def sieveParser : Parser := "
        'leading_parser "sieve!"\n',
        ADD,
        FORBIDDEN + "@[term_parser]",
    ),
    _hostile(
        "hostile_command_parser",
        "@[command_parser]",
        ADD_PROOF + "open Lean Parser in\n@[command_parser] def sieveCmd : Parser := "
        'leading_parser "sieve_cmd"\n',
        ADD,
        FORBIDDEN + "@[command_parser]",
    ),
    _hostile(
        "hostile_binder_predicate",
        "binder_predicate (defines syntax)",
        'binder_predicate x " >>> " y:term => `($x > $y)\n\n' + ADD_PROOF,
        ADD,
        FORBIDDEN + "binder_predicate",
        CHANGED,
    ),
    _hostile(
        "hostile_simp_like_tactic",
        "declare_simp_like_tactic",
        ADD_PROOF + 'declare_simp_like_tactic sieveSimp "sieve_simp " fun c => c\n',
        ADD,
        FORBIDDEN + "declare_simp_like_tactic",
    ),
    _hostile(
        "hostile_unknown_command",
        "unknown command keyword",
        ADD_PROOF + "irreducible_def sieveConst : ℕ := 1\n",
        ADD,
        FORBIDDEN + "irreducible_def",
    ),
    _hostile(
        "hostile_option_name_literal",
        "`debug.skipKernelTC as a name",
        ADD_PROOF + "def sieveOption : Lean.Name := `debug.skipKernelTC\n",
        ADD,
        FORBIDDEN + "debug.skipKernelTC",
    ),
    _hostile(
        "hostile_guard_msgs",
        "#guard_msgs (hides messages)",
        "/-- error: unsolved goals -/\n#guard_msgs in\n" + ADD + "  skip\n",
        ADD,
        FORBIDDEN + "#guard_msgs",
        CHANGED,
    ),
    _hostile(
        "hostile_debug_option",
        "set_option debug.* in a proof",
        ADD + "  set_option debug.byAsSorry true in\n  omega\n",
        ADD,
        "forbidden_option:",
    ),
    # --- what may come before the statement ------------------------------------------------
    _hostile(
        "hostile_def_before",
        "def before the statement",
        "def sieveTwo : ℕ := 2\n\n" + ADD_PROOF,
        ADD,
        CHANGED,
    ),
    _hostile(
        "hostile_variable_before",
        "variable before the statement",
        "variable (sieveX : ℕ)\n\n" + ADD_PROOF,
        ADD,
        CHANGED,
    ),
    _hostile(
        "hostile_open_before",
        "open hidden after a helper lemma",
        "lemma sieve_selftest_h : True := trivial open Lean in\n" + ADD_PROOF,
        ADD,
        CHANGED,
    ),
    _hostile(
        "hostile_sorry_helper",
        "unused helper proved with sorry",
        "lemma sieve_selftest_unused : (1 : ℕ) = 2 := by\n  sorry\n\n" + ADD_PROOF,
        ADD,
        "sorry",
        "forbidden_axiom:sorryAx",
    ),
    _hostile(
        "hostile_native_helper",
        "unused helper proved with native_decide",
        "lemma sieve_selftest_native_helper : 2 ^ 20 % 7 = 4 := by\n  native_decide\n\n"
        + ADD_PROOF,
        ADD,
        "forbidden_axiom:Lean.ofReduceBool",
    ),
    # --- without a statement every theorem counts ------------------------------------------
    _hostile(
        "hostile_error_anywhere",
        "an error in an earlier theorem, no statement",
        "theorem sieve_selftest_wrong : (1 : ℕ) = 2 := by\n"
        "  decide -- double:error decide failed\n\n" + ADD_PROOF,
        None,
        "lean_error",
    ),
    _hostile(
        "hostile_native_first",
        "native_decide in an earlier theorem, no statement",
        POW + "  native_decide\n\n" + ADD_PROOF,
        None,
        "forbidden_axiom:Lean.ofReduceBool",
    ),
)
