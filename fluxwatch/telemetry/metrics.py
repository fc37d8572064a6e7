"""Prometheus metrics, on one registry per daemon so tests can run several side by side.

Names follow Prometheus conventions: ``fluxwatch_`` prefix, ``_total`` for
counters, ``_seconds`` for durations, and no per-release labels on counters
(a label per HelmRelease would grow without bound on a 10,000-release
cluster); releases are counted by verdict in a gauge instead.

Every labelled series an alert relies on exists at zero from the start
(:meth:`Metrics.prepare`): ``increase()`` over a series that appears with its
first event at 1 sees no increase, so the first guardrail trip would go
unnoticed. The process's own ``process_*`` and ``python_info`` series and
``fluxwatch_build_info`` come with every registry; the ``*_created`` series
prometheus_client adds to each counter and histogram are switched off
(process-wide): nothing reads them and they were a fifth of every scrape.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

import fluxwatch
from fluxwatch import native, version

Counts = Callable[[], Mapping[tuple[str, str], int]]

disable_created_metrics()

# The guards of engine/guardrail.py, as the `guard` label spells them.
GUARDS = ("batch", "budget", "attempts")
# How a recovery step ends (engine/recovery.py).
STEP_RESULTS = ("succeeded", "failed")


def build_labels() -> dict[str, str]:
    """``fluxwatch_build_info``'s labels: the same version and revision as
    ``fluxwatch --version`` prints, and which watch reader runs (``native`` or ``python``:
    fluxwatch.native)."""
    return {
        "version": fluxwatch.__version__,
        "revision": version.revision(),
        "python": platform.python_version(),
        "reader": native.watch_reader(),
    }


class _VerdictCollector(Collector):
    """Releases by verdict, read from the tracker's running counts at scrape time: the
    watch loop pays nothing for it."""

    def __init__(self, counts: Counts) -> None:
        self.counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_verdict = GaugeMetricFamily(
            "fluxwatch_helmreleases",
            "HelmReleases tracked, by verdict and skip reason.",
            labels=["verdict", "reason"],
        )
        stuck = 0
        for (verdict, reason), n in sorted(self.counts().items()):
            by_verdict.add_metric([verdict, reason], n)
            if verdict == "stuck":
                stuck += n
        yield by_verdict
        yield GaugeMetricFamily(
            "fluxwatch_helmreleases_stuck", "HelmReleases stuck right now.", value=stuck
        )


class _ReadyCollector(Collector):
    """What ``/readyz`` answers, as a gauge: a pod that is not ready still gets scraped,
    and this says so."""

    def __init__(self, checks: Mapping[str, Callable[[], bool]]) -> None:
        self.checks = checks

    def collect(self) -> Iterator[GaugeMetricFamily]:
        ready = all(check() for check in self.checks.values())
        yield GaugeMetricFamily(
            "fluxwatch_ready", "1 while every readiness check passes (/readyz).", value=ready
        )


_DELAY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_RECOVERY_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1200)


class Metrics:
    """Every metric fluxwatch exports, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.recoveries = Counter(
            "fluxwatch_recoveries_total",
            "Recovery steps run, by strategy and result.",
            ["strategy", "result"],
            registry=r,
        )
        self.guardrail_trips = Counter(
            "fluxwatch_guardrail_trips_total",
            "Times a guard started refusing to act: batch (an incident too large), "
            "budget (recoveries per window used up), attempts (a release out of attempts).",
            ["guard"],
            registry=r,
        )
        self.detection_delay = Histogram(
            "fluxwatch_detection_delay_seconds",
            "From the stuck threshold crossing to the first recovery write.",
            buckets=_DELAY_BUCKETS,
            registry=r,
        )
        self.recovery_duration = Histogram(
            "fluxwatch_recovery_duration_seconds",
            "From the first recovery write to a verified Ready=True or giving up.",
            ["result"],
            buckets=_RECOVERY_BUCKETS,
            registry=r,
        )
        self.watch_events = Counter(
            "fluxwatch_watch_events_total",
            "Watch events received, by resource and type.",
            ["resource", "type"],
            registry=r,
        )
        self.watch_restarts = Counter(
            "fluxwatch_watch_restarts_total",
            "Watch restarts, by resource and reason.",
            ["resource", "reason"],
            registry=r,
        )
        self.cache_synced = Gauge(
            "fluxwatch_cache_synced",
            "1 when the informer for a resource has listed once.",
            ["resource"],
            registry=r,
        )
        self.initial_sync = Gauge(
            "fluxwatch_initial_sync_seconds",
            "How long the first list took, by resource.",
            ["resource"],
            registry=r,
        )
        self.lease_transitions = Counter(
            "fluxwatch_lease_transitions_total",
            "Leader changes seen on the Flux controllers' Leases.",
            ["lease"],
            registry=r,
        )
        self.leaderless = Gauge(
            "fluxwatch_lease_leaderless",
            "1 while a Flux controller's Lease has no live holder.",
            ["lease"],
            registry=r,
        )
        self.leader = Gauge(
            "fluxwatch_leader", "1 while this replica leads and may write.", registry=r
        )
        # Unlabelled, so it exists at 0 from the start: an alert on it sees the first one.
        self.blocked = Gauge(
            "fluxwatch_blocked_helmreleases",
            "HelmReleases blocked, directly or through others, by a stuck one they dependsOn.",
            registry=r,
        )
        build = Gauge(
            "fluxwatch_build_info",
            "Always 1; the version, git revision, Python and watch reader of this fluxwatch.",
            list(build_labels()),
            registry=r,
        )
        build.labels(**build_labels()).set(1)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self._event_children: dict[tuple[str, str], Counter] = {}

    def prepare(self, strategies: Iterable[str], leases: Iterable[str]) -> None:
        """Create at zero the series alerts and the dashboard read: each recovery strategy
        by result, recovery durations by result, each guard, each Flux controller Lease."""
        for strategy in strategies:
            for result in STEP_RESULTS:
                self.recoveries.labels(strategy, result)
        for result in STEP_RESULTS:
            self.recovery_duration.labels(result)
        for guard in GUARDS:
            self.guardrail_trips.labels(guard)
        for lease in leases:
            self.lease_transitions.labels(lease)
            self.leaderless.labels(lease).set(0)

    def set_blocked(self, count: int) -> None:
        """``fluxwatch_blocked_helmreleases``: how many releases the stuck ones block (each
        counted once, however many stuck releases it waits on)."""
        self.blocked.set(count)

    def follow_readiness(self, checks: Mapping[str, Callable[[], bool]]) -> None:
        """Export ``fluxwatch_ready``: 1 when every check of ``/readyz`` passes."""
        self.registry.register(_ReadyCollector(checks))

    def follow_verdicts(self, counts: Counts) -> None:
        """Export ``fluxwatch_helmreleases{verdict,reason}`` and ``_stuck`` from ``counts``."""
        self.registry.register(_VerdictCollector(counts))

    # RecoveryObserver (engine/recovery.py), matched by shape: telemetry imports no engine.
    def on_detection_delay(self, seconds: float) -> None:
        self.detection_delay.observe(seconds)

    def on_recovery_step(self, strategy: str, result: str) -> None:
        self.recoveries.labels(strategy, result).inc()

    def on_recovery_ended(self, result: str, seconds: float) -> None:
        self.recovery_duration.labels(result).observe(seconds)

    # InformerObserver: the informer calls these on its hot path, so children are cached.
    def on_event(self, resource: str, event_type: str) -> None:
        key = (resource, event_type)
        child = self._event_children.get(key)
        if child is None:
            child = self._event_children[key] = self.watch_events.labels(resource, event_type)
        child.inc()

    def on_restart(self, resource: str, reason: str) -> None:
        self.watch_restarts.labels(resource, reason).inc()

    def on_synced(self, resource: str, count: int, seconds: float) -> None:
        self.cache_synced.labels(resource).set(1)
        self.initial_sync.labels(resource).set(seconds)
