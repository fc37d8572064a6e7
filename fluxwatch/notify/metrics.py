"""How the router reports deliveries: a small hook, kept in memory or exported to Prometheus.

Every event that a provider should get ends in exactly one result:
``sent``, ``failed`` (the receiver did not get it after the retries),
``dropped`` (the queue was full, or shutdown came first),
``deduplicated`` (inside the rate-limit window, or the receiver said so)
or ``skipped`` (the provider has nothing to say for it).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Protocol

from prometheus_client import CollectorRegistry, Gauge, Histogram
from prometheus_client import Counter as PromCounter

RESULTS = ("sent", "failed", "dropped", "deduplicated", "skipped")


class NotifyMetrics(Protocol):
    def register(self, provider: str) -> None:
        """Called once per provider at start, so its series exist before the first event."""

    def delivered(self, provider: str, result: str) -> None: ...

    def observe_duration(self, provider: str, seconds: float) -> None: ...

    def queue_depth(self, provider: str, depth: int) -> None: ...


class MemoryMetrics:
    """Plain counters; the default, and what tests read."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.durations: defaultdict[str, list[float]] = defaultdict(list)
        self.depths: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"MemoryMetrics({dict(self.counts)})"

    def register(self, provider: str) -> None:
        self.depths.setdefault(provider, 0)

    def delivered(self, provider: str, result: str) -> None:
        self.counts[provider, result] += 1

    def observe_duration(self, provider: str, seconds: float) -> None:
        self.durations[provider].append(seconds)

    def queue_depth(self, provider: str, depth: int) -> None:
        self.depths[provider] = depth


class PrometheusMetrics:
    """``fluxwatch_notifications_total{provider,result}``, a duration histogram, a queue gauge."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.notifications = PromCounter(
            "fluxwatch_notifications",
            "Events handed to a provider, by how it ended.",
            ["provider", "result"],
            registry=registry,
        )
        self.duration = Histogram(
            "fluxwatch_notification_duration_seconds",
            "Time to deliver one event to one provider, retries included.",
            ["provider"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=registry,
        )
        self.depth = Gauge(
            "fluxwatch_notification_queue_depth",
            "Events waiting in a provider's queue.",
            ["provider"],
            registry=registry,
        )

        # The children of each provider, looked up once: labels() costs more than inc().
        self._counters: dict[tuple[str, str], PromCounter] = {}
        self._durations: dict[str, Histogram] = {}
        self._depths: dict[str, Gauge] = {}

    def register(self, provider: str) -> None:
        for result in RESULTS:
            self._counters[(provider, result)] = self.notifications.labels(provider, result)
        self._durations[provider] = self.duration.labels(provider)
        self._depths[provider] = self.depth.labels(provider)
        self._depths[provider].set(0)

    def delivered(self, provider: str, result: str) -> None:
        child = self._counters.get((provider, result))
        if child is None:
            child = self._counters[(provider, result)] = self.notifications.labels(provider, result)
        child.inc()

    def observe_duration(self, provider: str, seconds: float) -> None:
        child = self._durations.get(provider)
        if child is None:
            child = self._durations[provider] = self.duration.labels(provider)
        child.observe(seconds)

    def queue_depth(self, provider: str, depth: int) -> None:
        child = self._depths.get(provider)
        if child is None:
            child = self._depths[provider] = self.depth.labels(provider)
        child.set(depth)
