"""Cache keys: one proof under one checker version maps to one key, everywhere.

The key hashes everything that decides a verdict (:meth:`Job.cache_material`: checker, normalised
header, code, statement, answer, policy) together with the checker's version string, so a new
toolchain or Mathlib never answers from verdicts of the old one. The time budget is left out on
purpose: a ``valid`` or ``invalid`` verdict does not depend on it, and a cached ``timeout`` carries
its own budget (see :func:`verifier_service.cache.usable`).

Keys are built with the standard library's JSON encoder only, so they are byte-for-byte the same on
every replica whatever optional packages it has installed.
"""

from __future__ import annotations

import hashlib
import json

from verifier_service.checkers.base import Job

DEFAULT_NAMESPACE = "sieve"


def cache_key(job: Job, checker_version: str, namespace: str = DEFAULT_NAMESPACE) -> str:
    """``namespace:sha256(canonical JSON of checker_version + job.cache_material())``."""
    material = {"checker_version": checker_version, **job.cache_material()}
    # ``surrogatepass``: a JSON body may carry lone surrogates, which must still hash.
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{namespace}:{digest}"
