"""With the defaults, fluxwatch's story is in `kubectl describe`, next to helm-controller's.

The demo flow (the demo's own settings: production defaults, durations compressed)
runs the real daemon against the embedded cluster; then the machine's real kubectl
describes what it concerned. kubectl finds Events by its own field selector on
involvedObject (name, namespace, kind and uid), so an Event without the object's uid,
or one the server refused, would not show.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fluxwatch.app import Daemon, build_recorder, build_router
from fluxwatch.demo import DEMO_NAMESPACE, demo_settings
from fluxwatch.kube.client import KubeClient
from fluxwatch.notify.event import Event
from fluxwatch.notify.metrics import PrometheusMetrics
from fluxwatch.sim import scenarios
from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.sim.kubectl import Kubectl, find_kubectl
from fluxwatch.sim.receiver import Receiver
from fluxwatch.telemetry.metrics import Metrics

pytestmark = pytest.mark.e2e
SCALE = 0.01


@dataclass
class Played:
    server: ApiServer
    kubectl: Kubectl
    events: list[Event]  # what the daemon published (alerts)
    alerts: list[dict[str, Any]]  # what the webhook receiver got


@asynccontextmanager
async def demo(
    scenario: str, until: Callable[[list[Event]], bool], tmp_path: Path
) -> AsyncIterator[Played]:
    """Run the demo's daemon on ``scenario`` until ``until(events)``, stop it (which
    flushes the Event recorder), and hand over the cluster, still serving."""
    binary = find_kubectl()
    if binary is None:
        pytest.skip("kubectl is not installed (looked for /usr/bin/kubectl and on PATH)")
    alerts: list[dict[str, Any]] = []
    receiver = Receiver(on_alert=alerts.append)
    await receiver.start()
    try:
        async with ApiServer(tls=True, time_scale=SCALE) as server:
            run = await scenarios.start(scenario, server.store, time_scale=SCALE)
            server.store.create("namespaces", {"metadata": {"name": DEMO_NAMESPACE}})
            kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
            settings = demo_settings(kubeconfig, receiver.url, SCALE)
            assert settings.events.record, "recording Events is the default"
            client = await KubeClient.from_config(kubeconfig)
            metrics = Metrics()
            notify_metrics = PrometheusMetrics(metrics.registry)
            events: list[Event] = []
            daemon = Daemon(
                settings,
                client,
                metrics=metrics,
                router=await build_router(settings, client, metrics, notify_metrics),
                recorder=build_recorder(settings, client, notify_metrics),
                on_event=events.append,
            )
            task = asyncio.create_task(daemon.run(install_signals=False))
            try:
                async with asyncio.timeout(90):
                    while not until(events):
                        assert not task.done(), "the daemon stopped"
                        await asyncio.sleep(0.1)
            finally:
                daemon.stop()
                assert await task == 0
                await run.stop()
                await client.close()
            kubectl = Kubectl(binary, kubeconfig, tmp_path / "kube-cache")
            yield Played(server, kubectl, events, alerts)
    finally:
        await receiver.stop()


def described_events(described: str) -> list[list[str]]:
    """The rows of `kubectl describe`'s Events table: type, reason, age..., from, message."""
    table = described.split("\nEvents:", 1)[1]
    rows = [line.split() for line in table.splitlines() if line.strip()]
    return rows[2:]  # the header and its underline


def reasons_from(rows: list[list[str]], source: str) -> set[str]:
    return {row[1] for row in rows if source in row}


async def test_describe_hr_after_the_incident_925_demo(tmp_path: Path) -> None:
    """Issue 11's done-means: after the incident-925 demo with the defaults, `kubectl
    describe hr bp-vpa -n flux-system` lists fluxwatch's events next to
    helm-controller's; and the helm-controller Lease shows the leader change."""

    def recovered(events: list[Event]) -> bool:
        return any(e.reason == "RecoverySucceeded" for e in events)

    async with demo("incident-925", recovered, tmp_path) as played:
        out = await played.kubectl("describe", "hr", "bp-vpa", "-n", "flux-system")
        rows = described_events(out.check().stdout)
        assert {"StuckDetected", "RecoveryStarted", "RecoverySucceeded"} <= reasons_from(
            rows, "fluxwatch"
        ), out.stdout
        assert "HelmChartCreated" in reasons_from(rows, "helm-controller"), out.stdout
        assert ["Warning", "StuckDetected"] in [row[:2] for row in rows], out.stdout

        out = await played.kubectl(
            "describe", "lease", "helm-controller-leader-election", "-n", "flux-system"
        )
        assert "LeaderChanged" in reasons_from(described_events(out.check().stdout), "fluxwatch")


async def test_a_batch_refusal_is_one_alert_and_an_event_on_every_release(
    tmp_path: Path,
) -> None:
    """mass-outage: 15 releases stuck at once. The guardrail refuses them all with one
    alert, on fluxwatch's own leader Lease; `kubectl describe hr` of each refused release
    shows GuardrailTripped too, recorded as an Event but not alerted 15 times."""

    def tripped(events: list[Event]) -> bool:
        return any(e.reason == "GuardrailTripped" for e in events)

    async with demo("mass-outage", tripped, tmp_path) as played:
        assert [a["reason"] for a in played.alerts].count("GuardrailTripped") == 1
        [alert] = [e for e in played.events if e.reason == "GuardrailTripped"]
        subject = alert.involved_object
        assert (subject.kind, subject.namespace, subject.name) == (
            "Lease",
            DEMO_NAMESPACE,
            "fluxwatch-leader-election",
        )
        assert subject.uid
        out = await played.kubectl(
            "describe", "lease", "fluxwatch-leader-election", "-n", DEMO_NAMESPACE
        )
        assert "GuardrailTripped" in reasons_from(described_events(out.check().stdout), "fluxwatch")

        stored, _ = played.server.store.list("events")
        refused = {
            (e["involvedObject"]["namespace"], e["involvedObject"]["name"])
            for e in stored
            if e["reason"] == "GuardrailTripped" and e["involvedObject"]["kind"] == "HelmRelease"
        }
        assert len(refused) == 15
        namespace, name = sorted(refused)[0]
        out = await played.kubectl("describe", "hr", name, "-n", namespace)
        rows = described_events(out.check().stdout)
        assert ["Warning", "GuardrailTripped"] in [row[:2] for row in rows], out.stdout
