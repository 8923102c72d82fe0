"""The words and commands the strict reader knows: units, hedges, functions, LaTeX commands.

Why a closed list: anything in an answer that the reader does not know is refused, not
skipped, so a policy cannot hide a second candidate or a negation in text the comparison
ignores (``24 \\text{ is wrong}``, ``\\not 24``). Extending the checker to a new notation means
adding it here, deliberately.
"""

from __future__ import annotations

__all__ = [
    "COMMANDS",
    "CONSTANTS",
    "FUNCTIONS",
    "HEDGES",
    "IGNORED_UNITS",
    "MATRIX_ENVIRONMENTS",
    "NEGATIONS",
    "PERCENT_WORDS",
    "RELATIONS",
    "TEXT_COMMANDS",
    "UNITS",
    "WORDS",
    "unit_name",
]

#: Unit spellings -> one canonical name. Compared by name: ``m`` is not ``cm``.
_UNIT_ALIASES: dict[str, tuple[str, ...]] = {
    "mm": ("mm", "millimeter", "millimeters", "millimetre", "millimetres"),
    "cm": ("cm", "centimeter", "centimeters", "centimetre", "centimetres"),
    "m": ("m", "meter", "meters", "metre", "metres"),
    "km": ("km", "kilometer", "kilometers", "kilometre", "kilometres"),
    "in": ("in", "inch", "inches"),
    "ft": ("ft", "foot", "feet"),
    "yd": ("yd", "yard", "yards"),
    "mi": ("mi", "mile", "miles"),
    "s": ("s", "sec", "second", "seconds"),
    "min": ("min", "mins", "minute", "minutes"),
    "h": ("h", "hr", "hrs", "hour", "hours"),
    "day": ("day", "days"),
    "week": ("week", "weeks"),
    "month": ("month", "months"),
    "year": ("year", "years", "yr", "yrs"),
    "mg": ("mg", "milligram", "milligrams"),
    "g": ("g", "gram", "grams"),
    "kg": ("kg", "kilogram", "kilograms"),
    "lb": ("lb", "lbs", "pound", "pounds"),
    "oz": ("oz", "ounce", "ounces"),
    "ml": ("ml", "mL", "milliliter", "milliliters", "millilitre", "millilitres"),
    "l": ("L", "liter", "liters", "litre", "litres"),
    "N": ("N", "newton", "newtons"),
    "J": ("J", "joule", "joules"),
    "W": ("W", "watt", "watts"),
    "kW": ("kW", "kilowatt", "kilowatts"),
    "V": ("V", "volt", "volts"),
    "A": ("A", "ampere", "amperes", "amp", "amps"),
    "Pa": ("Pa", "pascal", "pascals"),
    "kPa": ("kPa",),
    "Hz": ("Hz", "hertz"),
    "K": ("K", "kelvin"),
    "mol": ("mol", "mole", "moles"),
    "eV": ("eV",),
    "cal": ("cal", "calorie", "calories"),
    "kcal": ("kcal",),
    "rad": ("rad", "radian", "radians"),
    "deg": ("deg", "degree", "degrees", "^\\circ", "\\circ", "\\degree"),
    "mph": ("mph",),
    "km/h": ("km/h", "kph"),
    "m/s": ("m/s",),
    "$": ("\\$", "$", "dollar", "dollars", "usd"),
    "cent": ("cent", "cents"),
    "€": ("€", "euro", "euros"),
}
UNITS: dict[str, str] = {
    alias.lower() if len(alias) > 2 else alias: name
    for name, aliases in _UNIT_ALIASES.items()
    for alias in aliases
}
#: Words that name no unit at all ("24 square units"): dropped on both sides.
IGNORED_UNITS = frozenset({"unit", "units", "square units", "sq units", "cubic units", "sq. units"})
PERCENT_WORDS = frozenset({"%", "percent", "per cent", "pct", "percentage"})


def unit_name(text: str) -> str | None:
    """The canonical name of the unit ``text`` spells (``centimeters`` -> ``cm``), or None.

    A power suffix is kept (``cm^2`` -> ``cm^2``): square and cubic units differ."""
    text = " ".join(text.split())
    power = ""
    for suffix in ("^2", "^{2}", "^3", "^{3}", "²", "³"):
        if text.endswith(suffix) and len(text) > len(suffix):
            power = "^" + suffix.strip("^{}").replace("²", "2").replace("³", "3")
            text = text[: -len(suffix)].strip()
            break
    for prefix, exponent in (("square ", "^2"), ("sq ", "^2"), ("sq. ", "^2"), ("cubic ", "^3")):
        if text.lower().startswith(prefix) and not power:
            text, power = text[len(prefix) :].strip(), exponent
            break
    name = UNITS.get(text) or UNITS.get(text.lower()) if len(text) > 2 else UNITS.get(text)
    return name + power if name else None


