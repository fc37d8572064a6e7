"""The batch guardrail end to end, on the ``load`` scenario: count first, then act.

FLUX-FACTS §1: the seed's CronJob "counts while acting: it patches 10 HRs and only then
refuses the 11th; a guardrail must count first and then act on none". With the default
``max_batch: 10``, eleven releases due at once get no write and one alert; ten are all
recovered.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from daemon_harness import (
    HR,
    LEASES,
    TIME_SCALE,
    Cluster,
    Replica,
    Replicas,
    eventually,
    make_settings,
    view,
    writes,
)

from fluxwatch.kube.approvals import Approval
from fluxwatch.kube.helmrelease import ANNOTATION_FORCE_AT, ANNOTATION_REQUESTED_AT
from fluxwatch.notify.event import Meta
from fluxwatch.settings import leader_lease_name
from fluxwatch.sim import scenarios
from fluxwatch.sim.helmcontroller import HelmController

pytestmark = pytest.mark.e2e

RELEASES = 40
# The load scenario's stuck releases went Unknown at random times over an hour: in one
# incident only with a window that long (default 10m: several incidents, no refusal).
ONE_INCIDENT = {"guardrail": {"incident_window": 3600.0}}


async def _load(cluster: Cluster, stuck: int) -> scenarios.ScenarioRun:
    """``load`` with ``stuck`` releases stuck for 6 to 60 minutes, and helm-controller v1.x
    (bug included) in place of the scenario's bare Lease holder, so a recovery can verify."""
    run = await scenarios.start(
        "load", cluster.store, time_scale=TIME_SCALE, n=RELEASES, secrets=True, stuck=stuck
    )
    for holder in [h for h in run.holders if h.deployment == "helm-controller"]:
        await holder.stop()
        run.holders.remove(holder)
    helm = await cluster.start_helm_controller()
    await helm.wait_idle()
    assert len(run.expected_stuck) == stuck
    for key in run.expected_stuck:
        ready = view(cluster.store, key).ready
        assert ready is not None and ready.status == "Unknown"
    return run


def trips(replica: Replica) -> dict[str, float | None]:
    """``fluxwatch_guardrail_trips_total`` by guard, as the replica's registry has it."""
    registry = replica.daemon.metrics.registry
    return {
        guard: registry.get_sample_value("fluxwatch_guardrail_trips_total", {"guard": guard})
        for guard in ("batch", "budget", "attempts")
    }


async def test_eleven_due_at_once_get_no_write_and_one_alert_until_one_is_fixed(
    cluster: Cluster, replicas: Replicas
) -> None:
    """Eleven releases due at once: zero writes, one GuardrailTripped naming all eleven;
    fluxwatch waits until the count falls to ten, then recovers those."""
    run = await _load(cluster, 11)
    try:
        face = await cluster.face()
        settings = make_settings(cluster.kubeconfig(face), "fluxwatch-0", ONE_INCIDENT)
        replica = await replicas.start(settings)
        await replica.wait_ready()
        await eventually(lambda: "GuardrailTripped" in replica.reasons(), 10, "the alert")
        # No waiting to show that nothing follows: the admission that tripped started
        # nothing (none busy), and every later one is held while the guard stays tripped.
        tracker = replica.daemon.tracker
        assert tracker is not None
        assert tracker.guardrail.tripped
        assert tracker.busy == ()

        assert replica.reasons() == ["GuardrailTripped"]
        alert = replica.events[0]
        assert alert.severity == "error"
        assert alert.metadata[Meta.COUNT] == "11"
        for namespace, name in run.expected_stuck:
            assert f"{namespace}/{name}" in alert.message
        assert writes(face) == (0, 0)
        assert replica.writes == 0
        for key in run.expected_stuck:
            ready = view(cluster.store, key).ready
            assert ready is not None and ready.status == "Unknown"
            assert len(cluster.log.of(key)) == 1, "created, then never written to"
        assert trips(replica) == {"batch": 1, "budget": 0, "attempts": 0}

        # A person forces one of them (`flux reconcile hr --force`): ten remain, the count
        # fell to max_batch, and fluxwatch recovers those ten.
        fixed, *rest = run.expected_stuck
        token = "2026-01-01T00:00:00Z"
        annotations = {ANNOTATION_REQUESTED_AT: token, ANNOTATION_FORCE_AT: token}
        cluster.store.patch(HR, *fixed, {"metadata": {"annotations": annotations}})

        def recovered() -> set[tuple[str, str]]:
            return {
                (e.involved_object.namespace, e.involved_object.name)
                for e in replica.events
                if e.reason == "RecoverySucceeded"
            }

        await eventually(lambda: recovered() >= set(rest), 15, "the ten left recovered")
        assert recovered() == set(rest)
        assert replica.reasons(fixed) == []
        assert replica.reasons().count("GuardrailTripped") == 1
        assert writes(face) == (10, 0)
    finally:
        await run.stop()


