"""The adversarial set (``adversarial.jsonl``), one table per class of trick, both directions.

Each case is a reference, an answer, its class and the verdict a careful grader gives. A wrong
answer must be ``invalid`` (never ``valid``, and never ``error``, which a trainer drops); a right
answer must be ``valid``. ``benchmarks/math_adversarial.py`` prints the same set's figures for
the old checker and the new one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from verifier_service.checkers.math import INVALID_REASONS, judge

CASES = [
    json.loads(line)
    for line in (Path(__file__).parent / "adversarial.jsonl").read_text().splitlines()
    if line.strip()
]
CLASSES = sorted({case["class"] for case in CASES})


def _cases(cls: str, verdict: str) -> list[tuple[str, str]]:
    return [
        (case["answer"], case["reference"])
        for case in CASES
        if case["class"] == cls and case["verdict"] == verdict
    ]


def test_the_set_covers_every_class_in_both_directions() -> None:
    assert len(CASES) >= 150
    assert set(CLASSES) == {
        "prose_hedges",
        "relations",
        "text_in_answer",
        "juxtaposition",
        "numeric_tolerance",
        "order_percent_units",
        "error_for_wrong",
        "right_answers",
        "plain",
    }
    for cls in CLASSES:
        assert _cases(cls, "valid"), f"{cls}: no right answer"
        assert _cases(cls, "invalid"), f"{cls}: no wrong answer"
    assert all(case["verdict"] in ("valid", "invalid") for case in CASES)


@pytest.mark.parametrize("cls", CLASSES)
def test_wrong_answers_are_invalid_never_valid_nor_error(cls: str) -> None:
    got = {(a, r): judge(a, r, 30.0) for a, r in _cases(cls, "invalid")}
    slipped = {
        case: result["status"]
        for case, result in got.items()
        if result["status"] not in INVALID_REASONS
    }
    assert not slipped, slipped


@pytest.mark.parametrize("cls", CLASSES)
def test_right_answers_are_valid(cls: str) -> None:
    got = {(a, r): judge(a, r, 30.0) for a, r in _cases(cls, "valid")}
    refused = {
        case: (result["status"], result.get("detail"))
        for case, result in got.items()
        if result["status"] != "valid"
    }
    assert not refused, refused
