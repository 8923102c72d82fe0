"""What a proof may use: the commands, attributes and options of the static rules, as data.

This module is the contract that docs/soundness.md's lean4 section states, and a test holds
the two to the same lists. The rules prefer an allowlist to a denylist: a command, attribute or
option that is not named here is refused, so a spelling nobody thought of (a Mathlib command
that defines syntax, an attribute that registers an extension) is refused by default. The
denylist (:data:`REFUSED_WORDS`) only matters where Lean can start a command in the middle of a
line, which a lexer cannot see: there, the words of every known command that runs code, defines
syntax or changes what names mean are refused wherever they occur.

How the lists were chosen: every command, attribute and option used by the 438 published prover
proofs and the 10,737 statements and headers of ``data/`` is here (a test checks it), plus
the ones that only state and prove propositions or tune resources and printing.
"""

from __future__ import annotations

__all__ = [
    "ALLOWED_ATTRIBUTES",
    "ALLOWED_ATTRIBUTE_SUFFIXES",
    "ALLOWED_COMMANDS",
    "ALLOWED_HASH_COMMANDS",
    "ALLOWED_OPTIONS",
    "ALLOWED_OPTION_PREFIXES",
    "COMMAND_KINDS",
    "COMMENT_KINDS",
    "CONTINUATION_WORDS",
    "DECLARATION_KIND",
    "DECLARATION_KINDS",
    "DECLARATION_WORDS",
    "HARMLESS_OPTIONS",
    "HARMLESS_OPTION_PREFIXES",
    "MODIFIERS",
    "REFUSED_HASH_COMMANDS",
    "REFUSED_PREFIXES",
    "REFUSED_WORDS",
    "THEOREM_WORDS",
    "attribute_allowed",
    "option_allowed",
    "option_harmless",
    "policy_word",
]

#: Declarations that only state and prove a proposition. Before the statement these are the
#: only declarations allowed (helper lemmas): by proof irrelevance they cannot change what the
#: statement means, and the target's ``#print axioms`` covers the ones it uses.
THEOREM_WORDS = frozenset({"theorem", "lemma", "example"})

#: Words that open a declaration whose signature runs until ``:=``, ``|`` or ``where``.
DECLARATION_WORDS = THEOREM_WORDS | {
    "def", "abbrev", "instance", "structure", "class", "inductive", "opaque", "axiom",
}  # fmt: skip

#: Modifiers written before a command's keyword (``private theorem``, ``noncomputable def``).
MODIFIERS = frozenset(
    {"private", "protected", "noncomputable", "partial", "nonrec", "unsafe", "local", "scoped"}
)

#: The command keywords a proof may begin a command with (after modifiers and attributes).
#: ``def`` and friends are allowed after the statement only (the statement rule refuses them
#: before it); ``open`` and ``set_option`` are judged by their own rules.
ALLOWED_COMMANDS = frozenset(
    {
        # state and prove
        "theorem", "lemma", "example",
        # define (after the statement, or as the statement of a construction problem)
        "def", "abbrev", "structure", "inductive", "mutual",
        # scopes and context
        "namespace", "section", "end", "open", "set_option", "universe", "variable", "include",
        "omit", "attribute",
    }
)  # fmt: skip

#: ``#`` commands a proof may use: they only print.
ALLOWED_HASH_COMMANDS = frozenset({"#check", "#print", "#reduce", "#synth"})

#: Words that may begin a line at column 0 inside a command (``termination_by`` after a
#: ``def``, the ``where`` of a structure): they are not commands.
CONTINUATION_WORDS = frozenset({"termination_by", "decreasing_by", "where"})

#: ``#`` commands refused wherever they occur: they stop checking, run code, or filter messages
#: (``#guard_msgs`` can hide an error). Any other ``#word`` at the start of a command is refused
#: too; in the middle of a line ``#s`` is Mathlib's cardinality notation, so only these are.
REFUSED_HASH_COMMANDS = frozenset(
    {
        "#exit", "#eval", "#eval!", "#guard", "#guard_msgs", "#guard_expr", "#check_failure",
        "#check_tactic", "#check_simp", "#test", "#sample", "#html", "#widget", "#leansearch",
        "#loogle", "#moogle", "#find", "#help", "#lint", "#time", "#count_heartbeats",
        "#simp", "#norm_num", "#conv", "#whnf", "#whnfR", "#push_neg", "#exact?", "#explode",
        "#min_imports", "#find_home", "#where", "#version", "#adaptation_note",
    }
)  # fmt: skip

