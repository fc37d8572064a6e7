"""fluxwatch's writes and reads over real HTTP: preconditions, markers, metadata-only storage,
core/v1 Events, and leader election between two candidates."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from fluxwatch.app import build_recorder
from fluxwatch.kube.client import HELMRELEASES, KubeApiError, KubeClient, KubeConnectionError
from fluxwatch.kube.helmrelease import (
    ANNOTATION_FORCE_AT,
    ANNOTATION_REQUESTED_AT,
    ANNOTATION_RESET_AT,
    ANNOTATION_SUSPENDED_AT,
    hr_view,
)
from fluxwatch.kube.leader import LeaderElector
from fluxwatch.kube.patch import HelmReleaseWriter, HelmStorageReader
from fluxwatch.notify.event import EventFactory, InvolvedObject
from fluxwatch.notify.metrics import MemoryMetrics
from fluxwatch.settings import load_settings
from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.sim.scenarios import start
from tests.conftest import kubernetes_event_router

HR = "helmreleases.helm.toolkit.fluxcd.io"


@pytest.fixture
async def stuck(apiserver: ApiServer) -> AsyncIterator[tuple[str, str]]:
    """One release in the upstream stuck shape with its Helm Secrets (FLUX-FACTS §1, §4)."""
    run = await start("load", apiserver.store, n=3, stuck=1, secrets=True)
    [key] = run.expected_stuck
    yield key
    await run.stop()


async def test_force_reconcile_writes_one_token_to_both_annotations(
    apiserver: ApiServer, client: KubeClient, hr: Callable[..., dict[str, Any]]
) -> None:
    """FLUX-FACTS §3: requestedAt and forceAt, one new value: `flux reconcile hr --force`."""
    apiserver.store.create(HR, hr("podinfo", "apps"))
    writer = HelmReleaseWriter(client)
    view = await writer.get("apps", "podinfo")
    written = await writer.force_reconcile(view, "2026-11-26T10:00:00.000000Z")
    stored = apiserver.store.get(HR, "apps", "podinfo")["metadata"]["annotations"]
    assert (
        stored[ANNOTATION_REQUESTED_AT]
        == stored[ANNOTATION_FORCE_AT]
        == ("2026-11-26T10:00:00.000000Z")
    )
    assert written.generation == view.generation  # annotations are not spec


async def test_reset_writes_one_token_to_requested_at_and_reset_at(
    apiserver: ApiServer, client: KubeClient, hr: Callable[..., dict[str, Any]]
) -> None:
    """FLUX-FACTS §3: requestedAt and resetAt, one new value: what `flux reconcile hr
    --reset` writes (no forceAt, which only --force adds), over the strict server."""
    apiserver.store.create(HR, hr("podinfo", "apps"))
    writer = HelmReleaseWriter(client)
    view = await writer.get("apps", "podinfo")
    written = await writer.reset(view, "2026-11-27T10:00:00.000000Z")
    stored = apiserver.store.get(HR, "apps", "podinfo")["metadata"]["annotations"]
    assert stored == {
        ANNOTATION_REQUESTED_AT: "2026-11-27T10:00:00.000000Z",
        ANNOTATION_RESET_AT: "2026-11-27T10:00:00.000000Z",
    }
    assert written.requested_at == "2026-11-27T10:00:00.000000Z"
    assert written.resource_version != view.resource_version
    assert written.generation == view.generation


async def test_every_write_is_refused_on_a_stale_view(
    apiserver: ApiServer, client: KubeClient, hr: Callable[..., dict[str, Any]]
) -> None:
    """A person's change between the decision and the write makes the write a 409."""
    apiserver.store.create(HR, hr("podinfo", "apps"))
    writer = HelmReleaseWriter(client)
    judged = await writer.get("apps", "podinfo")
    apiserver.store.patch(HR, "apps", "podinfo", {"spec": {"suspend": True}})  # a person
    for write in (
        writer.force_reconcile(judged, "t"),
        writer.reset(judged, "t"),
        writer.suspend(judged, "2026-11-26T10:00:00Z"),
        writer.resume(judged),
    ):
        with pytest.raises(KubeApiError) as caught:
            await write
        assert caught.value.conflict
    meta = apiserver.store.get(HR, "apps", "podinfo")["metadata"]
    assert ANNOTATION_SUSPENDED_AT not in meta.get("annotations", {})


