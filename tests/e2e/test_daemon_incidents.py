"""Incidents end to end (issue 12): a backlog worked off under the budget, and a mass
outage a person approves, recovered roots first.

Cluster time runs 50 times faster (``TIME_SCALE``): the 10-minute budget window and
incident window last 12 s, the 5-minute threshold 6 s.
"""

from __future__ import annotations

import time

import pytest
from daemon_harness import (
    LEASES,
    TIME_SCALE,
    Cluster,
    Replicas,
    add_stuck,
    eventually,
    make_settings,
)

from fluxwatch.kube.approvals import Approval
from fluxwatch.notify.event import Meta
from fluxwatch.settings import leader_lease_name

pytestmark = pytest.mark.e2e

DAY = 86400.0


def started(replica_events: list, name: str) -> float:  # type: ignore[type-arg]
    return next(
        i
        for i, e in enumerate(replica_events)
        if e.reason == "RecoveryStarted" and e.involved_object.name == name
    )


async def test_a_backlog_of_unrelated_stuck_releases_is_worked_off_under_the_budget(
    cluster: Cluster, replicas: Replicas
) -> None:
    """Twelve releases stuck since June 2023, February 2026 and March 2026 (four each) are
    three incidents, not one outage: no GuardrailTripped; ten are recovered at once
    (the budget), oldest first, each announced with its incident; the last two when the
    budget's window has slid."""
    helm = await cluster.start_helm_controller()
    now = time.time()
    backlog = {"june": now - 1000 * DAY, "feb": now - 80 * DAY, "mar": now - 50 * DAY}
    for tag, since in backlog.items():
        for i in range(4):
            add_stuck(cluster.store, f"{tag}-{i}", since=since + i)
    await helm.wait_idle()
    face = await cluster.face()
    replica = await replicas.start(make_settings(cluster.kubeconfig(face), "fluxwatch-0"))
    await replica.wait_ready()

    def recovered() -> list[str]:
        return [e.involved_object.name for e in replica.events if e.reason == "RecoverySucceeded"]

    await eventually(lambda: len(recovered()) >= 10, 20, "ten recoveries")
    # Admitted together, announced as each one's storage check returns: compare as sets.
    first = {e.involved_object.name for e in replica.events if e.reason == "StuckDetected"}
    oldest = {*(f"june-{i}" for i in range(4)), *(f"feb-{i}" for i in range(4))}
    assert first == {*oldest, "mar-0", "mar-1"}
    window = 600 * TIME_SCALE
    took = await eventually(lambda: len(recovered()) == 12, 3 * window, "the last two")
    assert took > 0
    assert "GuardrailTripped" not in replica.reasons()
    incidents = {e.metadata[Meta.INCIDENT] for e in replica.events if e.reason == "StuckDetected"}
    assert len(incidents) == 3


async def test_a_mass_outage_approved_by_a_person_is_recovered_roots_first(
    cluster: Cluster, replicas: Replicas
) -> None:
    """Twelve releases of one incident: a root, a middle one that dependsOn it, and ten
    leaves on those two; names and times (the leaves went Unknown first) would take the
    leaves first. Refused, then approved: the budget (ten) admits the root and the
    middle one, and the two left waiting are leaves. No helm-controller runs here, so
    what is compared is what fluxwatch chose to start, not how fast each recovered."""
    since = time.time() - 3600 * TIME_SCALE
    # The leaves went Unknown first: neither names nor times put the root first.
    add_stuck(cluster.store, "z-root", since=since + 2)
    add_stuck(cluster.store, "y-mid", since=since + 1, depends_on=("z-root",))
    for i in range(10):
        parent = "y-mid" if i % 2 else "z-root"
        add_stuck(cluster.store, f"a-leaf-{i}", since=since, depends_on=(parent,))
    face = await cluster.face()
    settings = make_settings(cluster.kubeconfig(face), "fluxwatch-0")
    replica = await replicas.start(settings)
    await replica.wait_ready()
    await eventually(lambda: "GuardrailTripped" in replica.reasons(), 10, "the refusal")
    [alert] = replica.of()
    incident = alert.metadata[Meta.INCIDENT]
    assert alert.metadata[Meta.COUNT] == "12"

    approval = Approval.new(incident, "oncall@example.com", time.time(), "")
    lease = (settings.leader.namespace, leader_lease_name(settings))
    annotations = {approval.key: approval.value()}
    cluster.store.patch(LEASES, *lease, {"metadata": {"annotations": annotations}})

    def detected() -> dict[str, dict[str, str]]:
        return {
            e.involved_object.name: dict(e.metadata)
            for e in replica.events
            if e.reason == "StuckDetected"
        }

    await eventually(lambda: len(detected()) == 10, 10, "ten admitted (the budget)")
    first = detected()
    assert {"z-root", "y-mid"} <= set(first)
    assert first["z-root"][Meta.BLOCKED] == "11" and first["y-mid"][Meta.BLOCKED] == "5"
    assert all(meta[Meta.INCIDENT] == incident for meta in first.values())
    waiting = set(replica.daemon.tracker.due) if replica.daemon.tracker else set()
    assert {name for _, name in waiting} <= {f"a-leaf-{i}" for i in range(10)}
