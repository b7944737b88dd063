"""GET /metrics: Prometheus text whose numbers match what the relay did."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from relay.metrics import MAX_TYPE_LABELS, RelayMetrics
from relay.models import IngestOutcome, NewEvent
from tests.admin.harness import DEAD_URL, Ops, always, receiver
from tests.conftest import endpoint_yaml

pytestmark = pytest.mark.both_backends

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(ops: Ops) -> Samples:
    response = ops.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_match_what_was_sent_and_delivered(make_ops: Callable[..., Ops]) -> None:
    """Ingested by type, deliveries by outcome, attempts and latency add up exactly."""
    good, broken = receiver(), receiver(always(500))
    ops = make_ops(endpoint_yaml("good", good.url + "/hooks")
                   + endpoint_yaml("broken", broken.url + "/hooks", events=["order.*"])
                   + endpoint_yaml("parked", DEAD_URL),
                   {"good": good, "broken": broken})
    ops.post("/v1/endpoints/parked/pause")
    for n in range(4):
        ops.send("license.created", n=n)
    for n in range(3):
        ops.send("order.created", n=n)
    duplicate = json.dumps({"type": "order.created", "data": {}})
    for _ in range(2):  # the second is a duplicate: not ingested again
        assert ops.relay.post(duplicate, {"Idempotency-Key": "k-1"}).status_code in (200, 202)
    ops.wait_counts("good", delivered=8)
    ops.wait_counts("broken", failed=4)
    ops.wait_counts("parked", held=8)
    samples = scrape(ops)
    assert value(samples, "relay_events_ingested_total", type="license.created") == 4
    assert value(samples, "relay_events_ingested_total", type="order.created") == 4
    assert value(samples, "relay_deliveries_total", endpoint="good", outcome="delivered") == 8
    assert value(samples, "relay_deliveries_total", endpoint="broken", outcome="failed") == 4
    assert value(samples, "relay_delivery_attempts_total",
                 endpoint="broken", outcome="retry") == 8  # two retries each
    assert value(samples, "relay_delivery_attempts_total",
                 endpoint="broken", outcome="failed") == 4
    assert value(samples, "relay_attempt_duration_seconds_count", endpoint="good") == 8
    assert value(samples, "relay_attempt_duration_seconds_count", endpoint="broken") == 12
    assert value(samples, "relay_attempt_duration_seconds_bucket",
                 endpoint="good", le="+Inf") == 8
    assert value(samples, "relay_queue_depth", endpoint="parked", state="held") == 8
    assert value(samples, "relay_queue_depth", endpoint="good", state="pending") == 0
    assert ("relay_queue_depth", (("endpoint", "good"), ("state", "scheduled"))) in samples
    assert value(samples, "relay_endpoint_failing_seconds", endpoint="broken") > 0
    assert value(samples, "relay_endpoint_failing_seconds", endpoint="good") == 0


def test_queue_gauges_show_the_backlog_and_its_age(make_ops: Callable[..., Ops]) -> None:
    """Waiting deliveries appear by state, with the age of the oldest one."""
    ops = make_ops(endpoint_yaml("down", DEAD_URL, retry_schedule=["1h"])
                   + endpoint_yaml("capped", DEAD_URL, rate_limit="1/h"))
    for n in range(3):
        ops.send(n=n)
    ops.wait_counts("down", scheduled=3)
    ops.wait_counts("capped", scheduled=1, pending=2)
    ops.execute("UPDATE deliveries SET created_at = created_at - 600 WHERE endpoint = 'down'")
    samples = scrape(ops)
    assert value(samples, "relay_queue_depth", endpoint="down", state="scheduled") == 3
    assert value(samples, "relay_queue_depth", endpoint="capped", state="pending") == 2
    assert 600 <= value(samples, "relay_oldest_pending_age_seconds", endpoint="down") < 660
    assert 0 <= value(samples, "relay_oldest_pending_age_seconds", endpoint="capped") < 60
    unauthorized = httpx.get(ops.relay.url + "/metrics", timeout=10)
    assert unauthorized.status_code == 401


def test_each_app_has_its_own_registry_and_type_labels_are_bounded() -> None:
    """Two apps never share counters, and endless new event types collapse into `other`."""
    first, second = RelayMetrics(), RelayMetrics()
    events = [NewEvent(f"e{i}", f"type.{i}", b"{}", (), 0.0, False)
              for i in range(MAX_TYPE_LABELS + 5)]
    first.observe_ingest(events, [IngestOutcome(e.id, e.type, 0) for e in events])

    def ingested(metrics: RelayMetrics, event_type: str) -> float | None:
        return metrics.registry.get_sample_value("relay_events_ingested_total",
                                                 {"type": event_type})

    assert ingested(first, "other") == 5
    assert ingested(first, "type.0") == 1
    assert ingested(second, "type.0") is None
    catalog = ("license.created",)  # with a catalog, types outside it are `other`
    first.observe_ingest(events[:1], [IngestOutcome("x", "type.0", 0)], catalog)
    assert ingested(first, "other") == 6
