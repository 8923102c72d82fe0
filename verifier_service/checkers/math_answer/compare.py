"""Compare an answer with the reference: the strict layer around math-verify.

The verdict is ``valid`` only when every one of these holds (docs/soundness.md, "The ``math``
checker"):

1. the answer is of the reference's kind (number, expression, relation, interval, pair, tuple,
   set, matrix, text), with the same relation signs, percent sign, units and number base, and,
   for expressions and relations, the same variables by name;
2. math-verify, given both, says they are equivalent;
3. the values agree exactly, or to the precision the reference states when it is one decimal
   number (``0.333`` states ±0.0005; ``1.6 \\times 10^{-19}`` states ±0.05·10⁻¹⁹); never to
   math-verify's fixed rounding to 6 decimal places;
4. the parts of a tuple, pair or interval agree in order, and those of a set as a multiset,
   each by these same rules.

Why both: math-verify parses LaTeX and decides symbolic equivalence well, and nothing here
replaces that; but it also calls equal what a reward must not (relations cut to a side, text
ignored, small numbers rounded to zero). Where the two disagree, the verdict is ``invalid``: a
false negative costs the trainer one sample, a false positive teaches the policy a hack.

Runs in a checker worker (it imports SymPy and math-verify on first use).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

from verifier_service.checkers.math_answer.shape import Shape

__all__ = ["Judgement", "compare", "parse_core"]

#: Relative agreement at which two exact numbers that SymPy cannot subtract to a rational
#: (``\\sqrt{2}`` and ``\\frac{\\sqrt{8}}{2}``) count as equal: 40 of 50 evaluated digits.
_EXACT_DIGITS = 50
_EXACT_AGREEMENT = 40


@dataclass(frozen=True)
class Judgement:
    """``status``: ``valid``, ``wrong_answer``, ``unparsable_answer`` or
    ``uncomparable_answer``; ``detail`` says why for anything but ``valid``."""

    status: str
    detail: str = ""
    answer: Any = None
    reference: Any = None


@functools.cache
def _lib() -> SimpleNamespace:
    import sympy
    from math_verify import LatexExtractionConfig, parse, verify
    from sympy.parsing.sympy_parser import parse_expr

    return SimpleNamespace(
        sympy=sympy,
        parse=parse,
        verify=verify,
        parse_expr=parse_expr,
        latex_only=[LatexExtractionConfig()],
    )


def parse_core(core: str) -> list[Any]:
    """math-verify's reading of one answer's core (LaTeX, no delimiters): the whole text must
    parse; plain arithmetic (``2**3*3``) is read by SymPy when the LaTeX grammar cannot."""
    lib = _lib()
    found = lib.parse(
        f"${core}$",
        extraction_config=lib.latex_only,
        fallback_mode="no_fallback",
        parsing_timeout=None,
        raise_on_error=True,
    )
    if not found and _ARITHMETIC.fullmatch(core):
        try:
            found = [lib.parse_expr(core.replace("^", "**"), evaluate=False)]
        except Exception:  # SyntaxError, TokenError, ...: not an expression
            found = []
    return found


#: Plain arithmetic that SymPy may read directly (``**`` is not LaTeX). Nothing else ever reaches
#: SymPy's parser unescaped: it evaluates Python.
_ARITHMETIC = re.compile(r"[0-9\s.+\-*/^()]+")


@functools.lru_cache(maxsize=4096)
def _parse_reference(core: str) -> list[Any]:
    """A reference's (or a reference part's) parse, kept: a step sends the same reference with
    each of a prompt's samples, and SymPy objects are immutable."""
    return parse_core(core)


def compare(reference: Shape, answer: Shape, gold: list[Any] | None = None) -> Judgement:
    """Judge ``answer`` against ``reference`` (both read by :func:`~.shape.read`)."""
    answer = _align(reference, answer)
    mismatch = _shape_mismatch(reference, answer)
    if mismatch:
        return Judgement("wrong_answer", mismatch)
    if gold is None:
        gold = _parse_reference(reference.core)
    if reference.kind == "text":
        return (
            Judgement("valid")
            if reference.core == answer.core
            else Judgement("wrong_answer", "a different text")
        )
    try:
        pred = parse_core(answer.core)
    except Exception as exc:  # math-verify or SymPy failing on this answer
        return Judgement("unparsable_answer", f"math-verify: {type(exc).__name__}: {exc}")
    if not pred:
        return Judgement("unparsable_answer", "math-verify cannot parse the answer")
    if not gold:
        return Judgement("unparsable_reference", "math-verify cannot parse the reference")
    complex_ = reference.kind == "number" and (reference.uses_i or answer.uses_i)
    if complex_:
        gold, pred = [_imaginary(g) for g in gold], [_imaginary(p) for p in pred]
    as_set = reference.kind == "interval" and answer.kind == "relation"
    try:
        same = _lib().verify(
            gold, pred, timeout_seconds=None, raise_on_error=True, allow_set_relation_comp=as_set
        )
        detail = _strict_values(reference, answer, gold[0], pred[0]) if same else ""
    except Exception as exc:
        return Judgement(
            "uncomparable_answer", f"math-verify: {type(exc).__name__}: {exc}", pred, gold
        )
    if not same:
        return Judgement("wrong_answer", "math-verify: not equivalent", pred, gold)
    if detail:
        return Judgement("wrong_answer", detail, pred, gold)
    return Judgement("valid", "", pred, gold)


