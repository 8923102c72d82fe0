"""The exact shortcut around math-verify's ``simplify``: it only ever says "different", with a
witness, and the checker's verdicts are the same with it as without it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from math_verify import grader
from sympy import (
    Eq,
    FiniteSet,
    Float,
    Integer,
    Matrix,
    Rational,
    Symbol,
    sin,
    sqrt,
    symbols,
)

from verifier_service.checkers import math_shortcuts
from verifier_service.checkers.math import judge
from verifier_service.checkers.math_shortcuts import provably_different, symbolic_eq

x, y, d = symbols("x y d")


@pytest.fixture
def without_shortcuts() -> Iterator[None]:
    math_shortcuts.install()
    math_shortcuts.uninstall()
    try:
        yield
    finally:
        math_shortcuts.install()


def judge_both(code: str, answer: str) -> tuple[str, str]:
    """The status with the shortcut installed, then with math-verify's own comparison."""
    math_shortcuts.install()
    fast = judge(code, answer, 30.0)["status"]
    try:
        with math_shortcuts.disabled():
            slow = judge(code, answer, 30.0)["status"]
            assert grader.sympy_symbolic_eq is not symbolic_eq, "judged with the shortcut"
    finally:
        math_shortcuts.install()
    return fast, slow


# --- the witness ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (81 * d, Integer(26)),  # a policy's typical wrong answer: "81d" for 26
        (x * y + 5, Integer(7)),
        ((x + 1) ** 2, x**2 + 1),
        (x / (y + 2), x),
        (x**3 - 2 * x, Rational(1, 2)),
    ],
)
def test_a_nonzero_rational_value_proves_a_difference(a, b) -> None:
    assert provably_different(a, b)
    math_shortcuts.install()
    assert symbolic_eq(a, b) is False


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ((x + 1) ** 2, x**2 + 2 * x + 1),  # equal, though not written alike
        ((x**2 - 1) / (x - 1), x + 1),  # equal where both are defined
        (x * (y + 1) - x * y, x),
    ],
)
def test_equal_expressions_are_never_called_different(a, b) -> None:
    assert not provably_different(a, b)
    math_shortcuts.install()
    assert symbolic_eq(a, b) is True  # math-verify's simplify still decides, and agrees


def test_a_symbol_whose_assumptions_the_witness_breaks_is_left_to_simplify() -> None:
    k = Symbol("k", integer=True)
    negative = Symbol("m", negative=True)
    assert not provably_different(k, 2 * k)  # 7/3 is not an integer
    assert not provably_different(negative, 2 * negative)  # nor negative
    positive = Symbol("p", positive=True)
    real = Symbol("r", real=True)
    assert provably_different(positive, 2 * positive)
    assert provably_different(real, 2 * real)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (sin(x), Integer(0)),  # functions: not evaluated exactly
        (sqrt(x), Integer(2)),  # fractional power
        (x * Float(0.5), Integer(1)),  # floats: math-verify rounds them its own way
        (1 / (x - Rational(7, 3)), Integer(0)),  # the witness is a pole: no value
        (x ** (10**9), Integer(1)),  # a degree too large to evaluate cheaply
        (((x**30) ** 30) ** 30, Integer(1)),  # ... also when built from small exponents
        (Eq(x, 1), Integer(1)),  # relations, sets and matrices take other paths
        (FiniteSet(x), FiniteSet(1)),
        (Matrix([x]), Matrix([1])),
        (Integer(3), Integer(4)),  # no symbols: math-verify's numeric comparison
    ],
)
def test_what_it_does_not_reason_about_is_not_proven(a, b) -> None:
    started = time.perf_counter()
    assert not provably_different(a, b)
    assert time.perf_counter() - started < 1.0  # and it never evaluates a huge power


def test_install_is_idempotent_and_judge_installs_it(without_shortcuts) -> None:
    assert grader.sympy_symbolic_eq is not symbolic_eq
    judge("81d", "26", 30.0)
    assert grader.sympy_symbolic_eq is symbolic_eq
    assert math_shortcuts.install() and math_shortcuts.install()
    math_shortcuts.uninstall()
    assert grader.sympy_symbolic_eq is not symbolic_eq


# --- the checker's verdicts, with and without it ---------------------------------------------


@pytest.mark.parametrize(
    ("code", "answer"),
    [
        ("81d", "26"),
        ("3k18f70", "7"),
        ("(x+1)^2 - x^2 - 2x", "1"),
        ("x - x + 26", "26"),
        ("\\frac{x^2-1}{x-1}", "x+1"),
        ("2x", "x+x"),
        ("a*b", "b*a"),
        ("x = 26", "26"),
        ("ab", "\\text{ab}"),
        ("\\sqrt{x^2}", "x"),
        ("1/3", "0.333333"),
        ("We find $y = 3x$, so $\\boxed{3x}$.", "3x"),
        ("(1, 2)", "\\{1, 2\\}"),
    ],
)
def test_the_same_verdict_on_chosen_answers(code: str, answer: str) -> None:
    fast, slow = judge_both(code, answer)
    assert fast == slow


# A policy's garbage, and near-miss algebra: letters, digits, operators, a little LaTeX.
_PIECES = st.sampled_from(
    [*"0123456789abcdkxy+-*/^()= ", "\\frac{", "}{", "}", "\\cdot ", "x^2", "(x+1)"]
)
_ANSWERS = st.sampled_from(["26", "7", "x+1", "2x", "\\frac{1}{2}", "x^2+2x+1", "a b"])


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(code=st.lists(_PIECES, min_size=1, max_size=10).map("".join), answer=_ANSWERS)
def test_the_same_verdict_on_generated_answers(code: str, answer: str) -> None:
    if not code.strip():
        return
    fast, slow = judge_both(code, answer)
    assert fast == slow, (code, answer)


def test_a_number_sympy_cannot_read_is_an_unparsable_answer_not_a_fault() -> None:
    # math-verify extracts "-086" from this text, and SymPy refuses the leading zero.
    assert judge("-086)9**gj39ah*-", "26", 30.0)["status"] == "unparsable_answer"


def test_the_reference_is_parsed_once_per_worker() -> None:
    from verifier_service.checkers import math as math_module

    math_module._extract_reference.cache_clear()
    for code in ("1", "2", "3"):
        judge(code, "3", 30.0)
    info = math_module._extract_reference.cache_info()
    assert (info.misses, info.hits) == (1, 2)
