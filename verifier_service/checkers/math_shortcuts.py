"""Exact shortcuts around math-verify's slowest step: the same verdicts, sooner.

math-verify decides that a symbolic answer differs from the reference by simplifying their
difference (``simplify(gold - pred)``, in ``math_verify.grader.sympy_symbolic_eq``). That takes
milliseconds per answer, and a policy's wrong answers are mostly of this kind: ``81d`` for
``26``, ``3k+18f`` for ``7``. On the trainer's benchmark it was more than half of the checker's
time.

A cheaper proof that the two differ gives the same answer: substitute exact rationals for the
free symbols of ``gold - pred``. When the result is a nonzero rational, the difference is not
identically zero, so no correct simplification can reduce it to zero and math-verify's
symbolic comparison would return ``False``; :func:`symbolic_eq` returns ``False`` at once.
Otherwise (the difference vanishes there, or the expression is not one this reasons about) it
asks math-verify as before. The shortcut only ever says "different", only with an exact
witness, and only where the witness respects every assumption of every symbol (a symbol
declared ``integer`` or ``negative`` is never given 7/3). Only sums, products and small integer
powers of symbols and rationals are evaluated, so the substitution itself is cheap and cannot
blow up (``x^(10^9)`` is left to math-verify, under the check's own time limit).

:func:`install` puts :func:`symbolic_eq` in math-verify's place. The checker's
:func:`~verifier_service.checkers.math.judge` calls it before every comparison (it is
idempotent: half a microsecond once in place), so any process that judges has it;
:func:`disabled` keeps it out for a while. A test compares verdicts with and without it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

from sympy import Add, Basic, Expr, Mul, Pow, Rational, Symbol, preorder_traversal

logger = logging.getLogger(__name__)

__all__ = ["disabled", "install", "provably_different", "symbolic_eq", "uninstall"]

#: Largest product of the integer exponents in an expression the shortcut evaluates: it bounds
#: the degree, so the size of the exact rational it computes.
MAX_DEGREE = 1024
#: Largest expression (nodes) the shortcut walks; beyond this it is math-verify's.
MAX_NODES = 10_000

_original: Callable[[Any, Any], bool] | None = None
#: Set by :func:`disabled`: :func:`install` then leaves math-verify alone.
_disabled = False


def install() -> bool:
    """Make math-verify's symbolic comparison try :func:`provably_different` first.

    Idempotent. Returns whether the shortcut is in place (False inside :func:`disabled`, and
    where this math-verify has no ``grader.sympy_symbolic_eq`` to wrap: it then runs unchanged).
    """
    global _original
    if _disabled:
        return False
    from math_verify import grader

    current = getattr(grader, "sympy_symbolic_eq", None)
    if current is symbolic_eq:
        return True
    if not callable(current):
        logger.warning("math-verify has no grader.sympy_symbolic_eq; shortcuts not installed")
        return False
    _original = current
    grader.sympy_symbolic_eq = symbolic_eq
    return True


def uninstall() -> None:
    """Put math-verify's own comparison back, until the next :func:`install` (which
    :func:`~verifier_service.checkers.math.judge` runs before every comparison)."""
    from math_verify import grader

    if _original is not None and grader.sympy_symbolic_eq is symbolic_eq:
        grader.sympy_symbolic_eq = _original


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """math-verify's own comparison for the block, judge() included: for measuring and testing
    the shortcut against it. The next :func:`install` after the block puts it back."""
    global _disabled
    uninstall()
    _disabled = True
    try:
        yield
    finally:
        _disabled = False


def symbolic_eq(a: Any, b: Any) -> bool:
    """math-verify's ``sympy_symbolic_eq(a, b)``, answered at once when ``a - b`` is provably
    not identically zero."""
    if provably_different(a, b):
        return False
    assert _original is not None, "install() sets the original first"
    return _original(a, b)


def provably_different(a: Any, b: Any) -> bool:
    """Whether ``a - b`` takes a nonzero rational value at a point that satisfies every
    assumption on its symbols: then ``a`` and ``b`` are not equal as expressions.

    False means "not proven", never "equal".
    """
    if not (isinstance(a, Expr) and isinstance(b, Expr)):
        return False  # relations, sets, matrices, tuples: math-verify's other paths
    try:
        difference = Add(a, -b)
        symbols = sorted(difference.free_symbols, key=lambda s: (str(s), str(s.assumptions0)))
        if not symbols or not _is_small_rational_function(difference):
            return False
        point = {}
        for i, symbol in enumerate(symbols):
            value = _witness(i)
            if not isinstance(symbol, Symbol) or not _satisfies(value, symbol):
                return False
            point[symbol] = value
        value = difference.xreplace(point)
        return bool(value.is_Rational and value != 0)
    except Exception:  # any surprise: not proven, math-verify decides
        return False


def _witness(i: int) -> Rational:
    """The value given to the i-th symbol: positive, not an integer, distinct per symbol."""
    return Rational(_PRIMES[i % len(_PRIMES)], 3) + i // len(_PRIMES)


_PRIMES = (7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47)


def _satisfies(value: Rational, symbol: Symbol) -> bool:
    """Whether ``value`` has every property ``symbol`` is assumed to have (real, positive, …)."""
    for name, holds in symbol.assumptions0.items():
        if getattr(value, f"is_{name}", None) is not holds:
            return False
    return True


def _is_small_rational_function(expr: Basic) -> bool:
    """Sums, products and integer powers (degree at most :data:`MAX_DEGREE`) of symbols and
    rationals: what can be evaluated exactly, and cheaply, at a rational point."""
    degree = 1
    for nodes, node in enumerate(preorder_traversal(expr)):
        if nodes > MAX_NODES:
            return False
        if isinstance(node, (Add, Mul, Symbol)) or (node.is_Rational and node.is_finite):
            continue
        if isinstance(node, Pow):
            exponent = node.exp
            if not exponent.is_Integer:
                return False
            degree *= max(1, abs(int(exponent)))
            if degree > MAX_DEGREE:
                return False
            continue
        return False
    return True
