"""Every reply the real REPL gave in the shared transcripts is parsed and classified."""

from __future__ import annotations

import pytest

from verifier_service.lean.replies import (
    MalformedReply,
    Message,
    ReplyKind,
    axioms_from_messages,
    is_sorry_warning,
    parse_axioms,
    parse_reply,
)


def expected_kind(raw: dict) -> ReplyKind:
    """The class of a reply, read straight off the JSON fields (independently of the parser)."""
    if "message" in raw:
        return ReplyKind.REPL_ERROR
    severities = [m["severity"] for m in raw.get("messages", [])]
    status = raw.get("proofStatus") or ""
    if "error" in severities or status.startswith("Error"):
        return ReplyKind.LEAN_ERROR
    if raw.get("sorries") or status == "Incomplete: contains sorry":
        return ReplyKind.SORRY
    if status.startswith("Incomplete"):
        return ReplyKind.INCOMPLETE
    return ReplyKind.VALID


def test_every_transcript_reply_is_classified(transcripts):
    counted = 0
    for transcript in transcripts.values():
        assert len(transcript.replies) == len(transcript.commands), transcript.name
        for i, raw in enumerate(transcript.replies):
            reply = parse_reply(raw)
            assert reply.kind() is expected_kind(raw), f"{transcript.name} reply {i}"
            assert len(reply.messages) == len(raw.get("messages", []))
            assert len(reply.sorries) == len(raw.get("sorries", []))
            if "env" in raw:
                assert reply.env == raw["env"]
            counted += 1
    assert counted >= 100  # the transcripts hold well over a hundred replies


def test_both_corpora_are_covered(transcripts):
    assert any(name.startswith("core/") for name in transcripts)
    assert any(name.startswith("mathlib/") for name in transcripts)


@pytest.mark.parametrize(
    ("name", "kinds"),
    [
        ("core/readme", ["sorry", "incomplete", "valid"]),
        ("core/no_goal_sorry", ["lean_error"]),
        ("core/invalid_tactic", ["sorry", "lean_error"]),
        ("core/dup_sorries", ["sorry", "sorry"]),
        ("core/have_by_sorry", ["lean_error", "sorry", "sorry"]),
        ("core/unknown_environment", ["repl_error"]),
        ("core/def_eval", ["valid", "valid"]),
        ("mathlib/exact", ["valid", "sorry", "valid", "sorry", "repl_error"]),
    ],
)
def test_named_transcripts_by_hand(transcripts, name, kinds):
    replies = [parse_reply(raw) for raw in transcripts[name].replies]
    assert [r.kind().value for r in replies] == kinds


def test_kernel_error_is_a_lean_error(transcripts):
    reply = parse_reply(transcripts["core/app_type_mismatch2"].replies[0])
    assert reply.kind() is ReplyKind.LEAN_ERROR
    assert "(kernel)" in reply.errors[0].data


def test_structured_fields_of_a_sorry_reply(transcripts):
    reply = parse_reply(transcripts["core/readme"].replies[0])
    assert reply.env == 0
    assert reply.sorries[0].goal == "x : Unit\n⊢ Nat"
    assert reply.sorries[0].pos is not None and reply.sorries[0].pos.column == 29
    assert reply.messages[0].severity == "warning"
    tactic = parse_reply(transcripts["core/readme"].replies[1])
    assert tactic.proof_status == "Incomplete: open goals remain"
    assert tactic.goals == ("x : Unit\n⊢ Int",)


def test_sorry_warning_without_sorries_list_in_either_spelling():
    for text in ("declaration uses `sorry`", "declaration uses 'sorry'"):
        reply = parse_reply({"env": 3, "messages": [{"severity": "warning", "data": text}]})
        assert reply.kind() is ReplyKind.SORRY
    other = parse_reply({"env": 3, "messages": [{"severity": "warning", "data": "unused h"}]})
    assert other.kind() is ReplyKind.VALID


def test_info_quoting_the_sorry_text_is_not_a_sorry():
    message = Message("info", "declaration uses 'sorry' is what Lean says")
    assert not is_sorry_warning(message)


def test_sorries_decide_even_when_the_warning_text_changes():
    raw = {
        "env": 1,
        "sorries": [{"proofState": 0, "goal": "⊢ True"}],
        "messages": [{"severity": "warning", "data": "this declaration contains sorry"}],
    }
    assert parse_reply(raw).kind() is ReplyKind.SORRY


def test_error_severity_decides_whatever_the_text():
    for text in ("type mismatch", "Type mismatch", "something new in Lean 5"):
        raw = {"env": 0, "messages": [{"severity": "error", "data": text}]}
        assert parse_reply(raw).kind() is ReplyKind.LEAN_ERROR


@pytest.mark.parametrize(
    "raw",
    [[], "text", {"env": "zero"}, {"messages": {"severity": "error"}}, {"messages": [{"x": 1}]}],
)
def test_malformed_replies_are_refused(raw):
    with pytest.raises(MalformedReply):
        parse_reply(raw)


def test_axioms_answer_with_axioms():
    answer = parse_axioms("'Ns.foo' depends on axioms: [propext, Classical.choice, Quot.sound]")
    assert answer is not None
    assert answer.name == "Ns.foo"
    assert answer.axioms == ("propext", "Classical.choice", "Quot.sound")


def test_axioms_answer_wrapped_over_lines():
    text = "'foo' depends on axioms: [propext,\n sorryAx,\n Classical.choice,\n Quot.sound]"
    answer = parse_axioms(text)
    assert answer is not None and answer.axioms == (
        "propext",
        "sorryAx",
        "Classical.choice",
        "Quot.sound",
    )


def test_axioms_answer_without_axioms():
    answer = parse_axioms("'foo' does not depend on any axioms")
    assert answer is not None and answer.name == "foo" and answer.axioms == ()


@pytest.mark.parametrize("text", ["unknown constant 'foo'", "", "'foo' depends on axioms"])
def test_non_answers_are_none(text):
    assert parse_axioms(text) is None


def test_axioms_from_reply_messages_skips_errors():
    reply = parse_reply(
        {
            "env": 2,
            "messages": [
                {"severity": "error", "data": "'x' depends on axioms: [cheat]"},
                {"severity": "info", "data": "'foo' depends on axioms: [Lean.ofReduceBool]"},
            ],
        }
    )
    answer = axioms_from_messages(reply.messages)
    assert answer is not None and answer.axioms == ("Lean.ofReduceBool",)
