"""Prometheus metrics: what the relay did since it started, and what is waiting now.

Counters and the latency histogram are updated in memory by hooks: ingest calls
`observe_ingest` after a commit, the dispatcher calls `observe_attempt` after an
attempt is stored. Queue depth and ages are not tracked in memory at all; they
are read from the store at scrape time with indexed queries, so they are right
after a restart and whatever other process shares the store.

Each app owns its own `CollectorRegistry` (never the global one), so a process
can build many apps, as the tests do, without metrics colliding.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from relay.models import AttemptResult, DeliveryStatus, IngestOutcome, NewEvent
from relay.storage.base import QueueStats, Storage

__all__ = ["CONTENT_TYPE_LATEST", "RelayMetrics"]

# Event types come from the platform; past this many distinct ones, new types
# are counted as "other" so a misbehaving sender cannot explode the series.
MAX_TYPE_LABELS = 200
OTHER_TYPE = "other"
DURATION_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

_OUTCOMES = {
    DeliveryStatus.DELIVERED: "delivered",
    DeliveryStatus.SCHEDULED: "retry",
    DeliveryStatus.HELD: "retry",
    DeliveryStatus.FAILED: "failed",
    DeliveryStatus.PENDING: "interrupted",
}
_FINAL = (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED)


class _QueueCollector(Collector):
    """Serves the gauges of the last snapshot taken from the store."""

    def __init__(self) -> None:
        self.snapshot: QueueStats | None = None
        self.now = 0.0

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "relay_queue_depth", "Unfinished deliveries by endpoint and state",
            labels=["endpoint", "state"],
        )
        oldest = GaugeMetricFamily(
            "relay_oldest_pending_age_seconds",
            "Age of the oldest pending, scheduled or in-flight delivery (0 when none)",
            labels=["endpoint"],
        )
        failing = GaugeMetricFamily(
            "relay_endpoint_failing_seconds",
            "How long the endpoint's attempts have been failing without a success (0 when ok)",
            labels=["endpoint"],
        )
        stats = self.snapshot
        if stats is not None:
            endpoints = sorted({name for name, _ in stats.depth})
            for (name, state), count in sorted(stats.depth.items()):
                depth.add_metric([name, state], count)
            for name in endpoints:
                since = stats.oldest_waiting_at.get(name)
                oldest.add_metric([name], max(self.now - since, 0.0) if since else 0.0)
                started = stats.failing_since.get(name)
                failing.add_metric([name], max(self.now - started, 0.0) if started else 0.0)
        yield depth
        yield oldest
        yield failing


class _IngestCollector(Collector):
    """Events ingested by type, counted in a plain dict.

    Ingest counts every event it stores; a prometheus `Counter` child takes a
    lock per increment, which ingest's hot path can do without. The counts
    become a counter family only when scraped.
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "relay_events_ingested", "Events stored by ingest (duplicates excluded), by type",
            labels=["type"],
        )
        for event_type, count in sorted(self.counts.items()):
            family.add_metric([event_type], count)
        yield family


