"""Read the shape of one answer: its kind, signs, units and parts, without evaluating it.

Why: math-verify answers "are these two equal?" after dropping what it does not model (relation
signs, text, units, a second candidate), so ``\\boxed{\\neq 24}`` and ``24 \\text{ m}`` pass for
``24`` and ``24 \\text{ cm}``. The strict comparison first asks whether the answer is the same
*kind of thing* as the reference, with the same signs, percent and units, and only then asks
math-verify about the values. This module reads those properties from the text itself, token
by token, with a closed vocabulary (:mod:`.vocabulary`): what it does not know, it refuses.

Pure Python and linear in the text, so the service reads every reference with it before any
check runs (an unreadable reference is the client's mistake, a 422).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field, replace
from typing import Literal

from verifier_service.checkers.math_answer.vocabulary import (
    COMMANDS,
    CONSTANTS,
    FUNCTIONS,
    HEDGES,
    IGNORED_UNITS,
    MATRIX_ENVIRONMENTS,
    NEGATIONS,
    PERCENT_WORDS,
    RELATIONS,
    TEXT_COMMANDS,
    WORDS,
    unit_name,
)

__all__ = ["Kind", "Refused", "Shape", "read"]

Kind = Literal[
    "number", "expression", "relation", "interval", "pair", "tuple", "set", "matrix", "text"
]

#: Longest answer or reference read (characters); beyond, it is refused, not parsed.
MAX_CHARS = 2000
#: Deepest bracket nesting read, after :func:`~.normalise.normalise` collapsed ``((…))``.
MAX_DEPTH = 24


class Refused(ValueError):
    """The text is not one answer the checker can compare; ``reason`` is the verdict's reason
    (``unparsable_answer`` or ``ambiguous_answer``)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Shape:
    """What an answer is, read from its text. ``core`` is what math-verify parses: the answer
    without its units and percent sign (they are compared here, by name)."""

    kind: Kind
    core: str
    #: Canonical relation signs at the top level, in order (``x > 1`` -> ``(">",)``).
    relations: tuple[str, ...] = ()
    #: Names of the free variables (letters, Greek letters; not ``e``, ``i``, ``\\pi``).
    variables: frozenset[str] = frozenset()
    percent: bool = False
    units: tuple[str, ...] = ()
    #: A number's base subscript (``1010_2`` -> ``"2"``).
    base: str | None = None
    #: For pair / tuple / set / interval: the parts, in written order.
    parts: tuple[Shape, ...] = ()
    #: For pair / tuple / set / interval: the bracket characters (``"[)"``, ``"{}"``, ``""``).
    brackets: str = ""
    #: For a number written as one decimal literal (``0.333``, ``1.6 \\times 10^{-19}``): the
    #: tolerance it states, as ``(digits after the point, power of ten)``.
    stated: tuple[int, int] | None = None
    uses_i: bool = False
    plus_minus: bool = False
    #: ``x = 24``: the assigned value's shape, for a reference that is not a relation.
    assigned: Shape | None = None
    #: ``x \\in [0, 1]``: the set's shape.
    member_of: Shape | None = None
    #: For a text answer (``\\text{Monday}``): its words as written.
    words: tuple[str, ...] = field(default=(), compare=False)


_TOKEN = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<num>\d+(?:\.\d+)?|\.\d+)"
    r"|(?P<cmd>\\[A-Za-z]+)"
    r"|(?P<esc>\\[{}%$&#_|])"
    r"|(?P<row>\\\\)"
    r"|(?P<word>[A-Za-z]+(?:'[a-z]+)?)"
    r"|(?P<op>[-+*/^_=<>!(),;\[\]{}|&':%$.])"
)
_OPENERS = frozenset({"(", "[", "{", "\\{", "\\langle", "\\lbrace"})
_CLOSE = {")", "]", "}", "\\}", "\\rangle", "\\rbrace"}


