"""Checks in progress, by cache key, so that identical proofs are checked once.

Trainers send the same proof many times at once (a group of samples, retries, several workers
on one problem). A check already running for the same cache key with at least the budget asked
is *joined*: the newcomer awaits its future instead of starting another Lean process. A larger
budget does not join a smaller one, since the smaller one may time out where it would not.

A flight stays joinable until its owner has written the outcome to the verdict cache and
:meth:`Flights.retire` removes it, so there is no moment when a proof is neither in flight nor
cached.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

from verifier_service.verdicts import Outcome

__all__ = ["Flight", "Flights"]


@dataclass(slots=True)
class Flight:
    """One check in progress; identical jobs with no larger budget join it.

    ``client`` launched it and is charged for it against its quota until it ends; clients that
    join an identical check add no work and are not charged.
    """

    key: str
    budget_s: float
    future: asyncio.Future[Outcome]
    client: str | None = None


class Flights:
    """The flights in progress, by cache key (one key may fly with several budgets)."""

    def __init__(self) -> None:
        self._by_key: dict[str, list[Flight]] = {}

    def find(self, key: str, budget_s: float) -> Flight | None:
        """A flight for ``key`` whose budget is at least ``budget_s``, to join; or None."""
        for flight in self._by_key.get(key, ()):
            if flight.budget_s >= budget_s:
                return flight
        return None

    def open(self, key: str, budget_s: float, client: str | None = None) -> Flight:
        """A new flight for ``key``, joinable from now on; its future is for the caller to set."""
        flight = Flight(key, budget_s, asyncio.get_running_loop().create_future(), client)
        self._by_key.setdefault(key, []).append(flight)
        return flight

    def retire(self, flights: Iterable[Flight]) -> None:
        """Stop offering ``flights`` to joiners (their outcomes are cached by now)."""
        for flight in flights:
            same_key = self._by_key.get(flight.key)
            if same_key is None:
                continue
            with contextlib.suppress(ValueError):
                same_key.remove(flight)
            if not same_key:
                del self._by_key[flight.key]

    def __len__(self) -> int:
        """Keys in flight."""
        return len(self._by_key)
