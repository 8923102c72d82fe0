"""How varied a model's proofs of one problem are: tactic and premise diversity.

Two definitions live side by side, and every report labels which one it shows:

* **paper** (:func:`paper_tactics`, :func:`paper_premises`, :func:`response_diversity`): the
  definition of Kruszewski et al. (the authors' released code), so our figures can be set beside
  theirs. A response's tactics are the first whitespace-separated token of every non-empty line
  of the whole response; its premises are the contents of every ``[...]``, split on spaces and
  commas. Counted over *all* n responses of a problem, verified or not, and averaged over *all*
  problems.
* **verified** (:func:`tactics`, :func:`premises`, :func:`proof_diversity`): a cleaner parse of
  the *verified* proofs only, averaged over solved problems. Tactics are the first token of each
  proof line after the statement's ``:= by`` (comments, focusing dots and ``<;>`` skipped);
  premises are the head names of the items of a ``tactic [ ... ]`` list (``simp [foo, bar]``,
  ``nlinarith [sq_nonneg (a - b), h₀]``, ``rw [← mul_comm]``), so statement brackets, rewrite
  arrows and simp erasures do not count.

Over a problem's responses these counts form a distribution whose Shannon entropy (bits) and
Simpson index (``1 − Σ p²``, the chance two draws differ) summarise diversity.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

__all__ = [
    "DIVERSITY_DEFINITIONS",
    "Diversity",
    "paper_premises",
    "paper_tactics",
    "premises",
    "proof_body",
    "proof_diversity",
    "response_diversity",
    "shannon_entropy",
    "simpson_index",
    "tactics",
]

_BLOCK_COMMENT = re.compile(r"/-.*?-/", re.DOTALL)
_LINE_COMMENT = re.compile(r"--.*")
_BULLETS = re.compile(r"^(?:[·•.]\s*|<;>\s*|\}\s*|\{\s*)+")
_FIRST_TOKEN = re.compile(r"^[^\s\[\](){},;:]+")
# A tactic name (optionally `only` and a `(config := …)`-free gap) directly followed by `[`.
_PREMISE_LIST = re.compile(r"\b[a-z_][A-Za-z0-9_']*[!?]?(?:\s+only)?\s*\[")
_NAME = re.compile(r"[^\W\d][\w.'!?]*")
_PAPER_BRACKETS = re.compile(r"\[(.*?)\]")
_PAPER_SEPARATORS = re.compile(r"[ ,]+")

#: What each label means, for reports and plot legends.
DIVERSITY_DEFINITIONS: dict[str, str] = {
    "paper": "the paper's: all n responses per problem, mean over all problems",
    "verified": "verified proofs only, parsed after ':= by', mean over solved problems",
}


@dataclass(frozen=True)
class Diversity:
    """Diversity of one problem's proofs (all entropies in bits).

    ``proofs`` is how many texts were pooled: verified proofs for :func:`proof_diversity`, all
    responses for :func:`response_diversity`.
    """

    proofs: int
    tactic_shannon: float
    tactic_simpson: float
    premise_shannon: float
    premise_simpson: float
    distinct_tactics: int
    distinct_premises: int

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def proof_body(text: str) -> str:
    """The proof after the first ``:= by`` (the whole text if there is none), without comments."""
    text = _BLOCK_COMMENT.sub("", text)
    text = "\n".join(_LINE_COMMENT.sub("", line) for line in text.splitlines())
    head, sep, tail = text.partition(":= by")
    body = tail if sep else head
    return body.split("```", 1)[0]  # a completion may run on past its closing fence


def tactics(text: str) -> list[str]:
    """First token of every non-empty proof line (focusing dots and ``<;>`` skipped)."""
    return _body_tactics(proof_body(text))


def _body_tactics(body: str) -> list[str]:
    found = []
    for line in body.splitlines():
        line = _BULLETS.sub("", line.strip())
        match = _FIRST_TOKEN.match(line)
        if match:
            found.append(match.group(0))
    return found


def premises(text: str) -> list[str]:
    """Head names of the items in every ``tactic [ ... ]`` list of the proof.

    ``sq_nonneg (a - b)`` counts as ``sq_nonneg``; rewrite arrows and simp's ``-`` erasures are
    dropped; items that do not start with a name (``(by norm_num : (0:ℝ) < 2)``) are skipped.
    """
    return _body_premises(proof_body(text))


def _body_premises(body: str) -> list[str]:
    found = []
    for match in _PREMISE_LIST.finditer(body):
        for item in _split_items(body, match.end()):
            item = item.strip()
            if item.startswith("-"):  # `simp [-foo]` erases foo: not a premise used
                continue
            item = item.removeprefix("<-").lstrip("←↑ ")
            name = _NAME.match(item)
            if name:
                found.append(name.group(0))
    return found


def paper_tactics(text: str) -> list[str]:
    """The paper's tactics: the first whitespace-separated token of every non-empty line.

    Exactly the authors' rule, applied to the whole response (prose, statement and fences
    included); compare :func:`tactics`, which parses only the proof.
    """
    return [line.split()[0] for line in text.splitlines() if line.strip()]


def paper_premises(text: str) -> list[str]:
    """The paper's premises: the contents of every ``[...]``, split on spaces and commas.

    Brackets do not nest and do not span lines (``re.findall(r"\\[(.*?)\\]")``); empty
    pieces are dropped. ``nlinarith [sq_nonneg (a - b), h₀]`` gives ``sq_nonneg``, ``(a``,
    ``-``, ``b)``, ``h₀``: the authors' rule, kept as is so figures are comparable.
    """
    return [
        piece
        for inside in _PAPER_BRACKETS.findall(text)
        for piece in _PAPER_SEPARATORS.split(inside)
        if piece
    ]


def shannon_entropy(counts: Iterable[int] | Counter) -> float:
    """Shannon entropy in bits of the distribution given by ``counts`` (0 for no data)."""
    values = [c for c in (counts.values() if isinstance(counts, Counter) else counts) if c > 0]
    total = sum(values)
    if total == 0:
        return 0.0
    return max(0.0, -sum(c / total * math.log2(c / total) for c in values))


def simpson_index(counts: Iterable[int] | Counter) -> float:
    """Simpson diversity ``1 − Σ p²``: the chance two draws (with replacement) differ."""
    values = [c for c in (counts.values() if isinstance(counts, Counter) else counts) if c > 0]
    total = sum(values)
    if total == 0:
        return 0.0
    return 1.0 - sum((c / total) ** 2 for c in values)


def proof_diversity(proofs: Sequence[str]) -> Diversity:
    """The *verified* definition: pool :func:`tactics` and :func:`premises` of one problem's
    verified ``proofs`` and measure their spread (each proof's body is parsed once for both)."""
    return _diversity([proof_body(p) for p in proofs], _body_tactics, _body_premises)


def response_diversity(responses: Sequence[str]) -> Diversity:
    """The paper's diversity of one problem: pool :func:`paper_tactics` and
    :func:`paper_premises` over *all* its responses, verified or not."""
    return _diversity(responses, paper_tactics, paper_premises)


def _diversity(
    texts: Sequence[str],
    tactic_fn: Callable[[str], list[str]],
    premise_fn: Callable[[str], list[str]],
) -> Diversity:
    tactic_counts: Counter[str] = Counter()
    premise_counts: Counter[str] = Counter()
    for text in texts:
        tactic_counts.update(tactic_fn(text))
        premise_counts.update(premise_fn(text))
    return Diversity(
        proofs=len(texts),
        tactic_shannon=shannon_entropy(tactic_counts),
        tactic_simpson=simpson_index(tactic_counts),
        premise_shannon=shannon_entropy(premise_counts),
        premise_simpson=simpson_index(premise_counts),
        distinct_tactics=len(tactic_counts),
        distinct_premises=len(premise_counts),
    )


def _split_items(text: str, start: int) -> list[str]:
    """Split the bracket list opening just before ``start`` at its top-level commas."""
    items: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text[start:]:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            if depth == 0:
                if char == "]":
                    items.append("".join(current))
                return items
            depth -= 1
        elif char == "," and depth == 0:
            items.append("".join(current))
            current = []
            continue
        current.append(char)
    return []  # unclosed list: a truncated completion
