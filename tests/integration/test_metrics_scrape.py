"""``/metrics`` of a running daemon, scraped over HTTP and read with Prometheus' own parser.

The daemon watches the emulator (two HelmReleases, helm-controller's Lease),
leads, and serves its telemetry on free loopback ports. A scrape must parse,
name every family with the type Prometheus conventions expect (counters end
in ``_total`` on the wire), pass ``promtool check metrics`` (Prometheus' own
linter, Debian package ``prometheus``), carry no ``_created`` series, have
every series an alert reads at zero before its first event, and show the
values move when the cluster does.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from test_notify_receiver import Receiver

import fluxwatch
from fluxwatch import native, version
from fluxwatch.app import Daemon, build_router
from fluxwatch.engine.config import DEFAULT_LEASE_NAMES
from fluxwatch.kube.client import KubeClient
from fluxwatch.notify import EventFactory, InvolvedObject, MemoryMetrics, NotifySettings, Router
from fluxwatch.settings import Settings
from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.telemetry.metrics import Metrics

HR_KEY = "helmreleases.helm.toolkit.fluxcd.io"
LEASE_KEY = "leases.coordination.k8s.io"
HR = Callable[..., dict[str, Any]]

# Family name (as the parser reports it, without _total) -> type.
FAMILIES = {
    "fluxwatch_helmreleases": "gauge",
    "fluxwatch_helmreleases_stuck": "gauge",
    "fluxwatch_blocked_helmreleases": "gauge",
    "fluxwatch_recoveries": "counter",
    "fluxwatch_guardrail_trips": "counter",
    "fluxwatch_detection_delay_seconds": "histogram",
    "fluxwatch_recovery_duration_seconds": "histogram",
    "fluxwatch_watch_events": "counter",
    "fluxwatch_watch_restarts": "counter",
    "fluxwatch_cache_synced": "gauge",
    "fluxwatch_initial_sync_seconds": "gauge",
    "fluxwatch_lease_transitions": "counter",
    "fluxwatch_lease_leaderless": "gauge",
    "fluxwatch_leader": "gauge",
    "fluxwatch_ready": "gauge",
    "fluxwatch_build_info": "gauge",
    "fluxwatch_notifications": "counter",
    "fluxwatch_notification_duration_seconds": "histogram",
    "fluxwatch_notification_queue_depth": "gauge",
    "process_resident_memory_bytes": "gauge",
    "process_cpu_seconds": "counter",
    "process_open_fds": "gauge",
    "process_start_time_seconds": "gauge",
    "python_info": "gauge",
}
LADDER = ("force-reconcile", "suspend-toggle")  # the default ladder: statusCorrect is off


def _lease(holder: str) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "helm-controller-leader-election", "namespace": "flux-system"},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 35,
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": 0,
        },
    }


def _settings(kubeconfig: Path) -> Settings:
    return Settings.model_validate(
        {
            "kubeconfig": str(kubeconfig),
            "shutdown_timeout": 5.0,
            "leader": {
                "namespace": "fluxwatch-system",
                "identity": "fluxwatch-metrics",
                "lease_duration": 3.0,
                "renew_deadline": 2.0,
                "retry_period": 0.2,
            },
            "telemetry": {"metrics_addr": "127.0.0.1:0", "health_addr": "127.0.0.1:0"},
            "notify": {
                "providers": [
                    {"name": "audit", "type": "generic", "address": "http://127.0.0.1:9/"}
                ]
            },
        }
    )


@dataclass
class Running:
    api: ApiServer
    daemon: Daemon
    http: aiohttp.ClientSession

    def url(self, port: str, path: str) -> str:
        assert self.daemon.server is not None
        return f"http://127.0.0.1:{self.daemon.server.ports[port]}{path}"

    async def text(self) -> str:
        async with self.http.get(self.url("metrics", "/metrics")) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain;")
            return await resp.text()

    async def scrape(self) -> dict[str, Metric]:
        text = await self.text()
        return {family.name: family for family in text_string_to_metric_families(text)}


def value(family: Metric, suffix: str = "", **labels: str) -> float:
    """The one sample of ``family`` named ``family.name + suffix`` with exactly ``labels``."""
    found = [
        s.value for s in family.samples if s.name == family.name + suffix and s.labels == labels
    ]
    assert len(found) == 1, f"{family.name}{suffix}{labels}: {family.samples}"
    return float(found[0])


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    for _ in range(int(timeout / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout}s: {what}")


@pytest.fixture
async def running(
    make_apiserver: Callable[..., Awaitable[ApiServer]], hr: HR, tmp_path: Path
) -> AsyncIterator[Running]:
    api = await make_apiserver()
    api.store.create(HR_KEY, hr("podinfo", "apps"))
    api.store.create(HR_KEY, hr("redis", "apps"))
    api.store.create(LEASE_KEY, _lease("helm-controller-a_1"))
    client = await KubeClient.from_config(api.write_kubeconfig(tmp_path / "kubeconfig"))
    settings = _settings(tmp_path / "kubeconfig")
    metrics = Metrics()
    router = await build_router(settings, client, metrics)
    daemon = Daemon(settings, client, metrics=metrics, router=router)
    task = asyncio.create_task(daemon.run(install_signals=False))
    try:
        async with aiohttp.ClientSession() as http:
            running = Running(api, daemon, http)

            async def ready() -> bool:
                if task.done() or daemon.server is None or "health" not in daemon.server.ports:
                    return task.done()
                async with http.get(running.url("health", "/readyz")) as resp:
                    return resp.status == 200 and daemon.leading

            await eventually(ready, 10, "the daemon ready and leading")
            assert not task.done()
            yield running
    finally:
        daemon.stop()
        assert await asyncio.wait_for(task, 15) == 0
        await client.close()


async def test_every_family_is_exported_with_its_type(running: Running) -> None:
    families = await running.scrape()
    for name, kind in FAMILIES.items():
        assert name in families, f"{name} missing"
        assert families[name].type == kind, f"{name}: {families[name].type}, expected {kind}"
    # Counters carry the _total suffix on the wire, as Prometheus conventions ask.
    assert all(
        s.name.endswith("_total")
        for name, kind in FAMILIES.items()
        if kind == "counter"
        for s in families[name].samples
    )


async def test_promtool_finds_nothing_to_lint(running: Running) -> None:
    """``promtool check metrics`` reads a scrape on stdin and lists every breach of the
    naming conventions (units, ``_total``, help text); it exits 0 only when clean."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    text = await running.text()
    checked = await asyncio.to_thread(
        subprocess.run,
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout + checked.stderr == ""


async def test_no_created_series(running: Running) -> None:
    """prometheus_client's ``*_created`` samples (and families) are switched off."""
    text = await running.text()
    assert "_created" not in text


async def test_build_info_names_this_fluxwatch(running: Running) -> None:
    families = await running.scrape()
    [sample] = families["fluxwatch_build_info"].samples
    assert sample.value == 1
    assert sample.labels == {
        "version": fluxwatch.__version__,
        "revision": version.revision(),  # what `fluxwatch --version` prints
        "python": platform.python_version(),
        "reader": native.watch_reader(),
    }
    assert value(families["process_resident_memory_bytes"]) > 0


async def test_series_alerts_read_exist_at_zero_from_the_start(running: Running) -> None:
    """``increase()`` sees a first event only if the series was there at 0 before it."""
    families = await running.scrape()
    trips = families["fluxwatch_guardrail_trips"]
    for guard in ("batch", "budget", "attempts"):
        assert value(trips, "_total", guard=guard) == 0
    assert {s.labels["guard"] for s in trips.samples} == {"batch", "budget", "attempts"}
    recoveries = families["fluxwatch_recoveries"]
    for strategy in LADDER:
        for result in ("succeeded", "failed"):
            assert value(recoveries, "_total", strategy=strategy, result=result) == 0
    assert len(recoveries.samples) == 2 * len(LADDER)
    durations = families["fluxwatch_recovery_duration_seconds"]
    for result in ("succeeded", "failed"):
        assert value(durations, "_count", result=result) == 0
    for lease in DEFAULT_LEASE_NAMES:
        assert value(families["fluxwatch_lease_leaderless"], lease=lease) == 0
        assert value(families["fluxwatch_lease_transitions"], "_total", lease=lease) == 0
    notifications = families["fluxwatch_notifications"]
    results = {s.labels["result"] for s in notifications.samples if s.labels["provider"] == "audit"}
    assert results == {"sent", "failed", "dropped", "deduplicated", "skipped"}
    assert value(families["fluxwatch_ready"]) == 1
    assert value(families["fluxwatch_blocked_helmreleases"]) == 0


async def test_caches_synced_and_leading(running: Running) -> None:
    families = await running.scrape()
    assert value(families["fluxwatch_cache_synced"], resource="helmreleases") == 1
    assert value(families["fluxwatch_cache_synced"], resource="leases") == 1
    assert value(families["fluxwatch_leader"]) == 1
    assert value(families["fluxwatch_initial_sync_seconds"], resource="helmreleases") >= 0
    assert value(families["fluxwatch_notification_queue_depth"], provider="audit") == 0


async def test_watch_events_are_counted(running: Running) -> None:
    """A change to a HelmRelease and a Lease renewal each arrive as a MODIFIED watch event."""

    def modified(families: dict[str, Metric], resource: str) -> float:
        samples = [
            s.value
            for s in families["fluxwatch_watch_events"].samples
            if s.name == "fluxwatch_watch_events_total"
            and s.labels == {"resource": resource, "type": "MODIFIED"}
        ]
        return float(samples[0]) if samples else 0.0

    before = await running.scrape()
    store = running.api.store
    store.patch(HR_KEY, "apps", "podinfo", {"metadata": {"labels": {"team": "a"}}})
    lease = store.get(LEASE_KEY, "flux-system", "helm-controller-leader-election")
    lease["spec"]["renewTime"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    store.update(LEASE_KEY, lease)

    async def counted() -> bool:
        after = await running.scrape()
        return all(
            modified(after, resource) >= modified(before, resource) + 1
            for resource in ("helmreleases", "leases")
        )

    await eventually(counted, 10, "both MODIFIED events counted")


async def test_probes_answer(running: Running) -> None:
    async with running.http.get(running.url("health", "/healthz")) as resp:
        assert resp.status == 200
        body = await resp.text()
    assert "[+]root-tasks ok" in body
    async with running.http.get(running.url("health", "/readyz")) as resp:
        assert resp.status == 200
        assert "[+]informer-helmreleases ok" in await resp.text()


async def test_releases_are_counted_by_verdict(running: Running) -> None:
    """The verdict gauges follow the tracker: a person's suspend moves podinfo from
    its verdict to skipped/suspended, and nothing here is stuck."""
    families = await running.scrape()
    total = sum(s.value for s in families["fluxwatch_helmreleases"].samples)
    assert total == 2  # podinfo and redis
    assert value(families["fluxwatch_helmreleases_stuck"]) == 0
    running.api.store.patch(HR_KEY, "apps", "podinfo", {"spec": {"suspend": True}})

    async def suspended() -> bool:
        found = await running.scrape()
        samples = found["fluxwatch_helmreleases"].samples
        return any(
            s.labels == {"verdict": "skipped", "reason": "suspended"} and s.value == 1
            for s in samples
        )

    await eventually(suspended, 5, "podinfo counted as skipped/suspended")


async def test_a_dead_notification_worker_stops_the_daemon(
    make_apiserver: Callable[..., Awaitable[ApiServer]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The supervision rule: a router worker is owned by the root task ``notify``; its death
    is logged with the traceback and stops the daemon with exit code 1."""

    class BrokenMetrics(MemoryMetrics):
        def delivered(self, provider: str, result: str) -> None:
            raise RuntimeError("the metrics broke")

    api = await make_apiserver()
    client = await KubeClient.from_config(api.write_kubeconfig(tmp_path / "kubeconfig"))
    try:
        async with Receiver() as receiver:
            settings = _settings(tmp_path / "kubeconfig")
            notify = NotifySettings.model_validate(
                {
                    "providers": [{"name": "audit", "type": "generic", "address": receiver.url}],
                    "alerts": [{"name": "all", "providerRef": {"name": "audit"}}],
                }
            )
            router = await Router.from_settings(notify, metrics=BrokenMetrics())
            daemon = Daemon(settings, client, router=router)
            task = asyncio.create_task(daemon.run(install_signals=False))
            await eventually(lambda: _true(daemon.leading), 10, "the daemon leading")
            hr = InvolvedObject.helmrelease("apps", "podinfo")
            router.publish(EventFactory("x").recovery_skipped(hr, why="dry run is on"))
            assert await asyncio.wait_for(task, 15) == 1
    finally:
        await client.close()
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("notify:audit:0 died: RuntimeError" in m and "Traceback" in m for m in messages)
    assert any("root task notify failed; stopping" in m for m in messages)


async def _true(value: bool) -> bool:
    return value


def test_blocked_releases_gauge_follows_its_setter() -> None:
    """The tracker sets how many releases the stuck ones block; the scrape says so."""
    metrics = Metrics()
    assert metrics.registry.get_sample_value("fluxwatch_blocked_helmreleases") == 0
    metrics.set_blocked(33)
    assert metrics.registry.get_sample_value("fluxwatch_blocked_helmreleases") == 33
    metrics.set_blocked(0)
    assert metrics.registry.get_sample_value("fluxwatch_blocked_helmreleases") == 0