@dataclass
class _Token:
    kind: str
    text: str
    start: int
    end: int


def read(text: str) -> Shape:
    """The :class:`Shape` of one answer (already extracted and normalised); raises
    :class:`Refused` for text that is not one readable answer."""
    if len(text) > MAX_CHARS:
        raise Refused("unparsable_answer", f"longer than {MAX_CHARS} characters")
    tokens, units, percent, words, hedges = _scan(text)
    has_math = any(t.kind != "word" for t in tokens) or bool(units)
    if not has_math and (hedges or (words and tokens)):
        raise Refused("unparsable_answer", "no mathematics in the answer")
    if hedges:
        raise Refused("ambiguous_answer", f"{hedges[0]!r} in the answer")
    if not tokens:
        if words and not units:
            return Shape(kind="text", core=" ".join(words).lower(), words=tuple(words))
        raise Refused("unparsable_answer", "no mathematics in the answer")
    if words:
        raise Refused("unparsable_answer", f"text in the answer: {' '.join(words)!r}")
    shape = _classify(tokens)
    return replace(shape, percent=percent or shape.percent, units=tuple(sorted(units)))


def _scan(text: str) -> tuple[list[_Token], list[str], bool, list[str], list[str]]:
    """Tokens of the mathematics, with units, percent signs and text taken out."""
    tokens: list[_Token] = []
    units: list[str] = []
    words: list[str] = []
    hedges: list[str] = []
    percent = False
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise Refused("unparsable_answer", f"unexpected {text[position]!r} in the answer")
        kind, value = match.lastgroup or "", match.group()
        position = match.end()
        if kind == "space":
            continue
        if kind == "cmd" and value in TEXT_COMMANDS:
            content, position = _braced(text, position)
            token = _text_group(value, content, units, words)
            if token is not None:
                kind = "num" if token[0].isdigit() else "word"
                tokens.append(_Token(kind, token, match.start(), position))
                continue
            position = _unit_power(text, position, units)
            percent = percent or bool(units and units[-1] == "%" and units.pop())
            continue
        if kind == "cmd" and value in ("\\begin", "\\end"):
            name, position = _braced(text, position)
            if name.strip().rstrip("*") not in MATRIX_ENVIRONMENTS:
                raise Refused("unparsable_answer", f"an environment that is not a matrix: {name}")
            tokens.append(_Token("env", f"{value}{{{name.strip()}}}", match.start(), position))
            if value == "\\begin" and name.strip() == "array":
                _, position = _braced(text, position)  # the column specification
            continue
        if kind == "cmd" and value in NEGATIONS:
            raise Refused("ambiguous_answer", f"a negation ({value}) in the answer")
        if kind == "cmd" and value not in COMMANDS:
            raise Refused("unparsable_answer", f"unknown command {value}")
        if (kind == "esc" and value == "\\%") or (kind == "op" and value == "%"):
            percent = True
            continue
        if (kind == "esc" and value == "\\$") or (kind == "op" and value == "$"):
            units.append("$")
            continue
        if kind == "op" and value == "^" and _degree_follows(text, position):
            position = _skip_degree(text, position)
            units.append("deg")
            continue
        if kind == "word":
            lowered = value.lower()
            if lowered in HEDGES:
                hedges.append(value)
                continue
            if lowered in PERCENT_WORDS:
                percent = True
                continue
            unit = unit_name(value) if len(value) >= 2 else None
            if unit is not None and lowered not in FUNCTIONS and _ends_math(text, position):
                units.append(unit)
                continue
            if lowered in IGNORED_UNITS or (lowered == "square" and "units" in text[position:]):
                continue
            if lowered in WORDS or (len(value) >= 4 and lowered not in FUNCTIONS):
                words.append(value)
                continue
        tokens.append(_Token(kind, value, match.start(), match.end()))
    units = [unit for unit in units if unit not in IGNORED_UNITS]
    return tokens, units, percent, words, hedges


