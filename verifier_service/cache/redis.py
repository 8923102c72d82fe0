"""The shared verdict cache: Redis, for several replicas and for verdicts that outlive restarts.

Redis is an accelerator, never a dependency: when it is down or restarting, reads miss and writes
are dropped, so the service keeps answering (uncached) instead of failing. After a failure the
cache stops sending requests to Redis and probes it in the background every ``backoff_s``
seconds, so no proof waits on a dead server's timeouts; the first successful probe brings it back.
Each transition is logged once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import RedisError

from verifier_service.cache.codec import decode_outcome, encode_outcome
from verifier_service.verdicts import Outcome

logger = logging.getLogger(__name__)

#: Errors that mean "Redis is unusable right now" (refused, reset, timed out, OOM, ...).
_UNAVAILABLE = (RedisError, OSError, asyncio.TimeoutError)


class RedisCache:
    """Verdicts in Redis: one ``MGET`` per batch read, one pipelined write per batch.

    ``socket_timeout_s`` bounds a single round trip; ``backoff_s`` is how long Redis is skipped
    after a failure before the next background probe.
    """

    backend = "redis"

    def __init__(
        self,
        url: str,
        *,
        ttl_s: float = 0,
        socket_timeout_s: float = 0.5,
        backoff_s: float = 1.0,
        health_check_interval_s: int = 30,
    ) -> None:
        if ttl_s < 0:
            raise ValueError(f"cache_ttl_s must be >= 0, got {ttl_s}")
        self.url = url
        self.ttl_s = ttl_s
        self.backoff_s = backoff_s
        self._client = aioredis.Redis.from_url(
            url,
            socket_connect_timeout=socket_timeout_s,
            socket_timeout=socket_timeout_s,
            health_check_interval=health_check_interval_s,
            # One quick retry on a fresh connection covers a Redis restart (stale pooled
            # sockets); anything longer is the circuit breaker's job, not the request's.
            retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), retries=1),
            decode_responses=False,
        )
        self._problem: str | None = None  # why Redis is considered down; None while healthy
        self._retry_at = 0.0  # monotonic time of the next probe while down
        self._probe: asyncio.Task[bool] | None = None

    @property
    def healthy(self) -> bool:
        return self._problem is None

    def readiness(self) -> dict[str, str]:
        if self._problem is None:
            return {}
        return {"cache": f"redis unreachable: {self._problem}"}

    async def ping(self) -> bool:
        """Probe Redis now (for ``/ready``); updates :attr:`healthy` either way."""
        try:
            await self._client.ping()
        except _UNAVAILABLE as exc:
            self._mark_down(exc)
            return False
        self._mark_up()
        return True

    async def get_many(self, keys: Sequence[str]) -> list[Outcome | None]:
        if not keys or not self._usable():
            return [None] * len(keys)
        try:
            raws = await self._client.mget(keys)
        except _UNAVAILABLE as exc:
            self._mark_down(exc)
            return [None] * len(keys)
        return [
            None if raw is None else _decode_or_none(key, raw)
            for key, raw in zip(keys, raws, strict=True)
        ]

    async def set_many(self, items: Sequence[tuple[str, Outcome]]) -> None:
        values = {key: encode_outcome(out) for key, out in items if out.verdict.cacheable}
        if not values or not self._usable():
            return
        try:
            if self.ttl_s:
                ttl_ms = max(1, round(self.ttl_s * 1000))
                async with self._client.pipeline(transaction=False) as pipe:
                    for key, raw in values.items():
                        pipe.set(key, raw, px=ttl_ms)
                    await pipe.execute()
            else:
                await self._client.mset(values)
        except _UNAVAILABLE as exc:
            self._mark_down(exc)

    async def aclose(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None
        close = getattr(self._client, "aclose", None) or self._client.close  # redis-py < 5.0.1
        await close()

    # --- circuit breaker ----------------------------------------------------------------------

    def _usable(self) -> bool:
        """True when requests may go to Redis; while down, kick off a probe when one is due."""
        if self._problem is None:
            return True
        if time.monotonic() >= self._retry_at and (self._probe is None or self._probe.done()):
            self._retry_at = time.monotonic() + self.backoff_s
            self._probe = asyncio.get_running_loop().create_task(self.ping())
        return False

    def _mark_down(self, exc: BaseException) -> None:
        problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        self._retry_at = time.monotonic() + self.backoff_s
        if self._problem is None:
            logger.warning(
                "verdict cache: redis at %s unreachable (%s); serving uncached, retrying every "
                "%.1f s",
                _redact(self.url),
                problem,
                self.backoff_s,
            )
        self._problem = problem

    def _mark_up(self) -> None:
        if self._problem is not None:
            logger.warning("verdict cache: redis at %s reachable again", _redact(self.url))
        self._problem = None


def _decode_or_none(key: str, raw: bytes | str) -> Outcome | None:
    """A value this version cannot read (foreign writer, older format) is a miss, not a crash."""
    try:
        return decode_outcome(raw)
    except (ValueError, KeyError, TypeError):
        logger.debug("verdict cache: unreadable value under %s; treated as a miss", key)
        return None


def _redact(url: str) -> str:
    """The URL without its password, for logs."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}" if user else f"{scheme}{sep}***@{host}"