async def test_suspend_and_its_marker_land_together_and_leave_together(
    apiserver: ApiServer, client: KubeClient, hr: Callable[..., dict[str, Any]]
) -> None:
    apiserver.store.create(HR, hr("podinfo", "apps"))
    writer = HelmReleaseWriter(client)
    suspended = await writer.suspend(await writer.get("apps", "podinfo"), "2026-11-26T10:00:00Z")
    assert suspended.suspend and suspended.suspended_at == "2026-11-26T10:00:00Z"
    assert suspended.generation == 2  # spec changed
    resumed = await writer.resume(suspended)
    stored = apiserver.store.get(HR, "apps", "podinfo")
    assert stored["spec"]["suspend"] is False
    assert ANNOTATION_SUSPENDED_AT not in (stored["metadata"].get("annotations") or {})
    assert resumed.generation == 3


async def test_a_release_being_deleted_takes_the_resume_and_keeps_its_deletion(
    apiserver: ApiServer, client: KubeClient, hr: Callable[..., dict[str, Any]]
) -> None:
    """The resume-pending verdict outranks "being deleted": the strict server takes a spec
    change while helm-controller's finalizer holds the object, so helm-controller then
    uninstalls instead of letting a suspended release go without a Helm uninstall."""
    body = hr("podinfo", "apps")
    body["metadata"]["finalizers"] = ["finalizers.fluxcd.io"]
    apiserver.store.create(HR, body)
    writer = HelmReleaseWriter(client)
    await writer.suspend(await writer.get("apps", "podinfo"), "2026-11-26T10:00:00Z")
    await client.request(
        "DELETE", "/apis/helm.toolkit.fluxcd.io/v2/namespaces/apps/helmreleases/podinfo"
    )
    deleting = await writer.get("apps", "podinfo")
    assert deleting.deleting and deleting.suspend
    resumed = await writer.resume(deleting)
    assert resumed.deleting and not resumed.suspend and resumed.suspended_at is None


async def test_status_correct_writes_ready_and_released_from_history(
    apiserver: ApiServer, client: KubeClient, stuck: tuple[str, str]
) -> None:
    """FLUX-FACTS §3: Released=True and Ready=True through /status, the whole list, reason
    from history[0].action, observedGeneration = generation."""
    writer = HelmReleaseWriter(client)
    view = await writer.get(*stuck)
    assert view.ready is not None and view.ready.status == "Unknown"
    fixed = await writer.correct_status(view, now=1_700_000_000.0)
    assert fixed.ready is not None and fixed.released is not None
    assert (fixed.ready.status, fixed.ready.reason) == ("True", "InstallSucceeded")
    assert fixed.released.status == "True"
    assert fixed.ready.observed_generation == view.generation
    assert apiserver.stats.requests[("patch", f"{HR}/status")] == 1


async def test_storage_is_read_metadata_only(
    apiserver: ApiServer, client: KubeClient, stuck: tuple[str, str]
) -> None:
    """FLUX-FACTS §4: the labels answer; no release payload crosses the wire."""
    view = hr_view(apiserver.store.get(HR, *stuck))
    assert view.last_release is not None
    apiserver.stats.reset()
    releases = await HelmStorageReader(client).releases(view.storage_namespace, view.release_name)
    newest = max(releases, key=lambda r: r.version)
    assert (newest.name, newest.version, newest.status) == (
        view.release_name,
        view.last_release.version,
        "deployed",
    )
    full, _ = apiserver.store.list("secrets", view.storage_namespace)
    payload = sum(len(s["data"]["release"]) for s in full if "release" in s.get("data", {}))
    assert payload > 0
    # Only labels came over the wire: less than the payloads alone would weigh.
    assert apiserver.stats.bytes[("list", "secrets")] < payload


