"""The daemon when the API server pushes back on a recovery's writes: a real daemon,
the real client and the emulator over HTTPS, its fault hook answering HelmRelease
patches with API Priority and Fairness' 429 and ``Retry-After``.

Each write of a suspend-toggle (the suspend, then the resume) is sent again after
the server's Retry-After, as client-go does, and the recovery goes through: no
RecoveryFailed, no release left suspended, the throttled tries counted by the server.
A write whose connection is cut after the server applied it (its answer lost) leaves
no release suspended either.
"""

from __future__ import annotations

import asyncio

import pytest
from daemon_harness import (
    HR,
    HR_WRITES,
    THRESHOLD,
    Cluster,
    Replicas,
    add_stuck,
    becoming_stuck,
    eventually,
    make_settings,
    suspended_by_fluxwatch,
    view,
)

from fluxwatch.sim import control

pytestmark = pytest.mark.e2e

# suspend-toggle alone, a pause of 3 s between suspend and resume (time to queue the
# resume's 429s once the suspend is seen), and time to verify after the retries.
TOGGLE = {
    "recovery": {"strategies": ["suspend-toggle"], "suspend_pause": 3.0, "verify_timeout": 20.0}
}


async def test_a_throttled_suspend_toggle_waits_out_retry_after_and_recovers(
    cluster: Cluster, replicas: Replicas
) -> None:
    await cluster.start_helm_controller(suspend_clears_stuck=True)
    face = await cluster.face()
    replica = await replicas.start(make_settings(cluster.kubeconfig(face), "fluxwatch-0", TOGGLE))
    await replica.wait_ready()
    face.faults.fail_next(2, 429, 1, verb="patch", resource=HR)
    key = add_stuck(cluster.store, "podinfo", since=becoming_stuck(0.5))

    await cluster.log.wait_for(key, suspended_by_fluxwatch, timeout=THRESHOLD + 10)
    assert face.stats.requests[HR_WRITES] == 3, "the suspend: two 429s, then served"
    face.faults.fail_next(2, 429, 1, verb="patch", resource=HR)

    want = ["StuckDetected", "RecoveryStarted", "RecoverySucceeded"]
    await eventually(lambda: len(replica.of(key)) >= len(want), 30, "the recovery")
    assert replica.reasons(key) == want, [e.message for e in replica.of(key)]
    assert face.stats.requests[HR_WRITES] == 6, "the resume: two 429s, then served"
    final = view(cluster.store, key)
    assert final.suspend is False and final.suspended_at is None
    assert final.ready is not None and final.ready.status == "True"


@pytest.mark.parametrize("lost", ["suspend", "resume"])
async def test_a_suspend_toggle_whose_answer_is_lost_leaves_nothing_suspended(
    cluster: Cluster, replicas: Replicas, lost: str
) -> None:
    """The connection is cut after the server applied a write of the suspend-toggle (a
    dying server, a proxy): fluxwatch cannot know the write landed. Whichever it was,
    the release ends resumed, its marker gone."""
    await cluster.start_helm_controller(suspend_clears_stuck=True)
    face = await cluster.face()
    replica = await replicas.start(make_settings(cluster.kubeconfig(face), "fluxwatch-0", TOGGLE))
    await replica.wait_ready()
    if lost == "suspend":
        face.faults.cut_next(1, verb="patch", resource=HR)
    key = add_stuck(cluster.store, "podinfo", since=becoming_stuck(0.5))
    await cluster.log.wait_for(key, suspended_by_fluxwatch, timeout=THRESHOLD + 10)
    if lost == "resume":
        face.faults.cut_next(1, verb="patch", resource=HR)

    def resumed() -> bool:
        v = view(cluster.store, key)
        return v.suspend is False and v.suspended_at is None

    await eventually(resumed, 30, "the release resumed, its marker gone")
    assert control.state(face)["cuts"] == [], "the cut happened"
    await asyncio.sleep(2.0)  # and it stays so: nothing suspends it again unasked
    assert resumed(), replica.reasons(key)