#: Relation commands and signs -> a canonical sign. ``>`` is kept as ``>``; the comparison
#: turns relations around (``a > b`` is ``b < a``) before comparing signs.
RELATIONS: dict[str, str] = {
    "=": "=",
    "<": "<",
    ">": ">",
    "\\lt": "<",
    "\\gt": ">",
    "\\le": "<=",
    "\\leq": "<=",
    "\\leqslant": "<=",
    "\\ge": ">=",
    "\\geq": ">=",
    "\\geqslant": ">=",
    "\\ne": "!=",
    "\\neq": "!=",
    "\\approx": "~",
    "\\sim": "~",
    "\\simeq": "~",
    "\\equiv": "==",
    "\\cong": "==",
}
#: Commands that negate what follows: an answer using them is not one value.
NEGATIONS = frozenset({"\\not", "\\neg", "\\lnot", "\\nexists"})
#: Commands whose braced argument is text, not mathematics.
TEXT_COMMANDS = frozenset(
    {
        "\\text",
        "\\textrm",
        "\\textbf",
        "\\textit",
        "\\mathrm",
        "\\mbox",
        "\\textnormal",
        "\\operatorname",
        "\\mathit",
        "\\textsf",
        "\\texttt",
    }
)
MATRIX_ENVIRONMENTS = frozenset(
    {"matrix", "pmatrix", "bmatrix", "Bmatrix", "vmatrix", "Vmatrix", "smallmatrix", "array"}
)
FUNCTIONS = frozenset(
    {
        "sin",
        "cos",
        "tan",
        "cot",
        "sec",
        "csc",
        "arcsin",
        "arccos",
        "arctan",
        "sinh",
        "cosh",
        "tanh",
        "log",
        "ln",
        "lg",
        "exp",
        "sqrt",
        "max",
        "min",
        "gcd",
        "lcm",
        "det",
        "abs",
        "mod",
        "arg",
        "deg",
    }
)
#: Letters that are numbers, not variables: Euler's e, the imaginary unit.
CONSTANTS = frozenset({"e", "i"})
_GREEK = (
    "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu "
    "xi rho sigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Sigma Phi "
    "Psi Omega"
)
#: Every command the reader accepts, and what it is.
COMMANDS: dict[str, str] = {
    **{f"\\{name}": "variable" for name in _GREEK.split()},
    **{f"\\{name}": "function" for name in FUNCTIONS},
    **{name: "relation" for name in RELATIONS if name.startswith("\\")},
    "\\pi": "constant",
    "\\infty": "constant",
    "\\emptyset": "constant",
    "\\varnothing": "constant",
    "\\frac": "operator",
    "\\sqrt": "operator",
    "\\binom": "operator",
    "\\cdot": "operator",
    "\\times": "operator",
    "\\div": "operator",
    "\\pm": "plus_minus",
    "\\mp": "plus_minus",
    "\\cup": "set_operator",
    "\\cap": "set_operator",
    "\\setminus": "set_operator",
    "\\in": "membership",
    "\\mathbb": "operator",
    "\\mathbf": "operator",
    "\\boldsymbol": "operator",
    "\\vec": "operator",
    "\\hat": "operator",
    "\\bar": "operator",
    "\\overline": "operator",
    "\\tilde": "operator",
    "\\prime": "operator",
    "\\circ": "degree",
    "\\degree": "degree",
    "\\lbrace": "open_set",
    "\\rbrace": "close_set",
    "\\langle": "open_tuple",
    "\\rangle": "close_tuple",
    "\\lvert": "bar",
    "\\rvert": "bar",
    "\\vert": "bar",
    "\\mid": "bar",
    "\\lfloor": "operator",
    "\\rfloor": "operator",
    "\\lceil": "operator",
    "\\rceil": "operator",
    "\\dots": "operator",
    "\\ldots": "operator",
    "\\cdots": "operator",
    "\\sum": "operator",
    "\\prod": "operator",
    "\\int": "operator",
    "\\lim": "operator",
    "\\to": "operator",
    "\\partial": "operator",
    "\\begin": "environment",
    "\\end": "environment",
    "\\hline": "operator",
}
#: Words that make an answer a hedge, a negation or a list of alternatives.
HEDGES = frozenset(
    {
        "or",
        "not",
        "no",
        "nor",
        "either",
        "neither",
        "maybe",
        "perhaps",
        "possibly",
        "probably",
        "approximately",
        "approx",
        "about",
        "around",
        "roughly",
        "nearly",
        "almost",
        "likely",
        "unlikely",
        "except",
        "unless",
        "isnt",
        "isn't",
        "wrong",
        "incorrect",
        "false",
        "never",
        "actually",
        "wait",
        "but",
        "however",
        "instead",
        "rather",
        "alternatively",
        "cannot",
        "might",
        "could",
        "unsure",
        "unknown",
        "guess",
        "mistake",
        "oops",
        "hmm",
        "and",
    }
)
#: Short English words that are not products of variables (``is`` is not ``i·s``).
WORDS = frozenset(
    {
        "is",
        "the",
        "an",
        "to",
        "of",
        "so",
        "as",
        "be",
        "if",
        "it",
        "we",
        "are",
        "was",
        "yes",
        "any",
        "all",
        "few",
        "may",
        "at",
        "by",
        "for",
        "on",
        "its",
        "has",
        "had",
        "get",
        "got",
        "let",
        "say",
        "two",
        "one",
        "six",
        "ten",
        "too",
        "way",
        "use",
        "can",
        "our",
        "out",
        "see",
    }
)
