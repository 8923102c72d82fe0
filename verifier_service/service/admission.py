"""Admission control: refuse a batch now rather than queue it behind an ever-growing wait.

The service counts the proofs pending (waiting for or running in a checker), in all and per
client. A batch whose new checks would push the total above ``settings.max_pending`` is refused
with :class:`QueueFull` (HTTP 429, retry after ``retry_after_s``); one that would push its own
client above ``settings.pending_quota`` is refused with :class:`QuotaExceeded`, so that one
client cannot fill the queue for all. A batch larger than either bound could never be admitted
and is refused with :class:`BatchTooLarge` (HTTP 413) instead: retrying would not help.

Only new checks count. A proof answered from the cache, or joining a check already in flight,
adds no work, and the client that launched a check is the one charged for it until it ends.
"""

from __future__ import annotations

from collections.abc import Collection

from verifier_service.metrics import ServiceMetrics
from verifier_service.service.errors import BatchTooLarge, QueueFull, QuotaExceeded
from verifier_service.settings import VerifierSettings

__all__ = ["MAX_CLIENT_CHARS", "Admission", "client_identity"]

#: Characters of a client's identity kept for its quota (a key's index, or an address).
MAX_CLIENT_CHARS = 64


def client_identity(client: str) -> str:
    """What the quota remembers of ``client``: bounded, so a long identity costs no memory."""
    return client[:MAX_CLIENT_CHARS]


class Admission:
    """The pending counts, and the decision to admit new checks against them.

    :meth:`admit` and the :meth:`charge` calls that follow it must run without an ``await``
    between them, so that no other request slips in between the decision and the reservation.
    """

    def __init__(self, settings: VerifierSettings, metrics: ServiceMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self._pending = 0
        # client -> its checks still pending; a client leaves the map when its last one ends, so
        # it holds at most ``max_pending`` entries of at most MAX_CLIENT_CHARS characters.
        self._by_client: dict[str, int] = {}

    @property
    def pending(self) -> int:
        """Checks pending, across all clients."""
        return self._pending

    def pending_of(self, client: str) -> int:
        """Checks ``client`` launched that are still pending (what its quota counts)."""
        return self._by_client.get(client_identity(client), 0)

    @property
    def clients(self) -> Collection[str]:
        """The clients with at least one check pending."""
        return self._by_client.keys()

    def admit(self, new: int, client: str | None) -> None:
        """Refuse ``new`` checks for ``client`` that could never run (413) or not now (429).

        ``client`` ``None`` (a caller of the library itself) is bound only by ``max_pending``.
        """
        if not new:
            return
        settings = self.settings
        limit = settings.max_pending
        if new > limit:
            raise BatchTooLarge(
                ("body", "proofs"), f"{new} distinct new proofs, more than max_pending={limit}"
            )
        quota = settings.pending_quota if client is not None else 0
        if client is not None and quota:
            if new > quota:
                raise BatchTooLarge(
                    ("body", "proofs"),
                    f"{new} distinct new proofs, more than max_pending_per_key={quota}",
                )
            held = self._by_client.get(client, 0)
            if held + new > quota:
                self.metrics.rejected.labels("client_quota").inc()
                raise QuotaExceeded(held, new, quota, settings.retry_after_s)
        if self._pending + new > limit:
            self.metrics.rejected.labels("queue_full").inc()
            raise QueueFull(self._pending, new, limit, settings.retry_after_s)

    def charge(self, client: str | None) -> None:
        """One admitted check has started for ``client``."""
        self._pending += 1
        if client is not None:
            self._by_client[client] = self._by_client.get(client, 0) + 1

    def release(self, client: str | None) -> None:
        """A check :meth:`charge` counted for ``client`` has ended, whatever its outcome."""
        self._pending -= 1
        if client is not None:
            left = self._by_client.pop(client, 1) - 1
            if left > 0:
                self._by_client[client] = left
