"""How varied a model's proofs of one problem are: tactic and premise diversity.

Following the method notes, a proof's *tactics* are the first token of each of its lines after
the statement's ``:= by``, and its *premises* are the names listed inside ``[...]`` after a
tactic (``simp [foo, bar]``, ``nlinarith [sq_nonneg (a - b), h₀]``, ``rw [← mul_comm]``).
Over all proofs of a problem these counts form a distribution whose Shannon entropy (bits) and
Simpson index (``1 − Σ p²``, the chance two draws differ) summarise diversity.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

__all__ = [
    "Diversity",
    "premises",
    "proof_body",
    "proof_diversity",
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


@dataclass(frozen=True)
class Diversity:
    """Diversity of one problem's proofs (all entropies in bits)."""

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
    found = []
    for line in proof_body(text).splitlines():
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
    body = proof_body(text)
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
    """Pool the tactics and premises of all ``proofs`` of one problem and measure their spread."""
    tactic_counts: Counter[str] = Counter()
    premise_counts: Counter[str] = Counter()
    for proof in proofs:
        tactic_counts.update(tactics(proof))
        premise_counts.update(premises(proof))
    return Diversity(
        proofs=len(proofs),
        tactic_shannon=shannon_entropy(tactic_counts),
        tactic_simpson=simpson_index(tactic_counts),
        premise_shannon=shannon_entropy(premise_counts),
        premise_simpson=simpson_index(premise_counts),
        distinct_tactics=len(tactic_counts),
        distinct_premises=len(premise_counts),
    )


def _split_items(text: str, start: int) -> list[str]:
    """Split the bracket list opening just before ``start`` at its top-level commas."""
    items, depth, current = [], 0, []
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
