"""Rewrite an answer's text into the one spelling the rest of the checker reads.

Why: a right answer must not fail on how it is written. A policy (or a human) writes digits in
other scripts (full-width ``２４``, Arabic-Indic ``٢٤``), operators as Unicode (``3·8``, ``√576``,
``−1``), numbers in e-notation (``2.5e-7``, which math-verify reads as ``2.5·e − 7``), repeating
decimals as ``0.\\overline{3}``, and products as juxtaposed brackets (``3(8)``, which the LaTeX
grammar reads as ``3 + 8``). Each of these is rewritten into plain LaTeX with the same value.

Nothing here decides anything: every rewrite keeps the meaning of a well-formed answer, and an
ill-formed one stays ill-formed (``20 4`` is left for :mod:`.shape` to refuse). Pure Python
(no SymPy), so the service process can read references with it.
"""

from __future__ import annotations

import re
import unicodedata
from fractions import Fraction

__all__ = ["MAX_LAYERS", "closing_brace", "normalise", "strip_delimiters"]

#: Most layers of delimiters :func:`strip_delimiters` removes (``$\\boxed{…}$`` is two).
MAX_LAYERS = 8

#: Unicode operators and symbols -> LaTeX. Applied before NFKC, which would turn ``²`` into ``2``.
_SYMBOLS = {
    "·": r" \cdot ",
    "⋅": r" \cdot ",
    "∙": r" \cdot ",
    "×": r" \times ",
    "✕": r" \times ",
    "÷": r" \div ",
    "−": "-",
    "–": "-",
    "‐": "-",
    "‑": "-",
    "﹣": "-",
    "－": "-",
    "≤": r" \le ",
    "⩽": r" \le ",
    "≥": r" \ge ",
    "⩾": r" \ge ",
    "≠": r" \ne ",
    "≈": r" \approx ",
    "≅": r" \approx ",
    "π": r"\pi ",
    "∞": r"\infty ",
    "∪": r" \cup ",
    "∩": r" \cap ",
    "∈": r" \in ",
    "∅": r"\emptyset ",
    "±": r" \pm ",
    "°": r"^{\circ}",
    "⁄": "/",
    "∕": "/",
    "\u00a0": " ",
    "\u2009": " ",
    "\u202f": " ",
    "ⅈ": "i",
}
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
_SUPERSCRIPT_RUN = re.compile("[⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺]+")
_ROOT_INDEX = {"√": "", "∛": "[3]", "∜": "[4]"}
#: ``2.5e-7``, ``1e3``, ``6.02E+23``: a decimal mantissa, ``e``, a signed integer exponent,
#: with no letter or digit glued on either side (``2e`` alone, ``e^3`` and ``3e x`` stay).
_E_NOTATION = re.compile(r"(?<![\w.\\])(\d+(?:\.\d*)?|\.\d+)[eE]([+-]?\d+)(?![\w.])")
#: ``0.\overline{3}``, ``1.2\overline{45}``, ``0.\dot{3}`` (the digits under the bar repeat).
_REPEATING = re.compile(r"(?<![\d.])(\d*)\.(\d*)\\(?:overline|bar|dot)\{(\d+)\}")
#: A product written as juxtaposition of a number or a closing bracket with an opening
#: parenthesis: ``3(8)``, ``(20)(4)``, ``8 (16)``. The LaTeX grammar would read some as sums.
_JUXTAPOSED = re.compile(r"(\d|\))\s*\(")
_THOUSANDS = re.compile(r"(?<=\d)(?:\{,\}|,\\!|\\,)(?=\d{3}(?!\d))")
_SPACING = re.compile(
    r"(?<!\\)\\[,;:!> ]|\\q?quad\b|~|\\(?:displaystyle|textstyle|left|right)\b|\\[bB]ig+[lr]?\b"
)


def normalise(text: str) -> str:
    """``text`` with the spellings above rewritten; the same answer, in one spelling."""
    text = _unicode(text)
    text = _THOUSANDS.sub("", text)
    text = _SPACING.sub(" ", text)
    text = text.replace(r"\dfrac", r"\frac").replace(r"\tfrac", r"\frac")
    text = text.replace(r"\dbinom", r"\binom").replace(r"\tbinom", r"\binom")
    text = text.replace(r"\varnothing", r"\emptyset")
    text = _E_NOTATION.sub(_scientific, text)
    text = _REPEATING.sub(_repeating, text)
    text = _JUXTAPOSED.sub(r"\1 \\cdot (", text)
    text = _collapse_parentheses(text)
    return re.sub(r"\s+", " ", text).strip()


