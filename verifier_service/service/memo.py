"""Jobs already normalised, by the raw fields they came from: a resubmitted proof skips ``prepare``.

Normalising a Lean header and statement costs far more than answering from the verdict cache,
and a resubmitted proof is exactly the case the cache serves; without this memo, ``prepare``
would dominate the cost of a cache hit. The memo is bounded by the characters it holds, not by
its entries, because one proof may be 200 kB.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from verifier_service.checkers.base import Job, Policy
from verifier_service.service.proofs import ProofLike

__all__ = ["PreparedJobs"]

#: The raw fields of one item: checker, its version, code, header, statement, answer, budget and
#: the policy's (allow_sorry, axioms).
RawKey = tuple[Any, ...]


class PreparedJobs:
    """An LRU of ``raw fields -> (job, cache key)`` holding at most ``max_chars`` characters.

    ``max_chars`` 0 disables it: nothing with a character in it is kept.
    """

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        # raw fields -> (job, cache key, characters held); least recently used first.
        self._entries: OrderedDict[RawKey, tuple[Job, str, int]] = OrderedDict()
        self._chars = 0

    @staticmethod
    def key(item: ProofLike, version: str, budget_s: float, policy: Policy) -> RawKey:
        """What decides ``item``'s job: its fields, the checker's version, budget and policy.

        A tuple of plain values, because hashing one is several times cheaper than hashing the
        dataclasses they come from.
        """
        return (
            item.checker,
            version,
            item.code,
            item.header,
            item.statement,
            item.answer,
            budget_s,
            (policy.allow_sorry, policy.axioms),
        )

    def get(self, raw: RawKey) -> tuple[Job, str] | None:
        """The job and cache key ``raw`` was prepared into, if still remembered."""
        hit = self._entries.get(raw)
        if hit is None:
            return None
        self._entries.move_to_end(raw)
        return hit[0], hit[1]

    def put(self, raw: RawKey, job: Job, cache_key: str) -> None:
        """Remember ``raw``'s job, forgetting the least recently used ones to stay in bounds."""
        size = sum(len(part) for part in raw[2:6] if part) + len(job.code) + len(job.header)
        if size > self.max_chars:
            return
        old = self._entries.pop(raw, None)
        if old is not None:
            self._chars -= old[2]
        self._entries[raw] = (job, cache_key, size)
        self._chars += size
        while self._chars > self.max_chars:
            _, (_, _, evicted) = self._entries.popitem(last=False)
            self._chars -= evicted

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def chars(self) -> int:
        """Characters held (the bound counts these)."""
        return self._chars