def _braced(text: str, position: int) -> tuple[str, int]:
    """The content of the ``{…}`` group at ``position`` (spaces allowed before it)."""
    while position < len(text) and text[position] == " ":
        position += 1
    if position >= len(text) or text[position] != "{":
        raise Refused("unparsable_answer", "a text command without its {argument}")
    depth = 0
    for i in range(position, len(text)):
        if text[i] == "{" and text[i - 1] != "\\":
            depth += 1
        elif text[i] == "}" and text[i - 1] != "\\":
            depth -= 1
            if depth == 0:
                return text[position + 1 : i], i + 1
    raise Refused("unparsable_answer", "unbalanced braces")


def _text_group(command: str, content: str, units: list[str], words: list[str]) -> str | None:
    """Sort a ``\\text{…}`` group: a unit or percent (recorded), a letter or function name (a
    math token, returned), nothing, or words (recorded, and refused unless all is text)."""
    content = " ".join(content.replace("\\ ", " ").replace("~", " ").split())
    if not content or content in (".", "!"):
        return None
    if re.fullmatch(r"\d+(?:\.\d+)?", content):
        return content
    if content in PERCENT_WORDS or content.lower() in PERCENT_WORDS:
        units.append("%")
        return None
    if content.lower() in IGNORED_UNITS:
        return None
    name = unit_name(content)
    if name is not None and (command != "\\mathrm" or len(content) > 1):
        units.append(name)
        return None
    if re.fullmatch(r"[A-Za-z]", content) or content.lower() in FUNCTIONS:
        return content
    for word in re.findall(r"[A-Za-z']+|[^\sA-Za-z']+", content):
        if word.lower().strip("'") in HEDGES:
            raise Refused("ambiguous_answer", f"{content!r} in the answer")
    words.append(content)
    return None


def _unit_power(text: str, position: int, units: list[str]) -> int:
    """``\\text{cm}^2``: fold the power into the unit just read."""
    match = re.compile(r"\s*\^\s*(?:\{\s*([23])\s*\}|([23]))").match(text, position)
    if match and units and units[-1] not in ("%", "$"):
        units[-1] += "^" + (match.group(1) or match.group(2))
        return match.end()
    return position


_DEGREE = re.compile(r"\s*(?:\{\s*\\circ\s*\}|\\circ\b|\{\s*\\degree\s*\})")


def _degree_follows(text: str, position: int) -> bool:
    return _DEGREE.match(text, position) is not None


def _skip_degree(text: str, position: int) -> int:
    match = _DEGREE.match(text, position)
    assert match is not None
    return match.end()


def _ends_math(text: str, position: int) -> bool:
    """Whether only units, spaces and punctuation follow: a unit word closes an answer."""
    rest = text[position:]
    return re.fullmatch(r"[\sA-Za-z/^{}\d.,]*", rest) is not None and not re.search(r"[=<>]", rest)


# --- classification -------------------------------------------------------------------------


def _classify(tokens: list[_Token]) -> Shape:
    if not tokens:
        raise Refused("unparsable_answer", "an empty part of the answer")
    core = _join(tokens)
    _check_balance(tokens)
    _check_juxtaposed_numbers(tokens)
    top = _top_level(tokens)
    if any(t.kind == "env" for t in tokens):
        return _matrix(tokens, core)
    if any(t.kind == "row" or t.text == "&" for t in tokens):
        raise Refused("unparsable_answer", "a row or column separator outside a matrix")
    relation_at = [i for i in top if _is_relation(tokens[i])]
    commas = [i for i in top if tokens[i].text in (",", ";")]
    if relation_at and commas:
        return _system(tokens, commas, core)
    if relation_at:
        return _relation(tokens, relation_at, core)
    membership = [i for i in top if tokens[i].text == "\\in"]
    if membership:
        return _membership(tokens, membership, core)
    if any(tokens[i].text in ("\\cup", "\\cap", "\\setminus") for i in top):
        parts = tuple(
            _classify(part)
            for part in _split(
                tokens, [i for i in top if tokens[i].text in ("\\cup", "\\cap", "\\setminus")]
            )
        )
        return Shape(
            kind="interval", core=core, parts=parts, brackets="∪", variables=_union_variables(parts)
        )
    enclosed = _enclosing(tokens)
    if enclosed is not None:
        return _bracketed(tokens, enclosed, core)
    if commas:
        parts = tuple(_classify(part) for part in _split(tokens, commas))
        return Shape(
            kind="set", core=core, parts=parts, brackets="", variables=_union_variables(parts)
        )
    return _scalar(tokens, core)


