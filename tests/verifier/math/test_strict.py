"""The strict reading, piece by piece: the final answer, one spelling, the shape, and the
property that the strict layer only ever narrows what math-verify accepts."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from verifier_service.checkers.base import Policy
from verifier_service.checkers.math import MathChecker, judge
from verifier_service.checkers.math_answer import Refused, read_answer, read_reference
from verifier_service.checkers.math_answer.compare import _lib, parse_core
from verifier_service.checkers.math_answer.final_answer import final_answer
from verifier_service.checkers.math_answer.normalise import normalise
from verifier_service.checkers.math_answer.shape import read
from verifier_service.verdicts import Verdict

# --- the final answer ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("completion", "answer", "source"),
    [
        ("so $\\boxed{24}$.", "24", "boxed"),
        ("\\fbox{7}", "7", "boxed"),
        ("\\boxed{24} and again \\boxed{ 24 }", "24", "boxed"),  # the same candidate twice
        ("\\boxed{\\frac{1}{2}} square units.", "\\frac{1}{2}", "boxed"),
        ("Final answer: $x = 3$", "x = 3", "line"),
        ("The final answer is $24$. I hope it is correct.", "24", "line"),
        ("Work...\nThe answer is 2.5.", "2.5", "line"),
        ("#### 1,000", "1,000", "line"),
        ("$3 \\cdot 8$", "3 \\cdot 8", "bare"),
        ("3*8", "3*8", "bare"),
    ],
)
def test_the_final_answer_is_read_from_one_place(completion: str, answer: str, source: str) -> None:
    found = final_answer(completion)
    assert (found.text, found.source) == (answer, source)


@pytest.mark.parametrize(
    ("completion", "reason"),
    [
        ("\\boxed{24} or \\boxed{25}", "ambiguous_answer"),
        ("\\boxed{25}. No wait: \\boxed{24}", "ambiguous_answer"),
        ("The answer is not \\boxed{24}.", "ambiguous_answer"),
        ("\\boxed{24}. Hmm, actually it is 25.", "ambiguous_answer"),
        ("\\boxed{24}, though 25 also works", "ambiguous_answer"),
        ("Answer: 24\nAnswer: 25", "ambiguous_answer"),
        ("Final answer: 24\nWait, that is wrong.", "ambiguous_answer"),
        ("\\boxed{24", "unparsable_answer"),
        ("\\boxed{}", "unparsable_answer"),
        ("We compute 3 times 8.\nIt is 24.", "unparsable_answer"),  # no answer marked
    ],
)
def test_candidates_hedges_and_retractions_are_refused(completion: str, reason: str) -> None:
    with pytest.raises(Refused) as caught:
        read_answer(completion)
    assert caught.value.reason == reason


# --- one spelling --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spelled"),
    [
        ("２４", "24"),
        ("٢٤", "24"),
        ("३", "3"),  # Devanagari
        ("3·8", "3 \\cdot 8"),
        ("3×8÷2", "3 \\times 8 \\div 2"),
        ("√576", "\\sqrt{576}"),
        ("√(x+1)", "\\sqrt{(x+1)}"),
        ("−1", "-1"),
        ("x²", "x^{2}"),
        ("2.5e-7", "2.5 \\times 10^{-7}"),
        ("1e3", "1 \\times 10^{3}"),
        ("6.02E+23", "6.02 \\times 10^{23}"),
        ("e^{3}", "e^{3}"),  # Euler's e stays
        ("0.\\overline{3}", "\\frac{1}{3}"),
        ("1.1\\overline{6}", "\\frac{7}{6}"),
        ("3(8)", "3 \\cdot (8)"),
        ("(20)(4)", "(20) \\cdot (4)"),
        ("f(x)", "f(x)"),  # a function's argument is not a product
        ("((((24))))", "(24)"),
        ("1{,}000", "1000"),
        ("\\left( 1, 2 \\right]", "( 1, 2 ]"),
        ("\\dfrac{1}{2}", "\\frac{1}{2}"),
    ],
)
def test_one_spelling(text: str, spelled: str) -> None:
    assert normalise(text) == spelled


# --- the shape -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "extra"),
    [
        ("24", "number", {}),
        ("2x + 1", "expression", {"variables": frozenset({"x"})}),
        ("e^{i\\pi}", "number", {"uses_i": True}),
        ("x \\ge 3", "relation", {"relations": (">=",)}),
        ("x = 3, y = 5", "relation", {"relations": ("=", "=")}),
        ("[0, 1)", "interval", {"brackets": "[)"}),
        ("(1, 2)", "pair", {"brackets": "()"}),
        ("(1, 2, 3)", "tuple", {}),
        ("\\{1, 2\\}", "set", {"brackets": "{}"}),
        ("1, 2", "set", {"brackets": ""}),
        ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "matrix", {}),
        ("24 \\text{ cm}^2", "number", {"units": ("cm^2",)}),
        ("12\\%", "number", {"percent": True}),
        ("1010_2", "number", {"base": "2"}),
        ("0.250", "number", {"stated": (3, 0)}),
        ("1.6 \\times 10^{-19}", "number", {"stated": (1, -19)}),
        ("\\text{Monday}", "text", {}),
    ],
)
def test_the_shape_of_an_answer(text: str, kind: str, extra: dict[str, object]) -> None:
    shape = read(normalise(text))
    assert shape.kind == kind
    for name, value in extra.items():
        assert getattr(shape, name) == value, name


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("20 4", "unparsable_answer"),
        ("\\neq 24", "unparsable_answer"),
        ("24 \\text{ thousand}", "unparsable_answer"),
        ("24 \\text{ or } 25", "ambiguous_answer"),
        ("\\not 24", "ambiguous_answer"),
        ("24_{x}", "unparsable_answer"),
        ("\\frobnicate{24}", "unparsable_answer"),
        ("(1, 2", "unparsable_answer"),
        ("(1+" * 30 + "1" + ")" * 30, "unparsable_answer"),  # too deep, not slow
        ("x" * 3000, "unparsable_answer"),
    ],
)
def test_what_the_reader_refuses(text: str, reason: str) -> None:
    with pytest.raises(Refused) as caught:
        read(normalise(text))
    assert caught.value.reason == reason


def test_references_are_read_without_sympy() -> None:
    """The service process reads every reference in ``prepare``: it must stay light."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from verifier_service.checkers.math_answer import read_reference\n"
        "read_reference('x = 3, y = 5'); read_reference('24 \\\\text{ cm}')\n"
        "print('sympy' in sys.modules, 'math_verify' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# --- the strict layer only narrows math-verify -----------------------------------------------