def strip_delimiters(text: str) -> str:
    """``text`` without the math delimiters around all of it (``$…$``, ``\\(…\\)``, …), a
    trailing full stop, or a ``\\boxed{…}`` around all of it; at most :data:`MAX_LAYERS` layers
    (each costs a pass over the text; what is left is refused by the reader)."""
    text = text.strip()
    changed = True
    for _ in range(MAX_LAYERS):
        if not changed:
            break
        changed = False
        for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"), ("**", "**")):
            if (
                len(text) > len(left) + len(right)
                and text.startswith(left)
                and text.endswith(right)
            ):
                inner = text[len(left) : -len(right)].strip()
                if not re.search(rf"(?<!\\){re.escape(left)}", inner):
                    text, changed = inner, True
        for box in ("\\boxed{", "\\fbox{"):
            if (
                text.startswith(box)
                and text.endswith("}")
                and closing_brace(text, len(box) - 1) == len(text) - 1
            ):
                text, changed = text[len(box) : -1].strip(), True
        if text.endswith("."):  # a full stop: no number ends with its decimal point
            text, changed = text[:-1].rstrip(), True
    return text


def closing_brace(text: str, opening: int) -> int:
    """Index of the brace that closes the one at ``opening``; -1 when unbalanced."""
    depth = 0
    i = opening
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _unicode(text: str) -> str:
    text = _SUPERSCRIPT_RUN.sub(lambda m: "^{" + m.group().translate(_SUPERSCRIPTS) + "}", text)
    text = _roots(text)
    text = "".join(_SYMBOLS.get(char, char) for char in text)
    text = unicodedata.normalize("NFKC", text)
    # Decimal digits of any script (Arabic-Indic, Devanagari, ...) that NFKC leaves alone.
    return "".join(
        str(unicodedata.decimal(char)) if char.isdecimal() and not char.isascii() else char
        for char in text
    )


def _roots(text: str) -> str:
    """``√576`` -> ``\\sqrt{576}``, ``√(x+1)`` -> ``\\sqrt{(x+1)}``: a root sign takes the next
    number, letter, command or bracketed group, as a reader would."""
    out: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char not in _ROOT_INDEX:
            out.append(char)
            i += 1
            continue
        j = i + 1
        while j < len(text) and text[j] == " ":
            j += 1
        atom = _ATOM.match(text, j)
        end = j
        if j < len(text) and text[j] in "({[":
            end = _matching_bracket(text, j) + 1 or j
        elif atom:
            end = atom.end()
        out.append(f"\\sqrt{_ROOT_INDEX[char]}{{{text[j:end]}}}")
        i = end
    return "".join(out)


_ATOM = re.compile(r"\d+(?:\.\d+)?|\\[A-Za-z]+|[A-Za-z]")


def _matching_bracket(text: str, start: int) -> int:
    pairs = {"(": ")", "{": "}", "[": "]"}
    opening, closing = text[start], pairs[text[start]]
    depth = 0
    for i in range(start, len(text)):
        if text[i] == opening:
            depth += 1
        elif text[i] == closing:
            depth -= 1
            if depth == 0:
                return i
    return -1


def _scientific(match: re.Match[str]) -> str:
    mantissa, exponent = match.group(1), match.group(2).lstrip("+")
    return f"{mantissa} \\times 10^{{{exponent}}}"


def _repeating(match: re.Match[str]) -> str:
    """``a.b\\overline{c}`` as the exact fraction it denotes."""
    whole, fixed, repeat = match.group(1) or "0", match.group(2), match.group(3)
    value = Fraction(int(whole + fixed + repeat) - int(whole + fixed or "0"), 1)
    value /= 10 ** len(fixed) * (10 ** len(repeat) - 1)
    return f"\\frac{{{value.numerator}}}{{{value.denominator}}}"


def _collapse_parentheses(text: str) -> str:
    """``((x))`` -> ``(x)`` and ``{{x}}`` -> ``{x}``, at any depth: the same value, and the LaTeX
    grammar's time grows steeply with nesting (40 nested pairs around ``24`` took 8 s, 16
    nested braces 40 s)."""
    if "((" not in text and "{{" not in text:
        return text
    match: dict[int, int] = {}
    stacks: dict[str, list[int]] = {"(": [], "{": []}
    closing = {")": "(", "}": "{"}
    for i, char in enumerate(text):
        if char in stacks and (char == "(" or text[i - 1 : i] != "\\"):
            stacks[char].append(i)
        elif char in closing and stacks[closing[char]] and text[i - 1 : i] != "\\":
            match[stacks[closing[char]].pop()] = i
    drop: set[int] = set()
    for opening, close in match.items():
        if match.get(opening + 1) == close - 1 and text[opening] == text[opening + 1]:
            drop.update((opening, close))
    return "".join(char for i, char in enumerate(text) if i not in drop)