async def test_kubernetes_event_provider_creates_an_event_on_the_release(
    apiserver: ApiServer, client: KubeClient, hr: Callable[..., dict[str, Any]]
) -> None:
    """`kubectl describe hr` and `flux events` show what fluxwatch did."""
    created = apiserver.store.create(HR, hr("podinfo", "apps"))
    router = await kubernetes_event_router(client)
    obj = InvolvedObject.helmrelease("apps", "podinfo", created["metadata"]["uid"])
    router.publish(EventFactory("fluxwatch-test").stuck_detected(obj, age=400, threshold=300))
    await router.close(5)
    events, _ = apiserver.store.list("events", "apps")
    [event] = events
    assert event["involvedObject"]["name"] == "podinfo"
    assert event["involvedObject"]["uid"] == created["metadata"]["uid"]
    assert event["reason"] == "StuckDetected"
    assert event["type"] == "Warning"


async def test_the_default_recorder_folds_repeats_with_a_patch_on_the_strict_server(
    apiserver: ApiServer, client: KubeClient, hr: Callable[..., dict[str, Any]]
) -> None:
    """events.record (on by default) records every event on its object; a repeat is a
    strategic merge patch of count and lastTimestamp on the first Event (client-go's
    recorder), which the strict server accepts; the alert dedup window does not apply."""
    created = apiserver.store.create(HR, hr("podinfo", "apps"))
    meta = created["metadata"]
    settings = load_settings(None, {"kubeconfig": "unused"})
    assert settings.events.record
    recorder = build_recorder(settings, client, MemoryMetrics())
    assert recorder is not None
    obj = InvolvedObject.helmrelease("apps", "podinfo", meta["uid"], meta["resourceVersion"])
    event = EventFactory("fluxwatch-test").recovery_skipped(obj, why="dry run")
    for _ in range(3):
        recorder.publish(event)
    await recorder.close(5)
    [stored] = apiserver.store.list("events", "apps")[0]
    assert stored["count"] == 3
    assert stored["involvedObject"]["uid"] == meta["uid"]
    assert stored["source"] == {"component": "fluxwatch"}
    assert stored["reportingComponent"] == "fluxwatch"
    assert stored["reportingInstance"] == "fluxwatch-test"
    # Sent without eventTime; the server writes the zero MicroTime back as null.
    assert stored["eventTime"] is None


async def test_the_recorder_can_be_turned_off_or_replaced(client: KubeClient) -> None:
    off = load_settings(None, {"kubeconfig": "unused", "events": {"record": False}})
    assert build_recorder(off, client, MemoryMetrics()) is None
    provider = load_settings(
        None,
        {
            "kubeconfig": "unused",
            "notify": {"providers": [{"name": "k8s", "type": "kubernetes-event"}]},
        },
    )
    assert build_recorder(provider, client, MemoryMetrics()) is None


async def test_one_leader_and_a_clean_hand_over(apiserver: ApiServer, client: KubeClient) -> None:
    """Two candidates: exactly one leads; stopping it releases the Lease and the other takes
    over without waiting for it to expire."""

    def candidate(identity: str) -> LeaderElector:
        return LeaderElector(
            client,
            "fluxwatch-system",
            "fluxwatch-leader-election",
            identity,
            lease_duration=30.0,
            renew_deadline=20.0,
            retry_period=0.1,
        )

    first, second = candidate("a"), candidate("b")
    task_a = asyncio.create_task(first.run())
    await asyncio.wait_for(first.leading.wait(), 5)
    task_b = asyncio.create_task(second.run())
    await asyncio.sleep(0.5)
    assert first.is_leader and not second.is_leader
    task_a.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task_a
    # Released: the 30 s lease would otherwise keep b waiting for 30 s.
    await asyncio.wait_for(second.leading.wait(), 5)
    lease = apiserver.store.get(
        "leases.coordination.k8s.io", "fluxwatch-system", "fluxwatch-leader-election"
    )
    assert lease["spec"]["holderIdentity"] == "b"
    assert lease["spec"]["leaseTransitions"] >= 1
    task_b.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task_b


