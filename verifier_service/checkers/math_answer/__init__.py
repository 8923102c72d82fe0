"""The strict reading of a math answer: one final answer, of the reference's kind, compared
exactly.

The pieces, each with one job:

* :mod:`.final_answer`: which part of a completion is its final answer (or that it has none,
  or offers several);
* :mod:`.normalise`: one spelling for the same answer (Unicode digits and operators,
  e-notation, repeating decimals, juxtaposed products);
* :mod:`.shape`: what kind of answer it is (number, relation, interval, …), with its signs,
  percent, units and parts, read without evaluating anything;
* :mod:`.compare`: math-verify's equivalence, inside the strict checks.

:func:`read_reference` is pure Python: the service calls it in the checker's ``prepare``, so a
reference the checker cannot read is refused (HTTP 422) before any check runs.
"""

from __future__ import annotations

import functools

from verifier_service.checkers.math_answer.final_answer import FinalAnswer, final_answer
from verifier_service.checkers.math_answer.normalise import normalise, strip_delimiters
from verifier_service.checkers.math_answer.shape import MAX_CHARS, Refused, Shape, read

__all__ = ["FinalAnswer", "Refused", "Shape", "read_answer", "read_reference"]


@functools.lru_cache(maxsize=4096)
def read_reference(reference: str) -> Shape:
    """The reference answer's shape; raises :class:`Refused` when it cannot be read.

    A reference is one answer, not a completion: it may be wrapped in ``$…$`` or
    ``\\boxed{…}``, and nothing else around it is searched."""
    return read(normalise(_bounded(strip_delimiters(_bounded(reference, 2 * MAX_CHARS)))))


def read_answer(completion: str) -> Shape:
    """The shape of the completion's one final answer; raises :class:`Refused` (with reason
    ``ambiguous_answer`` or ``unparsable_answer``) when there is none, or more than one."""
    return read(normalise(_bounded(final_answer(completion).text)))


def _bounded(text: str, limit: int = MAX_CHARS) -> str:
    """``text``, or :class:`Refused` when it is too long to be one answer (checked before the
    rewrites, which need not be linear in every input)."""
    if len(text) > limit:
        raise Refused("unparsable_answer", f"longer than {limit} characters")
    return text
