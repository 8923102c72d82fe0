"""What the math checker reads from an answer, and the comparison itself (in this process)."""

from __future__ import annotations

import pytest

from verifier_service.checkers.math import extract, is_bare_expression, judge


@pytest.mark.parametrize(
    ("text", "bare"),
    [
        ("3*8", True),
        ("(2+4)*4", True),
        ("\\frac{1}{2}", True),
        ("sqrt(2)*x", True),
        ("2**10", True),
        ("The answer is 24", False),
        ("$24$", False),
        ("so \\boxed{24}", False),
        ("3*8\n= 24", False),
    ],
)
def test_bare_expression_detection(text: str, bare: bool) -> None:
    assert is_bare_expression(text) is bare


@pytest.mark.parametrize("text", ["3*", "3**", "(3+", "hello", "*"])
def test_incomplete_expressions_are_unparsable(text: str) -> None:
    assert extract(text) == []


@pytest.mark.parametrize(
    ("code", "answer", "status"),
    [
        # the CPU demo: short arithmetic for a target number
        ("3*8", "24", "valid"),
        ("(2+4)*4", "24", "valid"),
        ("6 \\times 4", "24", "valid"),
        ("2**3*3", "24", "valid"),
        ("3*7", "24", "wrong_answer"),
        ("3*", "24", "unparsable_answer"),
        ("3 *", "3", "unparsable_answer"),  # a prefix must not count as the answer
        # LaTeX and worked solutions
        ("\\frac{1}{2}", "0.5", "valid"),
        ("0.5", "\\frac{1}{2}", "valid"),
        ("\\dfrac{3}{4}", "0.75", "valid"),
        ("\\frac{1}{3}", "0.5", "wrong_answer"),
        ("We get $x = 12$, so the answer is $\\boxed{24}$.", "24", "valid"),
        ("The answer is 25", "24", "wrong_answer"),
        ("I do not know.", "24", "unparsable_answer"),
        ("24", "not a number at all", "unparsable_reference"),
    ],
)
def test_judge(code: str, answer: str, status: str) -> None:
    result = judge(code, answer, 60.0)
    assert result["status"] == status, result
    assert result["time_s"] >= 0
