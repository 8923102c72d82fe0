"""Prometheus metrics for one verifier app.

Each app gets its own :class:`~prometheus_client.CollectorRegistry`, so several apps in one
process (tests, benchmarks) never clash over metric names. Values that already live elsewhere
(queue depth, cache health, the checkers' pool gauges) are read when ``/metrics`` is scraped
rather than copied on every change.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from verifier_service.checkers.base import Checker

__all__ = ["CONTENT_TYPE_LATEST", "ServiceMetrics"]

#: Request latencies: a cached batch answers in milliseconds, a Lean batch can take minutes.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
#: One proof's check: math answers in milliseconds, Lean in seconds to its timeout.
CHECK_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)

_NOT_METRIC_CHARS = re.compile(r"[^a-zA-Z0-9_]")

#: Checker statistics that only ever grow and have a counter of their own, besides their
#: ``sieve_checker_<stat>`` gauge: (checker, stat) -> (counter name without ``_total``, help).
CHECKER_COUNTERS = {
    ("lean4", "protocol_violations"): (
        "sieve_lean_protocol_violations",
        "Lean workers killed because a reply could not be the REPL's answer (forged, unframed, "
        "out of order, or carrying an unexpected environment number).",
    ),
}


class _CheckerStatsCollector(Collector):
    """Turns each checker's ``stats()`` into ``sieve_checker_<stat>{checker=...}`` gauges, and the
    statistics named in :data:`CHECKER_COUNTERS` into their counters as well."""

    def __init__(self, checkers: Callable[[], Mapping[str, Checker]]) -> None:
        self._checkers = checkers

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        families: dict[str, GaugeMetricFamily] = {}
        counters = {
            key: CounterMetricFamily(name, text) for key, (name, text) in CHECKER_COUNTERS.items()
        }
        for name, checker in self._checkers().items():
            try:
                stats = checker.stats()
            except Exception:  # a broken gauge must not break the scrape
                continue
            for stat, value in stats.items():
                counter = counters.get((name, stat))
                if counter is not None:
                    counter.add_metric([], float(value))
                metric = "sieve_checker_" + _NOT_METRIC_CHARS.sub("_", stat)
                family = families.get(metric)
                if family is None:
                    family = GaugeMetricFamily(
                        metric,
                        f"Checker statistic {stat!r} (from Checker.stats()).",
                        labels=["checker"],
                    )
                    families[metric] = family
                family.add_metric([name], float(value))
        return [*families.values(), *(c for c in counters.values() if c.samples)]

    def describe(self) -> Iterable[GaugeMetricFamily]:
        # Families depend on the checkers; an empty description keeps the registry from
        # calling collect() at registration time.
        return []


class _CheckerCountersCollector(Collector):
    """Turns each checker's ``counters()`` into counters of those names (summed over checkers),
    e.g. ``sieve_lean_parse_mismatch_total``."""

    def __init__(self, checkers: Callable[[], Mapping[str, Checker]]) -> None:
        self._checkers = checkers

    def collect(self) -> Iterable[CounterMetricFamily]:
        totals: dict[str, float] = {}
        for checker in self._checkers().values():
            try:
                counters = checker.counters()
            except Exception:  # a broken counter must not break the scrape
                continue
            for name, value in counters.items():
                metric = _NOT_METRIC_CHARS.sub("_", name)
                totals[metric] = totals.get(metric, 0.0) + float(value)
        return [
            CounterMetricFamily(name, f"Checker counter {name!r} (from Checker.counters()).", value)
            for name, value in sorted(totals.items())
        ]

    def describe(self) -> Iterable[CounterMetricFamily]:
        return []


class _ImportSetCollector(Collector):
    """Per import set of the Lean pool: ``sieve_lean_import_set_workers``,
    ``sieve_lean_import_set_waiting`` and ``sieve_lean_import_set_imports_started_total``,
    labelled by a short digest of the normalised import set (``import_set``), the set itself
    (``imports``, cut short) and whether it is protected from churn. The pool lists a bounded
    number of sets, so the label cardinality is bounded whatever clients send."""

    def __init__(self, checkers: Callable[[], Mapping[str, Checker]]) -> None:
        self._checkers = checkers

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        labels = ["import_set", "imports", "protected"]
        workers = GaugeMetricFamily(
            "sieve_lean_import_set_workers",
            "Lean workers warm or warming for an import set.",
            labels=labels,
        )
        waiting = GaugeMetricFamily(
            "sieve_lean_import_set_waiting",
            "Proofs waiting for a Lean worker of an import set.",
            labels=labels,
        )
        started = CounterMetricFamily(
            "sieve_lean_import_set_imports_started",
            "Lean processes started to import an import set.",
            labels=labels,
        )
        for checker in self._checkers().values():
            import_sets = getattr(checker, "import_sets", None)
            if import_sets is None:
                continue
            try:
                rows = import_sets()
            except Exception:  # a broken gauge must not break the scrape
                continue
            for row in rows:
                values = [row.label, row.imports, "true" if row.protected else "false"]
                workers.add_metric(values, float(row.workers))
                waiting.add_metric(values, float(row.waiting))
                started.add_metric(values, float(row.imports_started))
        return [workers, waiting, started]

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []


class ServiceMetrics:
    """Every metric family the service exports, registered in one private registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "sieve_http_requests",
            "HTTP requests answered.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "sieve_http_request_duration_seconds",
            "Time to answer one HTTP request.",
            ["route"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.proofs = Counter(
            "sieve_proofs",
            "Proofs answered, by checker and verdict.",
            ["checker", "verdict"],
            registry=r,
        )
        self.check_latency = Histogram(
            "sieve_check_duration_seconds",
            "Time one proof spent in its checker (cache hits excluded).",
            ["checker"],
            buckets=CHECK_BUCKETS,
            registry=r,
        )
        self.cache_hits = Counter(
            "sieve_cache_hits", "Proofs answered from the verdict cache.", ["checker"], registry=r
        )
        self.cache_misses = Counter(
            "sieve_cache_misses", "Proofs not found in the verdict cache.", ["checker"], registry=r
        )
        self.cache_up = Gauge("sieve_cache_up", "1 when the verdict cache answers.", registry=r)
        self.pending = Gauge(
            "sieve_pending_proofs", "Proofs waiting for or running in a checker.", registry=r
        )
        self.dedup_joins = Counter(
            "sieve_dedup_joins",
            "Proofs that joined an identical check already in flight.",
            ["checker"],
            registry=r,
        )
        self.sandbox_mode = Gauge(
            "sieve_lean_sandbox_mode",
            "1 for the mode Lean REPLs are confined with: bwrap, uid or none.",
            ["mode"],
            registry=r,
        )
        self.rejected = Counter(
            "sieve_rejected_requests",
            "Requests refused before any check ran.",
            ["reason"],
            registry=r,
        )

    def watch(
        self,
        *,
        pending: Callable[[], float],
        cache_up: Callable[[], float],
        checkers: Callable[[], Mapping[str, Checker]],
    ) -> None:
        """Read these values at scrape time instead of mirroring every change."""
        self.pending.set_function(pending)
        self.cache_up.set_function(cache_up)
        self.registry.register(_CheckerStatsCollector(checkers))
        self.registry.register(_CheckerCountersCollector(checkers))
        self.registry.register(_ImportSetCollector(checkers))

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.http_requests.labels(route, method, str(status)).inc()
        self.http_latency.labels(route).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of everything in this registry."""
        return generate_latest(self.registry)
