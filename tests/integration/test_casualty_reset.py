"""The reset strategy end to end: a failed release in the embedded cluster, the simulated
helm-controller answering the reset, fluxwatch's real client, writer and informer.

Nothing is faked between Recovery and the API server: the reset goes out as an
HTTP merge patch with the resourceVersion precondition (``kube/patch.py``), the
simulated helm-controller (v1.x failure modes, FLUX-FACTS §3) handles
``resetAt`` + ``requestedAt``, and Recovery sees the outcome only through the
informer's watch (ViewWaiter.notify). kubectl, an independent client, shows
helm-controller's Events of the failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fluxwatch.announce import EventAnnouncer
from fluxwatch.engine.clock import Clock
from fluxwatch.engine.config import EngineSettings, GuardrailSettings, VerifyStorage
from fluxwatch.engine.policy import Kind, Skip, casualty, decide
from fluxwatch.engine.recovery import Recovery, RecoveryOptions, ViewWaiter
from fluxwatch.kube.client import HELMRELEASES as HR_RESOURCE
from fluxwatch.kube.client import KubeClient
from fluxwatch.kube.helmrelease import (
    ANNOTATION_REQUESTED_AT,
    ANNOTATION_RESET_AT,
    HELMRELEASES_CODEC,
    HRView,
)
from fluxwatch.kube.informer import Informer
from fluxwatch.kube.patch import HelmReleaseWriter
from fluxwatch.notify.event import Event, Meta
from fluxwatch.sim import scenarios
from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.sim.helmcontroller import HELMRELEASES, HelmController
from fluxwatch.sim.kubectl import Kubectl
from fluxwatch.sim.scenarios import CATALOG, UPGRADE_TIMEOUT

KEY = ("flux-system", "bp-cilium")  # the catalog's root: no dependsOn to wait for


@dataclass
class Cluster:
    server: ApiServer
    helm: HelmController
    client: KubeClient
    writer: HelmReleaseWriter
    waiter: ViewWaiter
    events: list[Event] = field(default_factory=list)

    def raw(self) -> dict[str, Any]:
        return self.server.store.get(HELMRELEASES, *KEY)

    def recovery(self, *, reset: bool = True, dry_run: bool = False) -> Recovery:
        settings = EngineSettings(
            guardrail=GuardrailSettings(dry_run=dry_run), verify_storage=VerifyStorage.NEVER
        )
        return Recovery(
            self.writer,
            self.waiter,
            settings,
            RecoveryOptions(reset=reset, verify_timeout=5.0),
            EventAnnouncer(self.events.append),
            clock=Clock(),
        )

    async def casualty_of(self, recovery: Recovery) -> tuple[HRView, Any]:
        view = await self.writer.get(*KEY)
        now = recovery.clock.now()
        verdict = decide(view, None, recovery.settings, now)
        assert (verdict.skip, verdict.resettable) == (Skip.FAILED, True), verdict
        return view, casualty(view, verdict, now)


async def failed_release(server: ApiServer) -> HelmController:
    """bp-cilium with install retries 0: one timed-out install and it is Stalled."""
    scenarios.ensure_namespaces(server.store, ["flux-system", "kube-system"])
    helm = HelmController(server.store, install_duration=0.05, remediation_requeue=0.05)
    await helm.start()
    await helm.wait_leader()
    helm.fail(*KEY, UPGRADE_TIMEOUT)
    obj = scenarios.helmrelease(CATALOG[0])
    obj["spec"]["install"]["remediation"]["retries"] = 0
    obj["spec"]["upgrade"]["remediation"]["retries"] = 0
    store = server.store
    watcher = store.watch(HELMRELEASES, resource_version=str(store.resource_version))
    store.create(HELMRELEASES, obj)
    try:
        async with asyncio.timeout(30):
            while "Stalled" not in conditions(store.get(HELMRELEASES, *KEY)):
                await watcher.wait()
                while watcher.pop() is not None:
                    pass
    finally:
        watcher.close()
    return helm


def conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


@pytest.fixture
async def cluster(apiserver: ApiServer, tmp_path: Path) -> AsyncIterator[Cluster]:
    helm = await failed_release(apiserver)
    client = await KubeClient.from_config(apiserver.write_kubeconfig(tmp_path / "kubeconfig"))
    waiter = ViewWaiter()
    informer: Informer[HRView] = Informer(
        client, HR_RESOURCE, HELMRELEASES_CODEC, lambda _e, view, _o: waiter.notify(view)
    )
    task = asyncio.create_task(informer.run())
    try:
        async with asyncio.timeout(30):
            await informer.synced.wait()
        yield Cluster(apiserver, helm, client, HelmReleaseWriter(client), waiter)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await helm.stop()
        await client.close()


async def test_reset_recovers_a_stalled_release_once_the_cause_is_gone(cluster: Cluster) -> None:
    recovery = cluster.recovery()
    view, verdict = await cluster.casualty_of(recovery)
    assert verdict.kind is Kind.CASUALTY
    cluster.helm.heal(*KEY)
    await recovery(view, verdict)
    assert [e.reason for e in cluster.events] == [
        "CasualtyDetected",
        "RecoveryStarted",
        "RecoverySucceeded",
    ]
    assert cluster.events[-1].metadata[Meta.STRATEGY] == "reset"
    raw = cluster.raw()
    annotations = raw["metadata"]["annotations"]
    token = annotations[ANNOTATION_RESET_AT]
    assert annotations[ANNOTATION_REQUESTED_AT] == token
    assert raw["status"]["lastHandledResetAt"] == token
    ready = next(c for c in raw["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "UpgradeSucceeded")
    assert "installFailures" not in raw["status"]
    assert recovery.writes == 1


async def test_a_reset_while_the_cause_lasts_is_handled_but_not_verified(
    cluster: Cluster,
) -> None:
    """helm-controller handles the reset (lastHandledResetAt), tries again and stalls
    again: RecoveryFailed says so after verifyTimeout, and fluxwatch writes nothing more."""
    recovery = cluster.recovery()
    view, verdict = await cluster.casualty_of(recovery)
    await recovery(view, verdict)
    assert [e.reason for e in cluster.events][-1] == "RecoveryFailed"
    error = cluster.events[-1].metadata[Meta.ERROR]
    assert error.startswith("not Ready=True within 5s of the reset; helm-controller handled")
    raw = cluster.raw()
    assert (
        raw["status"]["lastHandledResetAt"] == raw["metadata"]["annotations"][ANNOTATION_RESET_AT]
    )
    # A failed release is upgraded after a reset (ReleaseStatusFailed with no failures
    # counted); the upgrade fails too and is counted afresh.
    assert "installFailures" not in raw["status"] and raw["status"]["upgradeFailures"] == 1
    assert conditions(raw)["Stalled"]["message"] == "Failed to upgrade after 1 attempt(s)"
    assert recovery.writes == 1


async def test_dry_run_and_the_setting_off_write_nothing(cluster: Cluster) -> None:
    before = cluster.raw()["metadata"]["resourceVersion"]
    for recovery in (cluster.recovery(dry_run=True), cluster.recovery(reset=False)):
        view, verdict = await cluster.casualty_of(recovery)
        await recovery(view, verdict)
        assert recovery.writes == 0
    assert [e.reason for e in cluster.events] == [
        "CasualtyDetected",
        "RecoverySkipped",
        "CasualtyDetected",
    ]
    raw = cluster.raw()
    assert raw["metadata"]["resourceVersion"] == before
    assert ANNOTATION_RESET_AT not in (raw["metadata"].get("annotations") or {})


async def test_a_person_suspending_it_meanwhile_stops_the_reset(cluster: Cluster) -> None:
    """The patch carries the judged resourceVersion: the server answers 409, Recovery reads
    the release again, finds it suspended by a person and writes nothing."""
    recovery = cluster.recovery()
    view, verdict = await cluster.casualty_of(recovery)
    cluster.server.store.patch(HELMRELEASES, *KEY, {"spec": {"suspend": True}})
    await recovery(view, verdict)
    raw = cluster.raw()
    assert raw["spec"]["suspend"] is True
    assert ANNOTATION_RESET_AT not in (raw["metadata"].get("annotations") or {})
    assert [e.reason for e in cluster.events] == ["CasualtyDetected", "RecoveryStarted"]


async def test_kubectl_shows_the_failure_and_the_stall(
    tls_apiserver: ApiServer, kubectl: Kubectl
) -> None:
    """What a person sees of a casualty with kubectl: helm-controller's Warning
    InstallFailed Event with its message, and the Stalled RetriesExceeded condition."""
    helm = await failed_release(tls_apiserver)
    try:
        listed = (await kubectl("events", "--for", "hr/bp-cilium", "-n", "flux-system")).check()
        warning = [line for line in listed.stdout.splitlines() if "InstallFailed" in line]
        assert len(warning) == 1 and "Warning" in warning[0].split()
        assert (
            "Helm install failed for release kube-system/kube-system-bp-cilium with chart "
            f"cilium@1.16.5: {UPGRADE_TIMEOUT}" in warning[0]
        )
        hr = json.loads(
            (await kubectl("get", "hr", "bp-cilium", "-n", "flux-system", "-o", "json"))
            .check()
            .stdout
        )
        conditions = {c["type"]: c for c in hr["status"]["conditions"]}
        assert conditions["Stalled"]["reason"] == "RetriesExceeded"
        assert conditions["Stalled"]["message"] == "Failed to install after 1 attempt(s)"
        assert hr["status"]["installFailures"] == 1
        described = (await kubectl("describe", "hr", "bp-cilium", "-n", "flux-system")).check()
        assert "RetriesExceeded" in described.stdout and "InstallFailed" in described.stdout
    finally:
        await helm.stop()
