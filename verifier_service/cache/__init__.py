"""The verdict cache: a proof already checked is answered without Lean.

The service computes one key per proof with :func:`cache_key`, reads a whole batch with
:meth:`VerdictCache.get_many` (one round trip), checks only the misses, and writes their verdicts
back with :meth:`VerdictCache.set_many`. ``error`` verdicts are never stored (a crash says nothing
about the proof); a ``timeout`` is stored with its budget and answers only requests whose budget
is not larger (:func:`usable`).

Two backends share one encoding: :class:`RedisCache` (shared by replicas, survives restarts) and
:class:`MemoryCache` (an in-process LRU). :func:`build_cache` picks one from the settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from verifier_service.cache.keys import cache_key
from verifier_service.cache.memory import MemoryCache
from verifier_service.settings import VerifierSettings
from verifier_service.verdicts import Outcome, Verdict

__all__ = [
    "MemoryCache",
    "RedisCache",
    "VerdictCache",
    "build_cache",
    "cache_key",
    "usable",
]


@runtime_checkable
class VerdictCache(Protocol):
    """What the service needs from a verdict cache. Failures never raise: they miss."""

    async def get_many(self, keys: Sequence[str]) -> list[Outcome | None]:
        """The stored outcome for each key, ``None`` for a miss; one round trip."""
        ...

    async def set_many(self, items: Sequence[tuple[str, Outcome]]) -> None:
        """Store outcomes (``error`` ones are skipped); one round trip; drops on failure."""
        ...

    async def aclose(self) -> None: ...

    def readiness(self) -> dict[str, str]:
        """``{}`` when usable, else ``{"cache": "<why not>"}`` (for ``/ready``)."""
        ...

    @property
    def backend(self) -> str:
        """``"redis"`` or ``"memory"``."""
        ...

    @property
    def healthy(self) -> bool: ...


def usable(outcome: Outcome, budget_s: float) -> bool:
    """Whether a cached ``outcome`` answers a request that allows ``budget_s`` seconds.

    ``valid``/``invalid`` always do. A ``timeout`` does only if it had at least this budget:
    with more time the proof might have finished. ``error`` never does (and is never stored).
    """
    if outcome.verdict is Verdict.TIMEOUT:
        return outcome.budget_s is not None and outcome.budget_s >= budget_s
    return outcome.verdict.cacheable


def build_cache(settings: VerifierSettings) -> VerdictCache:
    """Redis when ``settings.redis_url`` is set, else an in-process LRU of ``cache_size``."""
    if settings.redis_url:
        from verifier_service.cache.redis import RedisCache

        return RedisCache(settings.redis_url, ttl_s=settings.cache_ttl_s)
    return MemoryCache(settings.cache_size, ttl_s=settings.cache_ttl_s)


def __getattr__(name: str) -> object:
    # ``RedisCache`` is imported lazily so the memory backend works without the redis package.
    if name == "RedisCache":
        from verifier_service.cache.redis import RedisCache

        return RedisCache
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