def _align(reference: Shape, answer: Shape) -> Shape:
    """``x = 24`` answers ``24``; ``x \\in [0, 1]`` answers ``[0, 1]``. The unit and percent
    read around the whole answer stay with it."""
    inner = None
    if answer.assigned is not None and reference.kind != "relation":
        inner = answer.assigned
    elif answer.member_of is not None and reference.kind in ("interval", "set", "pair"):
        inner = answer.member_of
    if inner is None:
        return answer
    return replace(
        inner,
        units=tuple(sorted(answer.units + inner.units)),
        percent=answer.percent or inner.percent,
    )


_FLIP = {">": "<", ">=": "<="}
_INEQUALITIES = frozenset({"<", "<=", ">", ">="})


def _shape_mismatch(reference: Shape, answer: Shape) -> str:
    """Why ``answer`` cannot be ``reference`` whatever their values; empty when it can be."""
    if reference.percent != answer.percent:
        return "percent sign differs from the reference"
    if reference.units != answer.units:
        return f"units {list(answer.units)} where the reference has {list(reference.units)}"
    if reference.base != answer.base:
        return "number base differs from the reference"
    if reference.plus_minus != answer.plus_minus:
        return "\\pm differs from the reference"
    kind, other = reference.kind, answer.kind
    if kind == "interval" and other == "relation":
        if (
            set(answer.relations) <= _INEQUALITIES
            and len(answer.variables) == 1
            and not answer.parts
            and reference.brackets != "∪"
        ):
            return ""
        return "a relation that is not an interval"
    if kind == "set" and other == "set":
        if len(reference.parts) != len(answer.parts):
            return f"{len(answer.parts)} elements where the reference has {len(reference.parts)}"
        return ""
    if kind != other:
        return f"{_article(other)} {other} where the reference is {_article(kind)} {kind}"
    if kind in ("expression", "relation", "matrix") and reference.variables != answer.variables:
        return "variables differ from the reference's"
    if kind == "relation":
        if Counter(_FLIP.get(s, s) for s in reference.relations) != Counter(
            _FLIP.get(s, s) for s in answer.relations
        ):
            return "relation signs differ from the reference's"
        if len(reference.parts) != len(answer.parts):
            return "a different number of relations"
    if kind in ("pair", "tuple", "interval") and (
        reference.brackets != answer.brackets or len(reference.parts) != len(answer.parts)
    ):
        return "brackets or length differ from the reference's"
    return ""


def _strict_values(reference: Shape, answer: Shape, gold: Any, pred: Any) -> str:
    """What the strict layer adds once math-verify said equal: exact values, and parts."""
    kind = reference.kind
    if kind == "number":
        return "" if _same_number(gold, pred, reference.stated) else _imprecise(reference)
    if kind == "interval" and reference.brackets == "∪":
        return _same_multiset(reference.parts, answer.parts)
    if kind in ("pair", "tuple", "interval") and answer.parts:
        for i, (ref_part, ans_part) in enumerate(zip(reference.parts, answer.parts, strict=True)):
            judgement = compare(ref_part, ans_part)
            if judgement.status != "valid":
                return f"part {i + 1}: {judgement.detail or judgement.status}"
        return ""
    if kind == "set":
        return _same_multiset(reference.parts, answer.parts)
    if kind in ("expression", "relation", "matrix") and (_has_float(gold) or _has_float(pred)):
        exact = _lib().verify(
            [_rationalise(gold)], [_rationalise(pred)], timeout_seconds=None, raise_on_error=True
        )
        if not exact:
            return "equal only after rounding"
    if kind == "expression" and not _same_expression(gold, pred):
        return "not exactly equal to the reference"
    if kind == "relation" and not _same_relation(gold, pred):
        return "not exactly the reference's relation"
    return ""


def _witnesses(symbols: list[Any]) -> list[dict[Any, Any]]:
    """Two exact points at which to evaluate both sides: math-verify compares expressions
    numerically to 15 digits with small values chopped to zero, so ``2x + 1 + 10^{-30}`` passed
    for ``2x + 1``. A point that breaks a symbol's assumptions is not used."""
    sympy = _lib().sympy
    points = []
    for shift in (0, 1):
        point = {
            symbol: sympy.Rational(_PRIMES[(i + shift) % len(_PRIMES)], 3 + shift)
            for i, symbol in enumerate(symbols)
        }
        if all(_satisfies(value, symbol) for symbol, value in point.items()):
            points.append(point)
    return points


_PRIMES = (7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47)


def _satisfies(value: Any, symbol: Any) -> bool:
    for name, holds in getattr(symbol, "assumptions0", {}).items():
        if getattr(value, f"is_{name}", None) is not holds:
            return False
    return True