async def test_a_leader_renews_with_one_request_and_yields_to_a_changed_lease(
    apiserver: ApiServer, client: KubeClient
) -> None:
    """Renewals PUT the Lease as last written (no GET); when someone else has written it
    since, the PUT gets 409, the leader reads the Lease and follows what it says."""
    lease_key = "leases.coordination.k8s.io"
    elector = LeaderElector(
        client,
        "fluxwatch-system",
        "lead",
        "a",
        lease_duration=3.0,
        renew_deadline=1.0,
        retry_period=0.05,
    )
    task = asyncio.create_task(elector.run())
    try:
        await asyncio.wait_for(elector.leading.wait(), 5)
        apiserver.stats.reset()
        first = apiserver.store.get(lease_key, "fluxwatch-system", "lead")["spec"]["renewTime"]
        await asyncio.sleep(0.5)
        stats = apiserver.stats.requests
        renewals = stats[("update", lease_key)]
        assert renewals >= 3
        assert stats[("get", lease_key)] == 0, "a renewal reads nothing first"
        lease = apiserver.store.get(lease_key, "fluxwatch-system", "lead")
        assert lease["spec"]["renewTime"] > first
        assert lease["spec"]["holderIdentity"] == "a"

        # Another replica took the Lease (as after a partition): the next PUT is refused
        # (409), the leader reads the Lease, sees a live holder, stops renewing and steps
        # down at its renew deadline.
        lease["spec"].update(holderIdentity="b")
        apiserver.store.update(lease_key, lease)
        for _ in range(100):
            if not elector.is_leader:
                break
            await asyncio.sleep(0.05)
        assert not elector.is_leader
        assert stats[("get", lease_key)] >= 1
        assert elector.holder == "b"
        held = apiserver.store.get(lease_key, "fluxwatch-system", "lead")["spec"]
        assert held["holderIdentity"] == "b", "the leader did not overwrite the new holder"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_leader_that_cannot_renew_steps_down(
    apiserver: ApiServer, client: KubeClient
) -> None:
    """Every renewal failing (API down) makes the leader stop leading within renew_deadline."""
    elector = LeaderElector(
        client,
        "fluxwatch-system",
        "lead",
        "a",
        lease_duration=2.0,
        renew_deadline=1.0,
        retry_period=0.1,
    )
    task = asyncio.create_task(elector.run())
    try:
        await asyncio.wait_for(elector.leading.wait(), 5)
        apiserver.faults.fail_next(1000, code=500)
        for _ in range(40):
            if not elector.is_leader:
                break
            await asyncio.sleep(0.1)
        assert not elector.is_leader
    finally:
        apiserver.faults.clear()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_cut_watch_stream_arrives_as_a_kube_connection_error(
    apiserver: ApiServer, client: KubeClient, hr: Callable[..., dict[str, Any]]
) -> None:
    """aiohttp's errors stop at ``kube/client``: the informer catches KubeError only."""
    apiserver.store.create(HR, hr("podinfo", "apps"))
    stream = await client.stream(
        HELMRELEASES.path("apps"),
        query={"watch": "true"},
        accept="application/json",
        read_timeout=5,
    )
    try:
        chunks = stream.chunks()
        assert b'"ADDED"' in await anext(chunks)
        assert apiserver.faults.drop_watches() == 1
        with pytest.raises(KubeConnectionError, match=r"GET /apis/helm\.toolkit\.fluxcd\.io/v2/"):
            await anext(chunks)
    finally:
        stream.release()