#: Words refused wherever they occur as a token (never inside comments or strings): commands
#: that stop checking or trust unchecked code, run code while elaborating, register code to
#: run later, define syntax, or change what the statement's symbols mean.
REFUSED_WORDS = frozenset(
    {
        # stop checking, or trust unchecked code
        "axiom", "unsafe", "implemented_by", "extern", "opaque",
        # run code while elaborating
        "run_cmd", "run_tac", "run_elab", "run_meta", "by_elab", "initialize",
        "builtin_initialize", "count_heartbeats",
        # register code that runs later
        "simproc", "dsimproc", "simproc_decl", "dsimproc_decl", "builtin_simproc",
        "builtin_dsimproc", "add_aesop_rules", "erase_aesop_rules", "grind_pattern",
        # define syntax
        "notation", "notation3", "infix", "infixl", "infixr", "prefix", "postfix", "macro",
        "macro_rules", "elab", "elab_rules", "syntax", "binder_predicate", "binder_notation",
        "elab_stx_quot", "unif_hint",
        # change what names and instances mean
        "instance", "deriving", "export", "class",
    }
)  # fmt: skip

#: Identifier prefixes refused like :data:`REFUSED_WORDS` (``declare_simp_like_tactic``,
#: ``register_simp_attr``, ``run_cmd``, ``builtin_initialize``, ...).
REFUSED_PREFIXES = ("declare_", "register_", "run_", "builtin_")

#: Attributes a declaration may carry (``@[simp]``, ``attribute [local simp] foo``): they tag
#: lemmas for tactics that Lean checks anyway. Every other attribute is refused, in particular
#: those that register code (``norm_num``, ``positivity``, ``delab``, ``app_unexpander``,
#: ``tactic``, ``term_elab``, ``command_elab``, ``macro``, ``term_parser``, ``command_parser``,
#: ``aesop``, ``init``), change instance resolution (``instance``, ``default_instance``, ``class``)
#: or the compiler (``implemented_by``, ``extern``, ``csimp``).
ALLOWED_ATTRIBUTES = frozenset(
    {
        "simp", "norm_cast", "push_cast", "ext", "reducible", "irreducible", "semireducible",
        "inline", "noinline", "specialize", "nolint", "deprecated", "elab_as_elim", "symm",
        "refl", "trans", "congr", "mono", "gcongr", "field_simps", "continuity",
        "measurability", "fun_prop", "bound", "simps", "to_additive", "nontriviality",
        "match_pattern", "pp_nodot", "induction_eliminator", "cases_eliminator", "grind",
        "inherit_doc", "simps!", "mk_iff",
    }
)  # fmt: skip
#: Simp sets Mathlib declares with ``register_simp_attr`` (``mfld_simps``, ``parity_simps``, ...).
ALLOWED_ATTRIBUTE_SUFFIXES = ("_simps",)

#: Options that only bound resources or change printing: harmless anywhere, before the
#: statement too.
HARMLESS_OPTIONS = frozenset(
    {
        "maxHeartbeats", "maxRecDepth", "maxSynthPendingDepth", "synthInstance.maxHeartbeats",
        "synthInstance.maxSize", "tactic.hygienic", "profiler", "diagnostics",
        "exponentiation.threshold",
    }
)  # fmt: skip
HARMLESS_OPTION_PREFIXES = ("pp.", "trace.", "linter.", "profiler.", "diagnostics.")

#: Options that change how later code elaborates: allowed in the header and after the statement
#: (before it they would change what the statement means, unless the header has them).
ALLOWED_OPTIONS = HARMLESS_OPTIONS | {
    "autoImplicit", "relaxedAutoImplicit", "checkBinderAnnotations", "simprocs",
    "push_neg.use_distrib", "Elab.async",
}  # fmt: skip
ALLOWED_OPTION_PREFIXES = HARMLESS_OPTION_PREFIXES


def option_harmless(name: str) -> bool:
    return name in HARMLESS_OPTIONS or name.startswith(HARMLESS_OPTION_PREFIXES)


def option_allowed(name: str) -> bool:
    return name in ALLOWED_OPTIONS or name.startswith(ALLOWED_OPTION_PREFIXES)


def attribute_allowed(name: str) -> bool:
    return name in ALLOWED_ATTRIBUTES or name.endswith(ALLOWED_ATTRIBUTE_SUFFIXES)


# --- Lean's syntax kinds ----------------------------------------------------------------------
#
# The rules on Lean's own parse (:mod:`.parsed`) judge each command by the syntax kind Lean gave
# it, through these two tables: a kind maps to the word of the policy above (``theorem``,
# ``open``, ``#print``, ``#exit``, ...), and that word is allowed or refused exactly as the
# lexer's rules allow or refuse it. A kind that is in neither table is refused.

