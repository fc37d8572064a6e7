"""The lease monitor end to end: the simulated helm-controller's leader election misbehaves,
the daemon watching its Lease over the real client raises the alerts (FLUX-FACTS §5).

A leader change is a new ``holderIdentity`` (``LeaderChanged``); more than
``flap_threshold`` (3) changes within ``flap_window`` is ``LeaderFlapping``;
``leaseDurationSeconds`` (plus grace) without the Lease changing is
``ControllerLeaderless``, cleared by ``LeaderRestored`` when a pod leads again.
"""

from __future__ import annotations

import time

import pytest
from daemon_harness import (
    Cluster,
    Replica,
    Replicas,
    add_stuck,
    eventually,
    make_settings,
)

from fluxwatch.notify.event import Meta
from fluxwatch.sim.helmcontroller import HELM_LEASE

pytestmark = pytest.mark.e2e


def _count(replica: Replica, reason: str) -> int:
    return replica.reasons().count(reason)


def _leaderless(replica: Replica) -> float | None:
    registry = replica.daemon.metrics.registry
    return registry.get_sample_value("fluxwatch_lease_leaderless", {"lease": HELM_LEASE})


async def test_lease_alerts_for_a_leader_lost_flapping_and_dropped(
    cluster: Cluster, replicas: Replicas
) -> None:
    """helm-controller loses its Lease once (LeaderChanged naming both holders), three more
    times in a row (the fourth change within the window: LeaderFlapping, once), then drops
    it with nobody taking over (ControllerLeaderless) until a pod comes back
    (LeaderRestored)."""
    helm = await cluster.start_helm_controller()
    # Ready=Unknown when the leader changes: a suspect. The threshold is raised so that it
    # stays short of stuck (and out of this test's events) until the end.
    installing = add_stuck(cluster.store, "installing", since=time.time())
    face = await cluster.face()
    settings = make_settings(cluster.kubeconfig(face), "fluxwatch-0", {"watch": {"threshold": 60}})
    replica = await replicas.start(settings)
    await replica.wait_ready()
    assert replica.reasons() == []  # the Lease as first seen is no change

    old = helm.identity
    helm.lose_lease()
    new = await helm.wait_leader(other_than=old)
    await eventually(lambda: _count(replica, "LeaderChanged") == 1, 5, "LeaderChanged")
    changed = replica.events[-1]
    assert changed.involved_object.kind == "Lease"
    assert changed.involved_object.name == HELM_LEASE
    assert changed.metadata[Meta.PREVIOUS_HOLDER] == old
    assert changed.metadata[Meta.LEASE_HOLDER] == new
    assert changed.metadata[Meta.CONTROLLER] == "helm-controller"
    assert changed.metadata[Meta.SUSPECTS] == "1"
    assert "apps/installing" in changed.message
    assert replica.daemon.tracker is not None
    assert replica.daemon.tracker.suspicion(installing) is not None
    # The leader change made one incident of its suspects, and says which (issue 12).
    incident = replica.daemon.tracker.incident_of(installing)
    assert incident is not None and incident.cause.startswith("helm-controller")
    assert changed.metadata[Meta.INCIDENT] == incident.id
    assert "LeaderFlapping" not in replica.reasons()

    await helm.flap(3)
    await eventually(lambda: _count(replica, "LeaderChanged") == 4, 5, "four LeaderChanged")
    await eventually(lambda: "LeaderFlapping" in replica.reasons(), 5, "LeaderFlapping")
    flapping = next(e for e in replica.events if e.reason == "LeaderFlapping")
    assert flapping.severity == "error"
    assert flapping.metadata[Meta.CHANGES] == "4"
    assert replica.reasons().count("LeaderFlapping") == 1

    last = helm.identity
    helm.drop_lease()
    await eventually(
        lambda: "ControllerLeaderless" in replica.reasons(), 10, "ControllerLeaderless"
    )
    leaderless = next(e for e in replica.events if e.reason == "ControllerLeaderless")
    assert leaderless.severity == "error"
    assert leaderless.metadata[Meta.LEASE_HOLDER] == last
    assert not helm.is_leader
    assert "LeaderRestored" not in replica.reasons()
    assert _leaderless(replica) == 1

    helm.restore_lease()
    restored_by = await helm.wait_leader(other_than=last)
    await eventually(lambda: "LeaderRestored" in replica.reasons(), 5, "LeaderRestored")
    restored = next(e for e in replica.events if e.reason == "LeaderRestored")
    assert restored.metadata[Meta.LEASE_HOLDER] == restored_by

    assert {e.involved_object.kind for e in replica.events} == {"Lease"}
    reasons = [r for r in replica.reasons() if r != "LeaderChanged"]
    assert reasons == ["LeaderFlapping", "ControllerLeaderless", "LeaderRestored"]
    assert _leaderless(replica) == 0

    # The leader shuts down cleanly (ReleaseOnCancel: an empty holder) and no pod comes
    # back: leaderless again, and the alert names who released the Lease.
    await helm.lease.stop(release=True)
    await eventually(
        lambda: _count(replica, "ControllerLeaderless") == 2, 10, "ControllerLeaderless"
    )
    released = [e for e in replica.events if e.reason == "ControllerLeaderless"][-1]
    assert f"was released by {restored_by} and no pod has taken it since" in released.message
    assert released.metadata[Meta.LEASE_HOLDER] == restored_by
