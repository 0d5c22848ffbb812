"""Prometheus metrics of one running promobot, on a registry of its own, read at GET /metrics.

Counters that only the running process sees (deliveries processed, calls made,
rate-limit waits, redelivery requests) are counted where they happen; what the
database knows for good (backlogs, promotions, deployments and their durations)
is read from it at each scrape, so those figures survive restarts.

Under `promobot serve` the worker and the relay run in the processing child: it
writes its counters' exposition to a file every few seconds (`save`), and the
serving process answers GET /metrics with its own figures followed by that file.
"""

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
DEPLOY_BUCKETS = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)


class Metrics:
    """Every metric promobot exports; one instance (and registry) per app, so tests share none."""

    def __init__(self, child: Path | None = None) -> None:
        self.registry = CollectorRegistry()  # what this process serves: acks, stored figures
        self.processing = CollectorRegistry()  # what the worker and relay count
        self.child = child  # the processing child's saved counters, when it has them
        r = self.processing
        self.deliveries = Counter(
            "promobot_deliveries",
            "GitHub deliveries processed, by event and outcome (done, ignored, retry, failed).",
            ["event", "outcome"],
            registry=r,
        )
        self.ack_seconds = Histogram(
            "promobot_ack_seconds",
            "Seconds from a webhook's arrival to its answer, the delivery committed.",
            buckets=ACK_BUCKETS,
            registry=self.registry,
        )
        self.calls = Counter(
            "promobot_remote_calls",
            "Slack and GitHub calls, by target, method and status (ok, an error, an HTTP status).",
            ["target", "method", "status"],
            registry=r,
        )
        self.rate_limit_waits = Counter(
            "promobot_rate_limit_waits",
            "Rate-limit answers (429, GitHub's secondary limit) waited out, by target and method.",
            ["target", "method"],
            registry=r,
        )
        self.rate_limit_seconds = Counter(
            "promobot_rate_limit_wait_seconds",
            "Seconds the remotes asked promobot to wait, by target.",
            ["target"],
            registry=r,
        )
        self.redelivery_requests = Counter(
            "promobot_redelivery_requests",
            "Redeliveries promobot asked GitHub for, by outcome (requested, failed).",
            ["outcome"],
            registry=r,
        )
        self.stored = StoredFigures()
        self.registry.register(self.stored)

    def call(self, target: str, method: str, status: str) -> None:
        """Count one call to Slack or GitHub."""
        self.calls.labels(target, method, status).inc()

    def exposition(self, snapshot: Mapping[str, Any]) -> bytes:
        """Return the Prometheus text of every metric, with the database's figures `snapshot`."""
        self.stored.snapshot = snapshot
        return generate_latest(self.registry) + self._processing_text()

    def _processing_text(self) -> bytes:
        if self.child is None:
            return generate_latest(self.processing)
        try:
            return self.child.read_bytes()
        except FileNotFoundError:  # the child has not saved yet: its figures are not known
            return b""

    def save(self, path: Path) -> None:
        """Write the worker's and relay's counters for the serving process (atomically)."""
        part = path.with_name(path.name + ".part")
        part.write_bytes(generate_latest(self.processing))
        os.replace(part, path)


class StoredFigures(Collector):
    """Figures read from the database at each scrape: backlogs, promotions, deployments."""

    def __init__(self) -> None:
        self.snapshot: Mapping[str, Any] = {}

    def describe(self) -> Iterable[Metric]:
        """Describe nothing ahead: the figures exist only once a scrape has read them."""
        return []

    def collect(self) -> Iterable[Metric]:
        """Yield the backlog gauges, promotion and deployment counts, deployment durations."""
        snap = {"promotions": [], "deployments": [], **self.snapshot}
        items = GaugeMetricFamily(
            "promobot_backlog_items",
            "Items waiting, by queue (inbox: deliveries, outbox: calls) and state.",
            labels=["queue", "state"],
        )
        oldest = GaugeMetricFamily(
            "promobot_backlog_oldest_age_seconds",
            "Age of the oldest pending item, by queue (0 when none waits).",
            labels=["queue"],
        )
        for queue in ("inbox", "outbox"):
            counts = snap.get(queue, {})
            for state in ("pending", "failed"):
                items.add_metric([queue, state], counts.get(state, 0))
            oldest.add_metric([queue], snap.get(f"{queue}_oldest_age", 0.0))
        yield items
        yield oldest
        yield _by_stage("promobot_promotions", "Promotions by stage and state.", snap["promotions"])
        yield _by_stage(
            "promobot_deployments", "Deployments by stage and state.", snap["deployments"]
        )
        yield _durations(snap.get("deployment_durations", {}))


def _by_stage(name: str, text: str, rows: Iterable[Sequence[Any]]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, text, labels=["stage", "state"])
    for stage, state, count in rows:
        family.add_metric([stage, state], count)
    return family


def _durations(by_stage: Mapping[str, Sequence[float]]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(
        "promobot_deployment_seconds",
        "Seconds from creating a deployment to its final state, by stage.",
        labels=["stage"],
    )
    for stage, seconds in sorted(by_stage.items()):
        buckets = [(f"{b:g}", sum(1 for s in seconds if s <= b)) for b in DEPLOY_BUCKETS]
        buckets.append(("+Inf", len(seconds)))
        family.add_metric([stage], buckets, sum(seconds))
    return family