#: Command syntax kinds -> the policy word they stand for. ``declaration`` is decided by the
#: declaration's own kind (:data:`DECLARATION_KINDS`).
COMMAND_KINDS: dict[str, str] = {
    "Lean.Parser.Command.open": "open",
    "Lean.Parser.Command.set_option": "set_option",
    "Lean.Parser.Command.namespace": "namespace",
    "Lean.Parser.Command.section": "section",
    "Lean.Parser.Command.noncomputableSection": "section",
    "Lean.Parser.Command.end": "end",
    "Lean.Parser.Command.universe": "universe",
    "Lean.Parser.Command.variable": "variable",
    "Lean.Parser.Command.include": "include",
    "Lean.Parser.Command.omit": "omit",
    "Lean.Parser.Command.attribute": "attribute",
    "Lean.Parser.Command.mutual": "mutual",
    "Lean.Parser.Command.check": "#check",
    "Lean.Parser.Command.print": "#print",
    "Lean.Parser.Command.printAxioms": "#print",
    "Lean.Parser.Command.printEqns": "#print",
    "Lean.Parser.Command.reduce": "#reduce",
    "Lean.Parser.Command.synth": "#synth",
    # refused (named so that the reason says what it was)
    "Lean.Parser.Command.exit": "#exit",
    "Lean.Parser.Command.eval": "#eval",
    "Lean.Parser.Command.evalBang": "#eval!",
    "Lean.Parser.Command.checkFailure": "#check_failure",
    "Lean.guardMsgsCmd": "#guard_msgs",
    "Lean.Parser.Command.initialize": "initialize",
    "Lean.Parser.Command.notation": "notation",
    "Lean.Parser.Command.mixfix": "infix",
    "Lean.Parser.Command.macro": "macro",
    "Lean.Parser.Command.macro_rules": "macro_rules",
    "Lean.Parser.Command.syntax": "syntax",
    "Lean.Parser.Command.syntaxAbbrev": "syntax",
    "Lean.Parser.Command.syntaxCat": "syntax",
    "Lean.Parser.Command.elab": "elab",
    "Lean.Parser.Command.elab_rules": "elab_rules",
    "Lean.Parser.Command.export": "export",
    "Lean.Parser.Command.deriving": "deriving",
    "Lean.Parser.Command.declare_syntax_cat": "syntax",
    "Lean.Parser.Command.binderPredicate": "binder_predicate",
    "Lean.Parser.Command.addDocString": "add_decl_doc",
    "Lean.runCmd": "run_cmd",
    "Lean.runElab": "run_elab",
    "Lean.runMeta": "run_meta",
    # Mathlib's, Batteries' and Std's ``lemma`` is a declaration command of its own
    "lemma": "lemma",
    "Batteries.Tactic.Lemma.lemmaCmd": "lemma",
    "Std.Tactic.Lemma.lemmaCmd": "lemma",
}

#: Declaration kinds (the second child of ``Lean.Parser.Command.declaration``) -> policy word.
#: ``structure`` is ``structure`` or ``class`` by its keyword.
DECLARATION_KINDS: dict[str, str] = {
    "Lean.Parser.Command.theorem": "theorem",
    "Lean.Parser.Command.definition": "def",
    "Lean.Parser.Command.abbrev": "abbrev",
    "Lean.Parser.Command.example": "example",
    "Lean.Parser.Command.inductive": "inductive",
    "Lean.Parser.Command.structure": "structure",
    "Lean.Parser.Command.instance": "instance",
    "Lean.Parser.Command.axiom": "axiom",
    "Lean.Parser.Command.opaque": "opaque",
    "Lean.Parser.Command.classInductive": "class",
    "lemma": "lemma",
    "Batteries.Tactic.Lemma.lemmaCmd": "lemma",
    "Std.Tactic.Lemma.lemmaCmd": "lemma",
}

DECLARATION_KIND = "Lean.Parser.Command.declaration"
#: Commands that are only documentation: a lexer reads them as comments.
COMMENT_KINDS = frozenset({"Lean.Parser.Command.moduleDoc"})


def policy_word(kind: str, decl_kind: str | None = None, keyword: str | None = None) -> str | None:
    """The policy word for a command of syntax ``kind`` (``None``: a kind nobody listed).

    ``decl_kind`` and ``keyword`` are the declaration's own kind and keyword atom, for a
    ``declaration`` command (``class`` is a ``structure`` with the keyword ``class``).
    """
    if kind == DECLARATION_KIND or (decl_kind is not None and kind == decl_kind):
        word = DECLARATION_KINDS.get(decl_kind or "")
        if word == "structure" and keyword == "class":
            return "class"
        return word
    return COMMAND_KINDS.get(kind)