class _AttemptCollector(Collector):
    """Attempts, final outcomes and attempt durations, counted in plain dicts.

    The dispatcher reports every stored attempt; prometheus `Counter` and
    `Histogram` children take a lock and validate on every update, a share of
    the delivery loop's CPU that buys nothing in a single-threaded loop. The
    histogram keeps per-bucket counts (bisect) and is made cumulative at scrape.
    """

    def __init__(self) -> None:
        self.attempts: dict[tuple[str, str], int] = {}
        self.deliveries: dict[tuple[str, str], int] = {}
        # endpoint -> [count per bucket (the last is +Inf)..., sum of seconds]
        self.durations: dict[str, list[float]] = {}

    def observe(self, endpoint: str, outcome: str, final: str | None,
                seconds: float | None) -> None:
        key = (endpoint, outcome)
        self.attempts[key] = self.attempts.get(key, 0) + 1
        if final is not None:
            key = (endpoint, final)
            self.deliveries[key] = self.deliveries.get(key, 0) + 1
        if seconds is not None:
            counts = self.durations.get(endpoint)
            if counts is None:
                counts = self.durations[endpoint] = [0.0] * (len(DURATION_BUCKETS_S) + 2)
            counts[bisect_left(DURATION_BUCKETS_S, seconds)] += 1
            counts[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        attempts = CounterMetricFamily(
            "relay_delivery_attempts",
            "Delivery attempts by endpoint and outcome (delivered, retry, failed, interrupted)",
            labels=["endpoint", "outcome"],
        )
        for labels, count in sorted(self.attempts.items()):
            attempts.add_metric(list(labels), count)
        deliveries = CounterMetricFamily(
            "relay_deliveries",
            "Deliveries that reached a final state, by endpoint and outcome (delivered, failed)",
            labels=["endpoint", "outcome"],
        )
        for labels, count in sorted(self.deliveries.items()):
            deliveries.add_metric(list(labels), count)
        durations = HistogramMetricFamily(
            "relay_attempt_duration_seconds",
            "Duration of delivery attempts, from request to the end of the answer",
            labels=["endpoint"],
        )
        for endpoint, counts in sorted(self.durations.items()):
            cumulative, buckets = 0.0, []
            for bound, hits in zip((*DURATION_BUCKETS_S, float("inf")), counts, strict=False):
                cumulative += hits
                buckets.append((_bucket_label(bound), cumulative))
            durations.add_metric([endpoint], buckets, sum_value=counts[-1])
        yield attempts
        yield deliveries
        yield durations


class _EndpointInfoCollector(Collector):
    """`relay_endpoint_info{endpoint, source, tenant} 1`, to read any series by tenant.

    Per-endpoint series keep one label; a dashboard joins them on this one
    (`* on(endpoint) group_left(tenant) relay_endpoint_info`) rather than every
    series carrying the tenant of ten thousand endpoints.
    """

    def __init__(self) -> None:
        self.endpoints: list[tuple[str, str, str]] = []

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily("relay_endpoint_info",
                                 "Each endpoint, where it comes from and its tenant (always 1)",
                                 labels=["endpoint", "source", "tenant"])
        for labels in self.endpoints:
            info.add_metric(list(labels), 1)
        yield info


class _SourceCollector(Collector):
    """Requests of each source (`sources:`), accepted or refused, in plain dicts.

    Plain dicts rather than `Counter`s so that the admin API can show the
    same counts beside each source.
    """

    def __init__(self) -> None:
        self.accepted: dict[str, int] = {}
        self.refused: dict[tuple[str, str], int] = {}

    def accept(self, source: str) -> None:
        self.accepted[source] = self.accepted.get(source, 0) + 1

    def refuse(self, source: str, reason: str) -> None:
        key = (source, reason)
        self.refused[key] = self.refused.get(key, 0) + 1

    def refusals(self, source: str) -> dict[str, int]:
        return {reason: n for (name, reason), n in sorted(self.refused.items())
                if name == source}

    def collect(self) -> Iterator[Metric]:
        accepted = CounterMetricFamily(
            "relay_source_requests_accepted", "Requests of a source (`sources:`) verified and "
            "stored, duplicates included, by source", labels=["source"])
        for source, count in sorted(self.accepted.items()):
            accepted.add_metric([source], count)
        refused = CounterMetricFamily(
            "relay_source_requests_refused", "Requests of a source refused with a 401, nothing "
            "stored, by source and reason (missing, signature, timestamp)",
            labels=["source", "reason"])
        for (source, reason), count in sorted(self.refused.items()):
            refused.add_metric([source, reason], count)
        yield accepted
        yield refused


def _bucket_label(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


class RelayMetrics:
    """The relay's metrics on a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._ingested = _IngestCollector()
        self.registry.register(self._ingested)
        self._attempts = _AttemptCollector()
        self.registry.register(self._attempts)
        self._queue = _QueueCollector()
        self.registry.register(self._queue)
        self._info = _EndpointInfoCollector()
        self.registry.register(self._info)
        self.reloads = Counter("relay_config_reloads", "SIGHUP reloads of relay.yaml, by "
                               "outcome (applied, rejected)", ["outcome"],
                               registry=self.registry)
        self.config_rejected = Gauge("relay_config_rejected", "1 while the last reload of "
                                     "relay.yaml was rejected (the old config still runs)",
                                     registry=self.registry)
        self.sources = _SourceCollector()
        self.registry.register(self.sources)
        self._types: set[str] = set()

    def _type_label(self, event_type: str, catalog: Sequence[str] | None) -> str:
        if catalog is not None:
            return event_type if event_type in catalog else OTHER_TYPE
        if event_type not in self._types:
            if len(self._types) >= MAX_TYPE_LABELS:
                return OTHER_TYPE
            self._types.add(event_type)
        return event_type

    def observe_ingest(self, events: Sequence[NewEvent], outcomes: Sequence[IngestOutcome],
                       catalog: Sequence[str] | None = None) -> None:
        """Count the events a commit stored; duplicates and refused conflicts are not new."""
        for outcome in outcomes:
            if outcome.conflict:
                return  # all or nothing: a conflicting call stored none of its events
        counts = self._ingested.counts
        known = self._types
        for event, outcome in zip(events, outcomes, strict=True):
            if not outcome.duplicate:
                label = event.type
                if catalog is not None or label not in known:
                    label = self._type_label(label, catalog)
                counts[label] = counts.get(label, 0) + 1

    def observe_attempt(self, result: AttemptResult) -> None:
        """Count a stored attempt; an attempt cut short by shutdown has no latency to show."""
        status = result.new_status
        self._attempts.observe(
            result.endpoint, _OUTCOMES.get(status, status.value),
            status.value if status in _FINAL else None,
            result.duration_ms / 1000 if result.counts else None,
        )

    async def render(self, storage: Storage, endpoints: Sequence[tuple[str, str, str]],
                     now: float) -> bytes:
        """The Prometheus text exposition, with queue gauges read from the store now.

        `endpoints` are (name, source, tenant or "") of every endpoint known.
        """
        stats = await storage.queue_stats([name for name, _, _ in endpoints])
        self._info.endpoints = list(endpoints)
        # No await between the snapshot and the rendering: concurrent scrapes
        # each render the snapshot they took.
        self._queue.snapshot, self._queue.now = stats, now
        return generate_latest(self.registry)
