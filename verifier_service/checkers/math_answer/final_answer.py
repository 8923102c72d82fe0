"""Find the one final answer of a completion, or refuse the completion.

The rule (docs/soundness.md, "The ``math`` checker"):

1. If the completion has a ``\\boxed{…}`` (or ``\\fbox{…}``), its final answer is the last one.
   Several boxes with different contents are several candidates: ``ambiguous_answer``. So is a
   box in a clause that negates or hedges it (``the answer is not \\boxed{24}``, ``24 or
   \\boxed{25}``), and a box followed by anything that could retract it: a number, or a word
   such as "actually", "wait", "not", "or" (``\\boxed{24}. Hmm, actually it is 25.``).
2. Otherwise, an explicit final-answer line: ``Final answer: …``, ``The (final) answer is …``,
   ``Answer: …``, ``#### …``. Several such lines with different answers are
   ``ambiguous_answer``, and so is a retraction after the last one.
3. Otherwise, a completion of one line that is a bare expression (``3*8``, ``$\\frac{1}{2}$``)
   is its own answer, as before.
4. Anything else has no final answer: ``unparsable_answer``.

Why so strict: an RL policy is rewarded for whatever passes. A grader that searches a
completion for *some* matching answer rewards listing candidates, hedging, and retracting;
reading exactly one answer, from a fixed place, does not.

What is inside the answer (text, a second candidate, a negation) is judged by :mod:`.shape`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from verifier_service.checkers.math_answer.normalise import strip_delimiters
from verifier_service.checkers.math_answer.shape import Refused

__all__ = ["FinalAnswer", "final_answer"]

#: Words that, after an answer, may take it back, and, before it in its clause, negate it.
_RETRACTION = re.compile(
    r"\b(?:actually|wait|but|however|instead|rather|alternatively|or|not|no|never|wrong|"
    r"incorrect|mistake|error|oops|hmm|maybe|perhaps|possibly|probably|might|unsure|correction|"
    r"recheck\w*|reconsider\w*|revis\w*|cannot|nor|either|except|unless|approximately|about|"
    r"roughly|around|nearly|almost)\b|n't\b|\?",
    re.IGNORECASE,
)
#: Phrases that may close a completion after its answer without retracting it.
_CLOSINGS = re.compile(r"(?i)\s*i hope (?:it|this|that) is (?:correct|right)\s*[.!]?")
_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")
_FINAL_LINE = re.compile(
    r"(?im)(?:\bfinal\s+answer\b\s*(?:is\b|:)?|\bthe\s+answer\s+is\b|\banswer\s*:|^\s*#{2,}(?!#))"
    r"\s*:?"
)
_FILLER = frozenset({"", "the", "is", "the final answer is", "final answer", "answer"})


@dataclass(frozen=True)
class FinalAnswer:
    """The answer's text (math delimiters removed) and where it was found."""

    text: str
    source: Literal["boxed", "line", "bare"]


def final_answer(completion: str) -> FinalAnswer:
    """The completion's one final answer; raises :class:`~.shape.Refused` when it has none or
    offers more than one."""
    text = completion.strip()
    boxes = _boxes(text)
    if boxes:
        return _from_boxes(text, boxes)
    lines = list(_FINAL_LINE.finditer(text))
    if lines:
        return _from_lines(text, lines)
    return _bare(text)


def _boxes(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, content)`` of every top-level box, in order."""
    found: list[tuple[int, int, str]] = []
    position = 0
    while True:
        match = _BOX.search(text, position)
        if match is None:
            return found
        close = _closing_brace(text, match.end() - 1)
        if close < 0:
            raise Refused("unparsable_answer", "a \\boxed{ that is never closed")
        found.append((match.start(), close + 1, text[match.end() : close]))
        position = close + 1


def _closing_brace(text: str, opening: int) -> int:
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


def _from_boxes(text: str, boxes: list[tuple[int, int, str]]) -> FinalAnswer:
    contents = {_squash(content) for _, _, content in boxes}
    if len(contents) > 1:
        raise Refused("ambiguous_answer", f"{len(contents)} different boxed answers")
    start, end, content = boxes[-1]
    _check_clause_before(text[:start])
    _check_after(text[end:])
    answer = strip_delimiters(content)
    if not answer:
        raise Refused("unparsable_answer", "an empty \\boxed{}")
    return FinalAnswer(answer, "boxed")


def _from_lines(text: str, lines: list[re.Match[str]]) -> FinalAnswer:
    answers: list[str] = []
    last_end = len(text)
    for i, line in enumerate(lines):
        stop = lines[i + 1].start() if i + 1 < len(lines) else len(text)
        newline = text.find("\n", line.end())
        if 0 <= newline < stop:
            stop = newline
        candidate, rest_at = _sentence(text[line.end() : stop])
        candidate = strip_delimiters(re.sub(r"^\s*\*\*|\*\*\s*$", "", candidate))
        if candidate.lower().strip(" .:") in _FILLER:
            continue
        answers.append(candidate)
        last_end = line.end() + rest_at
        _check_clause_before(text[: line.start()])
    if not answers:
        raise Refused("unparsable_answer", "a final-answer line with no answer")
    if len({_squash(answer) for answer in answers}) > 1:
        raise Refused("ambiguous_answer", f"{len(answers)} different final answers")
    _check_after(text[last_end:])
    return FinalAnswer(answers[-1], "line")


_SENTENCE_PARTS = re.compile(r"\$[^$]*\$|\\\(.*?\\\)|(?P<stop>\.(?:\s|$))")


def _sentence(text: str) -> tuple[str, int]:
    """The answer part of a final-answer line: up to the end of its sentence (a full stop
    followed by a space, not a decimal point nor one inside ``$…$``) or of the line."""
    for part in _SENTENCE_PARTS.finditer(text):
        if part.group("stop"):
            return text[: part.start()], part.end()
    return text, len(text)


def _check_clause_before(before: str) -> None:
    """A negation or alternative just before the answer, in its clause, refuses it."""
    clause = re.split(r"[.;:\n]|,\s", before[-200:])[-1][-80:]
    if _RETRACTION.search(clause):
        raise Refused("ambiguous_answer", f"the answer is hedged: {clause.strip()!r}")


def _check_after(after: str) -> None:
    """Anything after the answer that could offer another one, or take it back."""
    rest = _CLOSINGS.sub(" ", after)
    rest = re.sub(r"\\[\])]|\$+|\*\*|[.!,;:)\]}\s]", " ", rest)
    if re.search(r"\d|\\boxed|\\fbox|%|\bper\s*cent", rest) or _RETRACTION.search(rest):
        raise Refused(
            "ambiguous_answer", f"text after the answer may retract it: {rest.strip()[:80]!r}"
        )


def _bare(text: str) -> FinalAnswer:
    answer = strip_delimiters(text)
    if "\n" in answer or re.search(r"(?<!\\)\$", answer):
        raise Refused("unparsable_answer", "no \\boxed{} answer and no final-answer line")
    return FinalAnswer(answer, "bare")


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", strip_delimiters(text))