_PIECES = st.sampled_from(
    [
        *"0123456789xy+-*/^()=<>., ",
        "24",
        "2.4",
        "\\frac{",
        "}{",
        "}",
        "\\cdot ",
        "\\neq ",
        "\\le ",
        "\\text{ cm}",
        "\\text{ or }",
        "\\%",
        "\\{",
        "\\}",
        "[",
        "]",
        "10^{-19}",
        "\\sqrt{",
        "\\pi",
        " or ",
        "not ",
        "\\times ",
    ]
)
_REFERENCES = st.sampled_from(
    [
        "24",
        "0.5",
        "\\frac{1}{3}",
        "1.6 \\times 10^{-19}",
        "x = 3",
        "x \\le 2",
        "[0, 1]",
        "(1, 2)",
        "\\{1, 2\\}",
        "24 \\text{ cm}",
        "12\\%",
        "2x + 1",
        "\\sqrt{2}",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.lists(_PIECES, min_size=1, max_size=8).map("".join),
    boxed=st.booleans(),
    reference=_REFERENCES,
)
def test_the_strict_layer_never_turns_a_math_verify_invalid_into_valid(
    body: str, boxed: bool, reference: str
) -> None:
    """Whenever the checker says ``valid``, math-verify alone, on the same final answer (after
    the spelling is normalised, units and percent set aside), says equivalent too."""
    code = f"so \\boxed{{{body}}}." if boxed else body
    if not code.strip():
        return
    status = judge(code, reference, 30.0)["status"]
    if status != "valid":
        return
    gold = parse_core(read_reference(reference).core)
    pred = parse_core(read_answer(code).core)
    as_set = read_reference(reference).kind == "interval"
    assert _lib().verify(gold, pred, timeout_seconds=None, allow_set_relation_comp=as_set), (
        code,
        reference,
    )


# --- faults inside math-verify are the answer's, and the worker lives on ----------------------


@pytest.mark.parametrize(
    ("code", "answer"),
    [
        ("\\boxed{\\frac{0}{0}\\%}", "24\\%"),
        ("(\\frac{0}{0}, 1)", "(2, 1)"),
        ("x < 1", "x \\ne 1"),
        ("\\boxed{\\frac{1}{0}}", "24"),
    ],
)
async def test_math_verify_failures_are_invalid_and_the_worker_lives_on(
    math_checker: MathChecker, code: str, answer: str
) -> None:
    def job(code: str, answer: str):
        return math_checker.prepare(
            code=code, header=None, statement=None, answer=answer, timeout_s=30.0, policy=Policy()
        )

    recycled = math_checker.stats()["pools_recycled"]
    outcome = await math_checker.check(job(code, answer))
    assert outcome.verdict is Verdict.INVALID, outcome
    assert outcome.reasons[0] in ("wrong_answer", "unparsable_answer", "uncomparable_answer")
    assert (await math_checker.check(job("3*8", "24"))).verdict is Verdict.VALID
    assert math_checker.stats()["pools_recycled"] == recycled


async def test_a_deeply_nested_small_answer_is_judged_in_time(math_checker: MathChecker) -> None:
    code = "(" * 40 + "24" + ")" * 40
    job = math_checker.prepare(
        code=code, header=None, statement=None, answer="24", timeout_s=5.0, policy=Policy()
    )
    assert (await math_checker.check(job)).verdict is Verdict.VALID


@pytest.mark.parametrize(
    "text",
    [
        "\\boxed{" * 5000 + "1" + "}" * 5000,  # each layer would be a pass over the text
        "$" * 10001,
        "3+" * 3000 + "3",
    ],
)
def test_text_too_long_for_one_answer_is_refused_before_it_is_rewritten(text: str) -> None:
    for reader in (read_reference, read_answer):
        with pytest.raises(Refused) as caught:
            reader(text)
        assert caught.value.reason == "unparsable_answer"
