"""Two fluxwatch replicas against one cluster: one leader writes, the other takes over.

Each replica talks to its own HTTPS face of the same emulated cluster, so the emulator's
request counters tell which replica wrote what. DESIGN "HA and scale": all replicas watch,
one leader (a Lease of its own) writes and alerts.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from daemon_harness import (
    LEASES,
    THRESHOLD,
    Cluster,
    Replicas,
    add_ready,
    add_stuck,
    becoming_stuck,
    eventually,
    make_settings,
    never_two_leaders,
    view,
    writes,
)

from fluxwatch.kube.leader import LeaderElector

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("how", ["stopped", "cut-off", "hung"])
async def test_one_replica_writes_and_the_other_takes_over(
    cluster: Cluster, replicas: Replicas, how: str
) -> None:
    """Replica A leads and recovers a stuck release; B, watching the same releases, writes
    nothing and says nothing. Then A goes away: ``stopped`` (SIGTERM's path: it releases
    its Lease), ``cut-off`` (its API server face dies: renewals fail at once) or ``hung``
    (its requests never get an answer: a renewal must not outlive ``renew_deadline``). In
    the last two A steps down after ``renew_deadline`` and B waits for the Lease to expire
    on its own clock. B becomes leader, never at the same time as A, and recovers a release
    that gets stuck afterwards.
    """
    await cluster.start_helm_controller()
    first = add_stuck(cluster.store, "podinfo", since=time.time() - 3600 * 0.02)
    add_ready(cluster.store, "healthy")
    face_a, face_b = await cluster.face(), await cluster.face()
    a = await replicas.start(make_settings(cluster.kubeconfig(face_a), "fluxwatch-a"))
    await a.wait_ready()
    b = await replicas.start(make_settings(cluster.kubeconfig(face_b), "fluxwatch-b"))
    await eventually(
        lambda: all(i.synced.is_set() for i in b.daemon.informers) and bool(b.daemon.informers),
        10,
        "replica B synced",
    )

    with never_two_leaders([a, b]) as leaders:
        await eventually(lambda: "RecoverySucceeded" in a.reasons(first), 10, "A recovers")
        assert a.reasons(first) == ["StuckDetected", "RecoveryStarted", "RecoverySucceeded"]
        assert writes(face_a) == (1, 0)  # force-reconcile, verified through the watch
        assert a.writes == 1
        # B judged the same release stuck all along, as a follower: no write, no event.
        assert not b.leading
        assert writes(face_b) == (0, 0)
        assert b.writes == 0
        assert b.events == []

        if how == "stopped":
            assert await a.stop() == 0
        elif how == "cut-off":
            await face_a.stop()
            await eventually(lambda: not a.leading, 5, "A steps down when it cannot renew")
        else:
            face_a.faults.latency = 60.0  # every request A sends from now on hangs
            await eventually(lambda: not a.leading, 5, "A steps down when it cannot renew")
        await eventually(lambda: b.leading, 10, "B takes over")
        took_over = time.monotonic()

        second = add_stuck(cluster.store, "podinfo-2", since=becoming_stuck(1.0))
        await eventually(
            lambda: "RecoverySucceeded" in b.reasons(second), THRESHOLD + 10, "B recovers"
        )
    assert leaders == ["fluxwatch-a", "fluxwatch-b"]
    assert b.reasons(second) == ["StuckDetected", "RecoveryStarted", "RecoverySucceeded"]
    assert writes(face_b) == (1, 0)
    assert b.writes == 1
    # A wrote nothing more after it went away, and said nothing about the new release.
    assert writes(face_a) == (1, 0)
    assert a.writes == 1
    assert a.of(second) == []
    ready = view(cluster.store, second).ready
    assert ready is not None and ready.status == "True"
    assert time.monotonic() - took_over < THRESHOLD + 5
    lease = cluster.store.get(
        "leases.coordination.k8s.io", "fluxwatch-system", "fluxwatch-leader-election"
    )
    assert lease["spec"]["holderIdentity"] == "fluxwatch-b"
    assert lease["spec"]["leaseTransitions"] >= 1
    assert isinstance(b.daemon.elector, LeaderElector)


async def test_a_leader_that_loses_the_lease_while_verifying_still_says_how_its_write_ended(
    cluster: Cluster, replicas: Replicas
) -> None:
    """A writes force-reconcile and waits for helm-controller; meanwhile someone else takes
    the Lease (as when a renewal misses its deadline on a loaded node). The write is A's
    and only A knows it: its RecoverySucceeded is said all the same, while the detection
    of a release stuck after the step-down is not (followers never repeat alerts)."""
    first = add_stuck(cluster.store, "podinfo", since=time.time() - 3600 * 0.02)
    face_a = await cluster.face()
    # Verification waits up to 10 s: long enough for the Lease to change hands first.
    extra = {"recovery": {"verify_timeout": 500.0}}
    a = await replicas.start(make_settings(cluster.kubeconfig(face_a), "fluxwatch-a", extra))
    await a.wait_ready()
    await eventually(lambda: writes(face_a) == (1, 0), 10, "A writes force-reconcile")
    assert a.reasons(first) == ["StuckDetected", "RecoveryStarted"]

    lease = cluster.store.get(LEASES, "fluxwatch-system", "fluxwatch-leader-election")
    lease["spec"]["holderIdentity"] = "someone-else"
    lease["spec"]["leaseDurationSeconds"] = 600
    lease["spec"]["renewTime"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    cluster.store.update(LEASES, lease)
    await eventually(lambda: not a.leading, 5, "A steps down: the Lease is someone else's")

    second = add_stuck(cluster.store, "podinfo-2", since=time.time() - 3600 * 0.02)
    await cluster.start_helm_controller()  # processes A's force-reconcile
    await eventually(
        lambda: "RecoverySucceeded" in a.reasons(first), 10, "A says its write verified"
    )
    assert not a.leading
    assert a.reasons(first) == ["StuckDetected", "RecoveryStarted", "RecoverySucceeded"]
    ready = view(cluster.store, first).ready
    assert ready is not None and ready.status == "True"
    assert a.of(second) == [], "a follower does not detect out loud"
    assert writes(face_a) == (1, 0)
