"""The guardrail's counts survive a change of leader (DESIGN "Guardrail state").

Two in-process replicas on one emulated cluster, each on its own HTTPS face so the
emulator's counters say who wrote what. The first leader spends the budget and the
attempts; the second takes over its counts from the leader Lease and writes nothing it
would not have written had the first gone on leading.
"""

from __future__ import annotations

import time

import pytest
from daemon_harness import (
    LEASES,
    Cluster,
    Replicas,
    add_stuck,
    eventually,
    make_settings,
    never_two_leaders,
    writes,
)

from fluxwatch.engine.guardrail import LEASE_ANNOTATION, GuardrailState, load_state

pytestmark = pytest.mark.e2e

# Durations are compressed 50x by the harness: window 600 s here is 12 s there.
EXTRA = {
    "recovery": {"strategies": ["suspend-toggle"]},  # does not clear the v1.x stuck state
    "guardrail": {"max_recoveries": 2, "max_attempts": 1, "window": 30000.0},
}


@pytest.mark.parametrize("how", ["stopped", "cut-off"])
async def test_a_new_leader_goes_on_counting(
    cluster: Cluster, replicas: Replicas, how: str
) -> None:
    """A acts on two of three stuck releases (``maxRecoveries: 2``), both fail and are out
    of attempts (``maxAttempts: 1``), the third waits for the budget. A goes away (clean
    stop, or its API face dies); B leads with A's counts: the same two are out of attempts,
    the budget is spent, and B starts nothing and writes nothing."""

    def handed() -> GuardrailState:
        lease = cluster.store.get(LEASES, "fluxwatch-system", "fluxwatch-leader-election")
        return load_state(lease["metadata"]["annotations"][LEASE_ANNOTATION])

    await cluster.start_helm_controller()
    since = time.time() - 3600 * 0.02
    stuck = [add_stuck(cluster.store, f"podinfo-{i}", since=since) for i in range(3)]
    face_a, face_b = await cluster.face(), await cluster.face()
    a = await replicas.start(make_settings(cluster.kubeconfig(face_a), "fluxwatch-a", EXTRA))
    await a.wait_ready()
    b = await replicas.start(make_settings(cluster.kubeconfig(face_b), "fluxwatch-b", EXTRA))
    await eventually(
        lambda: bool(b.daemon.informers) and all(i.synced.is_set() for i in b.daemon.informers),
        10,
        "replica B synced",
    )

    with never_two_leaders([a, b]):
        await eventually(
            lambda: sum("RecoveryFailed" in a.reasons(k) for k in stuck) == 2, 20, "A fails twice"
        )
        acted = [k for k in stuck if a.reasons(k)]
        assert len(acted) == 2
        assert writes(face_a) == (4, 0)  # two suspend-toggles: suspend and resume each
        # A's renewals (every 0.2 s here) carry what it reported since: the hand-over is at
        # most one renewal behind, and the write-ahead before each action keeps the budget
        # and attempts exact.
        await eventually(lambda: len(handed().exhausted) == 2, 5, "A's Lease says exhausted")
        assert len(handed().spent) == 2
        assert sorted(k for k, _n, _at in handed().attempts) == sorted(acted)

        if how == "stopped":
            assert await a.stop() == 0
        else:
            await face_a.stop()
            await eventually(lambda: not a.leading, 5, "A steps down when it cannot renew")
        await eventually(lambda: b.leading, 10, "B takes over")

        # Becoming leader dispatched the due releases at once (synchronously): nothing
        # was started, because B counts from A's state.
        tracker = b.daemon.tracker
        assert tracker is not None
        assert tracker.busy == ()
        assert tracker.guardrail.budget_left(time.time()) == 0
        assert [tracker.guardrail.attempts(k) for k in acted] == [1, 1]
        assert not a.leading
        assert not any(e.reason == "RecoverySkipped" for e in b.events), b.reasons()
    assert writes(face_b) == (0, 0)
    assert b.writes == 0
