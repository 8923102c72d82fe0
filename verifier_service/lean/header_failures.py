"""Headers that failed to elaborate, remembered for a while so that a bad header costs one import.

Any client can send a header that does not elaborate (``import Nonexistent``, a typo in an
option), and finding that out costs a new REPL process and an import. Asked again within
``ttl_s``, the pool answers from this memory instead of spawning another process.

A client can also send any number of distinct bad headers, each up to ``SIEVE_MAX_CODE_BYTES``,
so the memory is bounded by count and by bytes, and never holds a header itself.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

__all__ = ["HeaderFailures"]


class HeaderFailures:
    """Headers that did not elaborate, answered from memory for ``ttl_s`` without a new process.

    A client can send any number of distinct bad headers, each up to ``SIEVE_MAX_CODE_BYTES``, so
    the memory is bounded: entries are keyed by a digest of the header (never the header itself),
    each entry's Lean messages are trimmed to ``max_entry_bytes``, and the oldest entries go first
    when there are more than ``max_entries`` or they hold more than ``max_bytes``. Expired entries
    are dropped as new ones arrive, so the memory shrinks back once the bad headers stop.
    """

    #: Bytes counted per entry on top of its messages (digest, tuple, dict slot).
    entry_overhead = 200

    def __init__(
        self,
        *,
        ttl_s: float = 30.0,
        max_entries: int = 1024,
        max_bytes: int = 4 << 20,
        max_entry_bytes: int = 16 << 10,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_entry_bytes
        # digest -> (expiry, messages, bytes); insertion order is expiry order (one ttl for all).
        self._entries: OrderedDict[bytes, tuple[float, list[dict[str, Any]], int]] = OrderedDict()
        self._bytes = 0

    @staticmethod
    def _key(header: str) -> bytes:
        """A digest of ``header``: 16 bytes per entry, however long the header."""
        return hashlib.blake2b(header.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def get(self, header: str) -> list[dict[str, Any]] | None:
        """The messages ``header`` failed with, if it failed within ``ttl_s``."""
        key = self._key(header)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            self._drop(key)
            return None
        return entry[1]

    def put(self, header: str, messages: Sequence[dict[str, Any]]) -> None:
        """Remember that ``header`` failed with ``messages`` (trimmed), for ``ttl_s``."""
        key = self._key(header)
        if key in self._entries:
            self._drop(key)
        self.prune()
        kept = self.trim(messages, self.max_entry_bytes)
        size = self.entry_overhead + sum(len(json.dumps(m, default=str)) for m in kept)
        self._entries[key] = (time.monotonic() + self.ttl_s, kept, size)
        self._bytes += size
        while self._entries and (
            len(self._entries) > self.max_entries or self._bytes > self.max_bytes
        ):
            self._drop(next(iter(self._entries)))

    def prune(self) -> None:
        """Forget every expired entry."""
        now = time.monotonic()
        while self._entries:
            key, (expiry, _, _) = next(iter(self._entries.items()))
            if expiry > now:
                return
            self._drop(key)

    def _drop(self, key: bytes) -> None:
        _, _, size = self._entries.pop(key)
        self._bytes -= size

    @staticmethod
    def trim(messages: Sequence[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
        """The leading messages that fit in ``budget`` bytes of JSON; long texts are cut short.

        The first message is always kept (cut to fit), since it says why the header failed.
        """
        kept: list[dict[str, Any]] = []
        used = 0
        for message in messages:
            message = dict(message)
            data = message.get("data")
            limit = max(256, budget // 4)
            if isinstance(data, str) and len(data) > limit:
                message["data"] = data[:limit] + "… (truncated)"
            size = len(json.dumps(message, default=str))
            if kept and used + size > budget:
                break
            kept.append(message)
            used += size
        return kept

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """Bytes the entries hold, as counted against ``max_bytes``."""
        return self._bytes