def _join(tokens: list[_Token]) -> str:
    out: list[str] = []
    for token in tokens:
        if out and (
            (token.kind in ("num", "word") and out[-1][-1:].isalnum())
            or (out[-1].startswith("\\") and out[-1][-1].isalpha() and token.text[:1].isalnum())
        ):
            out.append(" ")
        out.append(token.text)
    return "".join(out)


def _check_balance(tokens: list[_Token]) -> None:
    depth = 0
    for token in tokens:
        if token.text in _OPENERS:
            depth += 1
        elif token.text in _CLOSE:
            depth -= 1
        if depth < 0:
            raise Refused("unparsable_answer", "unbalanced brackets")
        if depth > MAX_DEPTH:
            raise Refused("unparsable_answer", f"nested deeper than {MAX_DEPTH} brackets")
    if depth != 0:
        raise Refused("unparsable_answer", "unbalanced brackets")


def _check_juxtaposed_numbers(tokens: list[_Token]) -> None:
    """``20 4`` is not 24 nor 80: two numbers side by side are no answer."""
    for i, (before, after) in enumerate(itertools.pairwise(tokens)):
        scripted = i > 0 and tokens[i - 1].text in ("_", "^")  # the 2 of \log_2 8
        if before.kind == "num" and after.kind == "num" and not scripted:
            raise Refused(
                "unparsable_answer", f"two numbers side by side: {before.text} {after.text}"
            )
        if "." in (before.text, after.text) and "num" in (before.kind, after.kind):
            raise Refused("unparsable_answer", "a stray decimal point")
        if after.text == "'" and before.kind != "word" and before.text != "'":
            raise Refused("unparsable_answer", "a prime on something that is not a variable")
        if after.text == "_" and before.kind == "num" and not _is_base(tokens, i):
            raise Refused("unparsable_answer", "a subscript on a number inside an expression")
    texts = [token.text for token in tokens]
    for i, token in enumerate(tokens[:-7]):
        # 1\frac{1}{2}: a mixed number (1.5) to a reader, a product (0.5) to the LaTeX grammar.
        if token.kind == "num" and texts[i + 1 : i + 3] == ["\\frac", "{"]:
            numbers = tokens[i + 3], tokens[i + 6]
            if all(t.kind == "num" for t in numbers) and texts[i + 4 : i + 6] == ["}", "{"]:
                raise Refused("unparsable_answer", "a number before a fraction of numbers")


def _is_base(tokens: list[_Token], number: int) -> bool:
    """Whether the subscript after ``tokens[number]`` is the whole answer's number base
    (``1010_2``): the only place a number may carry one."""
    rest = [token.text for token in tokens[number + 2 :]]
    return number == 0 and (
        len(rest) == 1 or (len(rest) == 3 and rest[0] == "{" and rest[2] == "}")
    )


def _top_level(tokens: list[_Token]) -> list[int]:
    """Indices of the tokens outside every bracket (intervals such as ``[0, 1)`` included)."""
    top: list[int] = []
    depth = 0
    for i, token in enumerate(tokens):
        if token.text in _OPENERS:
            depth += 1
            continue
        if token.text in _CLOSE:
            depth -= 1
            continue
        if depth == 0:
            top.append(i)
    return top


