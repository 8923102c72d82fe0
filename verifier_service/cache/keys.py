"""Cache keys: one proof under one checker version maps to one key, everywhere.

The key hashes everything that decides a verdict (:meth:`Job.cache_material`: checker, normalised
header, code, statement, answer, policy) together with the checker's version string, so a new
toolchain or Mathlib never answers from verdicts of the old one. The time budget is left out on
purpose: a ``valid`` or ``invalid`` verdict does not depend on it, and a cached ``timeout`` carries
its own budget (see :func:`verifier_service.cache.usable`).

The canonical JSON is written by orjson when it is installed (7x faster than the standard
library, and keys are computed for every proof of every batch, cached or not) and by the standard
library otherwise; both write the same bytes for this material (sorted keys, no spaces, raw UTF-8),
so replicas with and without orjson share one cache. A test holds them to that.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from verifier_service.checkers.base import Job

try:
    import orjson
except ImportError:  # pragma: no cover - exercised only where orjson is missing
    orjson = None  # type: ignore[assignment]

DEFAULT_NAMESPACE = "sieve"


def cache_key(job: Job, checker_version: str, namespace: str = DEFAULT_NAMESPACE) -> str:
    """``namespace:sha256(canonical JSON of checker_version + job.cache_material())``."""
    material = {"checker_version": checker_version, **job.cache_material()}
    return f"{namespace}:{hashlib.sha256(canonical_json(material)).hexdigest()}"


def canonical_json(material: dict[str, Any]) -> bytes:
    """Sorted keys, no whitespace, raw UTF-8: one byte string per value, whichever encoder."""
    if orjson is not None:
        try:
            return orjson.dumps(material, option=orjson.OPT_SORT_KEYS)
        except (TypeError, orjson.JSONEncodeError):
            pass  # e.g. a lone surrogate, which orjson refuses: the standard library hashes it
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8", "surrogatepass")