async def test_ten_due_at_once_are_all_recovered(cluster: Cluster, replicas: Replicas) -> None:
    """Ten releases due at once (the limit itself): ten recoveries, no guardrail alert."""
    run = await _load(cluster, 10)
    try:
        face = await cluster.face()
        replica = await replicas.start(make_settings(cluster.kubeconfig(face), "fluxwatch-0"))
        await replica.wait_ready()
        expected = set(run.expected_stuck)

        def recovered() -> set[tuple[str, str]]:
            return {
                (e.involved_object.namespace, e.involved_object.name)
                for e in replica.events
                if e.reason == "RecoverySucceeded"
            }

        await eventually(lambda: recovered() >= expected, 15, "ten recoveries")
        assert "GuardrailTripped" not in replica.reasons()
        assert recovered() == expected
        for key in expected:
            assert replica.reasons(key) == ["StuckDetected", "RecoveryStarted", "RecoverySucceeded"]
            ready = view(cluster.store, key).ready
            assert ready is not None and ready.status == "True"
        assert writes(face) == (10, 0)  # one force-reconcile each
        assert replica.writes == 10
        assert trips(replica) == {"batch": 0, "budget": 0, "attempts": 0}
        assert isinstance(cluster.helm, HelmController)
    finally:
        await run.stop()


async def test_a_spent_budget_is_counted_as_one_trip(cluster: Cluster, replicas: Replicas) -> None:
    """Four due at once under a budget of two: two recovered, two wait, and the budget's
    refusal is one trip of the ``budget`` guard (not one per release, nor per recheck)."""
    run = await _load(cluster, 4)
    try:
        face = await cluster.face()
        settings = make_settings(
            cluster.kubeconfig(face), "fluxwatch-0", {"guardrail": {"max_recoveries": 2}}
        )
        replica = await replicas.start(settings)
        await replica.wait_ready()
        await eventually(
            lambda: replica.reasons().count("RecoverySucceeded") == 2, 15, "two recoveries"
        )
        await eventually(lambda: trips(replica)["budget"] == 1, 5, "the budget trip counted")
        await asyncio.sleep(1.0)  # rechecks while the two wait add nothing
        assert trips(replica) == {"batch": 0, "budget": 1, "attempts": 0}
        assert writes(face) == (2, 0)
    finally:
        await run.stop()


async def test_a_refused_incident_approved_by_a_person_is_recovered_under_the_budget(
    cluster: Cluster, replicas: Replicas
) -> None:
    """Issue 12: after a GuardrailTripped the alert names the command; the approval it
    writes on fluxwatch's leader Lease is honoured once by the leader: IncidentApproved
    names who approved, ten releases are recovered (the budget), the eleventh waits for
    the window, and the same approval seen again on every renewal is not used twice."""
    run = await _load(cluster, 11)
    try:
        face = await cluster.face()
        settings = make_settings(cluster.kubeconfig(face), "fluxwatch-0", ONE_INCIDENT)
        replica = await replicas.start(settings)
        await replica.wait_ready()
        await eventually(lambda: "GuardrailTripped" in replica.reasons(), 10, "the alert")
        [alert] = replica.of()
        incident = alert.metadata[Meta.INCIDENT]
        assert alert.message.count(f"fluxwatch approve {incident}") == 1
        assert writes(face) == (0, 0)

        approval = Approval.new(incident, "jane@example.com", time.time(), "the API is back")
        lease = (settings.leader.namespace, leader_lease_name(settings))
        patch = {"metadata": {"annotations": {approval.key: approval.value()}}}
        cluster.store.patch(LEASES, *lease, patch)

        def recovered() -> set[tuple[str, str]]:
            return {
                (e.involved_object.namespace, e.involved_object.name)
                for e in replica.events
                if e.reason == "RecoverySucceeded"
            }

        await eventually(lambda: len(recovered()) == 10, 20, "ten recoveries (the budget)")
        [approved] = [e for e in replica.events if e.reason == "IncidentApproved"]
        assert approved.metadata[Meta.APPROVED_BY] == "jane@example.com"
        assert approved.metadata[Meta.INCIDENT] == incident
        assert "the API is back" in approved.message
        assert approval.token not in approved.message
        # Every event about one of the incident's releases carries its id.
        for event in replica.events:
            if event.involved_object.kind == "HelmRelease":
                assert event.metadata[Meta.INCIDENT] == incident, event
        assert "GuardrailBudgetSpent" not in replica.reasons()  # logged, not alerted
        await asyncio.sleep(1.0)  # several renewals see the same approval
        assert replica.reasons().count("IncidentApproved") == 1
        assert len(recovered()) == 10
    finally:
        await run.stop()