def _is_relation(token: _Token) -> bool:
    return token.text in RELATIONS and token.kind in ("op", "cmd")


def _split(tokens: list[_Token], at: list[int]) -> list[list[_Token]]:
    parts: list[list[_Token]] = []
    start = 0
    for i in [*at, len(tokens)]:
        part = tokens[start:i]
        if not part:
            raise Refused("unparsable_answer", "an empty part between separators")
        parts.append(part)
        start = i + 1
    return parts


def _variables(tokens: list[_Token]) -> frozenset[str]:
    names: set[str] = set()
    for _i, token in enumerate(tokens):
        if token.kind == "word":
            if token.text.lower() in FUNCTIONS:
                continue
            names.update(ch for ch in token.text if ch not in CONSTANTS)
        elif token.kind == "cmd" and COMMANDS.get(token.text) == "variable":
            names.add(token.text)
        elif token.kind == "cmd" and token.text == "\\mathbb":
            return frozenset(names)  # \mathbb{R}: a set's name, not a variable
    return frozenset(names)


def _union_variables(parts: tuple[Shape, ...]) -> frozenset[str]:
    return frozenset().union(*(part.variables for part in parts))


def _relation(tokens: list[_Token], at: list[int], core: str) -> Shape:
    if at[0] == 0 or at[-1] == len(tokens) - 1:
        raise Refused("unparsable_answer", "a relation with a side missing")
    for left, right in itertools.pairwise(at):
        if right == left + 1:
            raise Refused("unparsable_answer", "two relation signs side by side")
    signs = tuple(RELATIONS[tokens[i].text] for i in at)
    shape = Shape(kind="relation", core=core, relations=signs, variables=_variables(tokens))
    if signs == ("=",):
        lhs, rhs = tokens[: at[0]], tokens[at[0] + 1 :]
        if _is_single_variable(lhs):
            assigned = _classify(rhs)
            shape = replace(shape, assigned=assigned)
    return shape


def _system(tokens: list[_Token], commas: list[int], core: str) -> Shape:
    parts = tuple(_classify(part) for part in _split(tokens, commas))
    if any(part.kind != "relation" for part in parts):
        raise Refused("unparsable_answer", "a list that mixes relations with values")
    signs = tuple(sorted(sign for part in parts for sign in part.relations))
    return Shape(
        kind="relation", core=core, relations=signs, parts=parts, variables=_union_variables(parts)
    )


def _membership(tokens: list[_Token], at: list[int], core: str) -> Shape:
    if len(at) != 1 or not _is_single_variable(tokens[: at[0]]):
        raise Refused("unparsable_answer", "a membership that is not 'variable \\in set'")
    member_of = _classify(tokens[at[0] + 1 :])
    return Shape(
        kind="relation",
        core=core,
        relations=("in",),
        member_of=member_of,
        variables=_variables(tokens[: at[0]]) | member_of.variables,
    )


def _is_single_variable(tokens: list[_Token]) -> bool:
    if not tokens:
        return False
    head = tokens[0]
    single = (head.kind == "word" and len(head.text) == 1) or COMMANDS.get(head.text) == "variable"
    if len(tokens) == 1:
        return single
    # x_1, x_{n}
    return (
        single
        and tokens[1].text == "_"
        and all(t.kind != "op" or t.text in "_{}" for t in tokens[2:])
    )


def _enclosing(tokens: list[_Token]) -> tuple[int, int] | None:
    """``(first, last)`` when one bracket pair encloses all tokens and holds a top-level
    comma, or is a set's braces."""
    first, last = tokens[0].text, tokens[-1].text
    openers = ("(", "[", "\\{", "\\langle", "\\lbrace")
    if first not in openers or last not in _CLOSE:
        return None
    depth = 0
    commas = 0
    for i, token in enumerate(tokens):
        if token.text in _OPENERS:
            depth += 1
        elif token.text in _CLOSE:
            depth -= 1
            if depth == 0 and i != len(tokens) - 1:
                return None
        elif depth == 1 and token.text == ",":
            commas += 1
    if first in ("\\{", "\\lbrace") or commas:
        return 0, len(tokens) - 1
    return None