def _same_expression(gold: Any, pred: Any) -> bool:
    """Whether two expressions math-verify called equal take exactly equal values (relative
    agreement to 40 digits, :func:`_same_number`) at two exact points. False only with a
    witness: a point where both are defined and differ."""
    sympy = _lib().sympy
    try:
        g, p = sympy.sympify(_rationalise(gold)), sympy.sympify(_rationalise(pred))
        symbols = sorted(g.free_symbols | p.free_symbols, key=str)
        if not symbols:
            return _same_number(g, p, None)
        for point in _witnesses(symbols):
            gv, pv = g.xreplace(point), p.xreplace(point)
            if gv.has(sympy.zoo, sympy.nan) or pv.has(sympy.zoo, sympy.nan):
                continue  # a pole: this point says nothing
            if gv.is_number and pv.is_number and not _same_number(gv, pv, None):
                return False
    except Exception:  # cannot evaluate: math-verify's verdict stands
        return True
    return True


def _same_relation(gold: Any, pred: Any) -> bool:
    """For one relation each: the sides' differences (turned to face the same way) agree up to a
    constant factor, positive for an inequality, exactly at two points (:func:`_same_expression`).
    Chains and systems are left to math-verify and the shape checks."""
    sympy = _lib().sympy
    relational = sympy.core.relational.Relational
    if not (isinstance(gold, relational) and isinstance(pred, relational)):
        return True
    try:
        g, p = _facing(gold), _facing(pred)
        if type(g) is not type(p):
            return True  # solved into each other by math-verify; the signs were compared
        g_side, p_side = g.lhs - g.rhs, p.lhs - p.rhs
        symbols = sorted(g_side.free_symbols | p_side.free_symbols, key=str)
        points = _witnesses(symbols) if symbols else [{}]
        for point in points:
            denominator = p_side.xreplace(point)
            if denominator.is_zero is False and denominator.is_number:
                factor = g_side.xreplace(point) / denominator
                if isinstance(g, (sympy.Eq, sympy.Ne)) or factor.is_positive:
                    return _same_expression(g_side, factor * p_side)
                return False
    except Exception:
        return True
    return True


def _facing(relation: Any) -> Any:
    """``a > b`` as ``b < a``, ``a >= b`` as ``b <= a``: one direction to compare."""
    sympy = _lib().sympy
    if isinstance(relation, (sympy.StrictGreaterThan, sympy.GreaterThan)):
        return relation.reversed
    return relation


def _imprecise(reference: Shape) -> str:
    if reference.stated:
        return "not equal to the reference at the precision the reference states"
    return "not exactly equal to the reference"


def _same_multiset(reference: tuple[Shape, ...], answer: tuple[Shape, ...]) -> str:
    unused = list(answer)
    for ref_part in reference:
        for i, ans_part in enumerate(unused):
            if compare(ref_part, ans_part).status == "valid":
                del unused[i]
                break
        else:
            return f"no element of the answer matches {ref_part.core!r}"
    return ""


def _imaginary(expr: Any) -> Any:
    """``i`` as the imaginary unit (math-verify reads it as a symbol)."""
    sympy = _lib().sympy
    if not isinstance(expr, sympy.Basic):
        return expr
    found = {s: sympy.I for s in expr.free_symbols if getattr(s, "name", "") == "i"}
    return expr.xreplace(found) if found else expr


def _has_float(expr: Any) -> bool:
    sympy = _lib().sympy
    try:
        return bool(expr.atoms(sympy.Float))
    except Exception:
        return False


def _rationalise(expr: Any) -> Any:
    """Every float as the exact decimal it was written as (``1.6`` -> ``8/5``), so that SymPy
    compares exactly instead of to 15 digits."""
    sympy = _lib().sympy
    try:
        floats = expr.atoms(sympy.Float)
    except Exception:
        return expr
    return expr.xreplace({f: sympy.Rational(str(f)) for f in floats}) if floats else expr


def _same_number(gold: Any, pred: Any, stated: tuple[int, int] | None) -> bool:
    sympy = _lib().sympy
    try:
        g = sympy.sympify(_rationalise(gold)).doit()
        p = sympy.sympify(_rationalise(pred)).doit()
    except Exception:
        return False
    if not (g.is_number and p.is_number):  # the empty set, infinity: no value to round
        return bool(g == p)
    if g.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan) or p.has(
        sympy.oo, -sympy.oo, sympy.zoo, sympy.nan
    ):
        return bool(g == p)
    difference = p - g
    if stated is not None:
        digits, power = stated
        tolerance = sympy.Rational(5, 10 ** (digits + 1)) * sympy.Integer(10) ** power
        value = sympy.Abs(difference).evalf(_EXACT_DIGITS)
        return bool(value <= tolerance)
    if difference.is_Rational:
        return bool(difference == 0)
    value = abs(complex(difference.evalf(_EXACT_DIGITS)))
    scale = max(abs(complex(g.evalf(_EXACT_DIGITS))), abs(complex(p.evalf(_EXACT_DIGITS))))
    if scale == 0:
        return value == 0
    return value <= scale * 10.0 ** (-_EXACT_AGREEMENT)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"