async def test_the_lease_carries_the_hand_over_and_fences_a_deposed_leader(
    apiserver: ApiServer, client: KubeClient
) -> None:
    """``carry``: a leader's persist() writes its hand-over at once, ten asked together cost
    one write; a deposed leader's persist() is refused and does not overwrite its
    successor's (the Lease's resourceVersion precondition), and ``annotations`` shows what
    the Lease holds (the daemon's take-over: tests/e2e/test_daemon_guardrail_handover.py)."""
    lease_key = "leases.coordination.k8s.io"
    note = ["0"]
    a = LeaderElector(
        client,
        "fluxwatch-system",
        "lead",
        "a",
        lease_duration=30.0,
        renew_deadline=20.0,
        retry_period=10.0,  # no renewal within the test: every write is a persist()
        carry=lambda: {"fluxwatch.io/guardrail": note[0]},
    )
    task_a = asyncio.create_task(a.run())
    await asyncio.wait_for(a.leading.wait(), 5)
    apiserver.stats.reset()
    note[0] = "ten actions"
    assert all(await asyncio.gather(*(a.persist() for _ in range(10))))
    assert apiserver.stats.requests[("update", lease_key)] <= 2
    lease = apiserver.store.get(lease_key, "fluxwatch-system", "lead")
    assert lease["metadata"]["annotations"]["fluxwatch.io/guardrail"] == "ten actions"

    # Someone else takes the Lease behind a's back (a partition): a's next persist() is a
    # 409, it reads the Lease, sees b, and reports that nothing was recorded.
    lease["spec"].update(holderIdentity="b")
    apiserver.store.update(lease_key, lease)
    note[0] = "stale"
    assert await a.persist() is False
    held = apiserver.store.get(lease_key, "fluxwatch-system", "lead")
    assert held["metadata"]["annotations"]["fluxwatch.io/guardrail"] == "ten actions"
    assert a.annotations["fluxwatch.io/guardrail"] == "ten actions"
    task_a.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task_a


class CancelsWithTheRenewal(KubeClient):
    """Cancels ``target`` the moment a Lease PUT completes: the cancel and the renewal's
    result arrive together, as a SIGTERM can on a busy node."""

    target: asyncio.Task[None] | None = None
    armed = False

    async def replace(
        self, res: Any, namespace: str | None, name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        result = await super().replace(res, namespace, name, body)
        if self.armed and self.target is not None:
            self.armed = False
            self.target.cancel()
        return result


async def test_a_cancel_that_lands_with_a_renewal_ends_the_elector(
    apiserver: ApiServer, tmp_path: Path
) -> None:
    """Python 3.11's asyncio.wait_for returns the inner result and drops a cancel that
    lands as the inner call completes; an elector renewing under it would go on leading
    after its shutdown cancelled it, and the daemon's stop would wait forever."""
    client = await CancelsWithTheRenewal.from_config(
        apiserver.write_kubeconfig(tmp_path / "kubeconfig")
    )
    assert isinstance(client, CancelsWithTheRenewal)
    try:
        elector = LeaderElector(
            client,
            "fluxwatch-system",
            "lead",
            "a",
            lease_duration=5.0,
            renew_deadline=3.0,
            retry_period=0.05,
        )
        task = client.target = asyncio.create_task(elector.run())
        await asyncio.wait_for(elector.leading.wait(), 5)
        client.armed = True  # the next renewal's completion cancels the elector
        done, _ = await asyncio.wait([task], timeout=5)
        assert done, "the elector outlived its cancellation"
        assert task.cancelled()
        lease = apiserver.store.get("leases.coordination.k8s.io", "fluxwatch-system", "lead")
        assert lease["spec"]["holderIdentity"] in ("", None), "released on the way out"
    finally:
        await client.close()