def _bracketed(tokens: list[_Token], enclosed: tuple[int, int], core: str) -> Shape:
    first, last = tokens[0].text, tokens[-1].text
    inner = tokens[1:-1]
    commas = [i for i in _top_level(inner) if inner[i].text == ","]
    parts = tuple(_classify(part) for part in _split(inner, commas)) if inner else ()
    variables = _union_variables(parts)
    brackets = _bracket_name(first) + _bracket_name(last)
    if first in ("\\{", "\\lbrace"):
        if last not in ("\\}", "\\rbrace"):
            raise Refused("unparsable_answer", "a set not closed by \\}")
        return Shape(kind="set", core=core, parts=parts, brackets="{}", variables=variables)
    if first == "\\langle":
        return Shape(kind="tuple", core=core, parts=parts, brackets="<>", variables=variables)
    if len(parts) == 2 and first in "([" and last in ")]":
        kind: Kind = "pair" if brackets == "()" else "interval"
        return Shape(kind=kind, core=core, parts=parts, brackets=brackets, variables=variables)
    if brackets not in ("()", "[]"):
        raise Refused("unparsable_answer", f"brackets {brackets} around {len(parts)} parts")
    return Shape(kind="tuple", core=core, parts=parts, brackets=brackets, variables=variables)


def _bracket_name(text: str) -> str:
    return {"\\{": "{", "\\}": "}", "\\lbrace": "{", "\\rbrace": "}"}.get(text, text)


def _matrix(tokens: list[_Token], core: str) -> Shape:
    if tokens[0].kind != "env" or tokens[-1].kind != "env":
        raise Refused("unparsable_answer", "a matrix with something outside it")
    return Shape(kind="matrix", core=core, variables=_variables(tokens))


_STATED = re.compile(r"-?(\d+)\.(\d+)(?:(?:\\times|\\cdot)10\^(?:\{(-?\d+)\}|(\d)))?")


def _scalar(tokens: list[_Token], core: str) -> Shape:
    if _is_relation(tokens[0]) or tokens[-1].text in (
        "+",
        "-",
        "*",
        "/",
        "^",
        "_",
        "\\cdot",
        "\\times",
        "\\div",
        "=",
        "\\pm",
    ):
        raise Refused("unparsable_answer", "an expression that is cut short")
    base = None
    for i, token in enumerate(tokens[:-1]):
        if token.text == "_" and i > 0 and tokens[i - 1].kind == "num":
            if i != len(tokens) - 2 and not (tokens[i + 1].text == "{" and tokens[-1].text == "}"):
                raise Refused("unparsable_answer", "a subscript inside a number")
            base = "".join(t.text for t in tokens[i + 1 :]).strip("{}")
            tokens = tokens[:i]
            core = _join(tokens)
            break
    if base is not None and not (base.isdigit() and 2 <= int(base) <= 36):
        raise Refused("unparsable_answer", f"a number with subscript {base!r}")
    variables = _variables(tokens)
    uses_i = any(
        t.kind == "word" and "i" in t.text and t.text.lower() not in FUNCTIONS for t in tokens
    )
    stated = None
    compact = core.replace(" ", "")
    match = _STATED.fullmatch(compact)
    if match:
        stated = (len(match.group(2)), int(match.group(3) or match.group(4) or 0))
    return Shape(
        kind="expression" if variables else "number",
        core=core,
        variables=variables,
        base=base,
        stated=stated,
        uses_i=uses_i,
        plus_minus=any(COMMANDS.get(t.text) == "plus_minus" for t in tokens),
    )
