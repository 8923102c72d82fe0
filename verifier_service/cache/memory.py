"""The in-process verdict cache: a bounded LRU, for one replica without Redis.

Entries are stored encoded (the same bytes Redis would hold), so a caller that edits an
:class:`Outcome` it got back can never change what the cache answers next time.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence

from verifier_service.cache.codec import decode_outcome, encode_outcome
from verifier_service.verdicts import Outcome


class MemoryCache:
    """Least-recently-used cache of at most ``max_entries`` verdicts, optionally expiring."""

    backend = "memory"

    def __init__(self, max_entries: int = 100_000, *, ttl_s: float = 0) -> None:
        if max_entries < 0:
            raise ValueError(f"cache_size must be >= 0, got {max_entries}")
        if ttl_s < 0:
            raise ValueError(f"cache_ttl_s must be >= 0, got {ttl_s}")
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        # key -> (expiry on the monotonic clock or None, encoded outcome)
        self._entries: OrderedDict[str, tuple[float | None, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def healthy(self) -> bool:
        return True

    def readiness(self) -> dict[str, str]:
        return {}

    async def ping(self) -> bool:
        return True

    async def get_many(self, keys: Sequence[str]) -> list[Outcome | None]:
        now = time.monotonic()
        found: list[Outcome | None] = []
        for key in keys:
            entry = self._entries.get(key)
            if entry is None:
                found.append(None)
                continue
            expires_at, raw = entry
            if expires_at is not None and expires_at <= now:
                del self._entries[key]
                found.append(None)
                continue
            self._entries.move_to_end(key)
            found.append(decode_outcome(raw))
        return found

    async def set_many(self, items: Sequence[tuple[str, Outcome]]) -> None:
        if self.max_entries == 0:
            return
        expires_at = time.monotonic() + self.ttl_s if self.ttl_s else None
        for key, outcome in items:
            if not outcome.verdict.cacheable:
                continue
            self._entries[key] = (expires_at, encode_outcome(outcome))
            self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def aclose(self) -> None:
        self._entries.clear()
