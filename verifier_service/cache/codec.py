"""How a verdict is stored: compact JSON bytes, identical in memory and in Redis.

A cache hit must cost microseconds (a fully cached batch of 1,000 proofs is answered from one
MGET), so values are plain JSON objects written by orjson when it is installed. Both encoders
write the same JSON, so replicas with and without orjson can share one Redis.
"""

from __future__ import annotations

import json
from typing import Any

from verifier_service.verdicts import Outcome

try:  # orjson is ~10x faster at both ends; the stdlib is the fallback, not a different format.
    import orjson

    def _dumps(data: dict[str, Any]) -> bytes:
        return orjson.dumps(data)

    def _loads(raw: bytes | str) -> Any:
        return orjson.loads(raw)

except ImportError:  # pragma: no cover - exercised only where orjson is missing

    def _dumps(data: dict[str, Any]) -> bytes:
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()

    def _loads(raw: bytes | str) -> Any:
        return json.loads(raw)


def encode_outcome(outcome: Outcome) -> bytes:
    """Serialise one outcome; fields at their default are left out to keep values small."""
    data = outcome.to_dict()
    # ``axioms == []`` (checked, none used) differs from ``None`` (not checked): keep it.
    for name in ("reasons", "messages"):
        if not data[name]:
            del data[name]
    for name in ("axioms", "budget_s"):
        if data[name] is None:
            del data[name]
    return _dumps(data)


def decode_outcome(raw: bytes | str) -> Outcome:
    """Inverse of :func:`encode_outcome`; raises ``ValueError``/``KeyError`` on foreign data."""
    return Outcome.from_dict(_loads(raw))
