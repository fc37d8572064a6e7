"""The recovery ladder end to end: a real daemon, the real client, the emulator over HTTPS and
the simulated helm-controller v1.x with the stuck bug (FLUX-FACTS §1, §3).

FLUX-FACTS §3: suspend/resume does not clear the stuck state in current helm-controller
(``suspend_clears_stuck=False``) but did in older ones (``True``); a ``/status`` write of
``Released=True`` and ``Ready=True`` clears it directly. The ladder is configured without
force-reconcile (which always clears it, §3) so that suspend-toggle is the step that may
fail: ``recovery.strategies: [suspend-toggle, status-correct]``, ``status_correct: true``.
"""

from __future__ import annotations

import time

import pytest
from daemon_harness import (
    HR,
    THRESHOLD,
    Cluster,
    Replicas,
    add_stuck,
    becoming_stuck,
    eventually,
    make_settings,
    suspended_by_fluxwatch,
    view,
    writes,
)

from fluxwatch.kube.client import KubeApiError, KubeClient
from fluxwatch.kube.helmrelease import ANNOTATION_SUSPENDED_AT
from fluxwatch.kube.patch import HelmReleaseWriter
from fluxwatch.notify.event import Meta

pytestmark = pytest.mark.e2e

LADDER = {"recovery": {"strategies": ["suspend-toggle", "status-correct"], "status_correct": True}}


@pytest.mark.parametrize(
    "suspend_clears_stuck", [False, True], ids=["v1-suspend-keeps-stuck", "old-suspend-clears"]
)
async def test_ladder_escalates_when_a_step_does_not_verify(
    cluster: Cluster, replicas: Replicas, suspend_clears_stuck: bool
) -> None:
    """A release that gets stuck while the daemon watches is recovered through the ladder.

    With helm-controller v1.x (suspend does not clear the stuck state, FLUX-FACTS §3)
    suspend-toggle fails to verify within ``verify_timeout`` and status-correct recovers it;
    with the older behaviour suspend-toggle itself recovers it. Either way the release ends
    resumed without fluxwatch's marker, the emulator saw exactly the writes the ladder makes,
    and the first write followed the threshold crossing at once (detection delay metric).
    """
    await cluster.start_helm_controller(suspend_clears_stuck=suspend_clears_stuck)
    face = await cluster.face()
    replica = await replicas.start(make_settings(cluster.kubeconfig(face), "fluxwatch-0", LADDER))
    await replica.wait_ready()

    key = add_stuck(cluster.store, "podinfo", since=becoming_stuck(1.0))
    want = ["StuckDetected", "RecoveryStarted"]
    if not suspend_clears_stuck:
        want += ["RecoveryFailed", "RecoveryStarted"]
    want += ["RecoverySucceeded"]
    await eventually(lambda: len(replica.of(key)) >= len(want), THRESHOLD + 10, "the ladder")

    events = replica.of(key)
    assert [e.reason for e in events] == want, [e.message for e in events]
    strategies = [e.metadata.get(Meta.STRATEGY) for e in events[1:]]
    if suspend_clears_stuck:
        assert strategies == ["suspend-toggle", "suspend-toggle"]
    else:
        assert strategies == ["suspend-toggle"] * 2 + ["status-correct"] * 2
        failed = events[2]
        assert failed.metadata[Meta.NEXT_STRATEGY] == "status-correct"
        assert "not Ready=True within" in failed.metadata[Meta.ERROR]

    # The writes the emulator served: suspend and resume, then (v1.x) one /status write.
    patches, status_patches = writes(face)
    assert (patches, status_patches) == ((2, 1) if not suspend_clears_stuck else (2, 0))
    assert replica.writes == patches + status_patches

    # Crash safety as written: the suspend patch carries the marker, the resume clears both.
    history = cluster.log.of(key)
    suspended = [o for o in history if o["spec"].get("suspend")]
    assert suspended and all(suspended_by_fluxwatch(o) for o in suspended)
    final = view(cluster.store, key)
    assert final.suspend is False
    assert final.suspended_at is None
    assert ANNOTATION_SUSPENDED_AT not in (
        cluster.store.get(HR, *key)["metadata"].get("annotations") or {}
    )
    assert final.ready is not None and final.ready.status == "True"
    assert final.ready.reason == (
        "InstallSucceeded" if not suspend_clears_stuck else "UpgradeSucceeded"
    )

    # The first write came right after the threshold passed (proven exactly at tracker level).
    registry = replica.daemon.metrics.registry
    assert registry.get_sample_value("fluxwatch_detection_delay_seconds_count") == 1
    delay = registry.get_sample_value("fluxwatch_detection_delay_seconds_sum")
    assert delay is not None and delay < 2.0, delay


async def test_ladder_stops_when_a_person_suspends_the_release_meanwhile(
    cluster: Cluster, replicas: Replicas
) -> None:
    """A person suspends the release while fluxwatch waits for its suspend-toggle to verify.

    FLUX-FACTS §3: "The flux CLI refuses to reconcile a suspended HR; so should fluxwatch."
    The next step of the ladder is decided afresh on the release as it is now: suspended
    by a person, it is no longer fluxwatch's to recover, so no status-correct is written
    and the person's suspend stays.
    """
    await cluster.start_helm_controller()
    face = await cluster.face()
    replica = await replicas.start(make_settings(cluster.kubeconfig(face), "fluxwatch-0", LADDER))
    await replica.wait_ready()
    key = add_stuck(cluster.store, "podinfo", since=becoming_stuck(0.5))

    resumed = await cluster.log.wait_for(
        key, lambda o: o["metadata"]["generation"] == 3, timeout=THRESHOLD + 5
    )
    assert resumed["spec"]["suspend"] is False
    cluster.store.patch(HR, *key, {"spec": {"suspend": True}})
    await eventually(lambda: len(replica.of(key)) >= 3, 10, "three events")
    # The attempt has ended: no write of it can follow (rather than waiting a while to see).
    tracker = replica.daemon.tracker
    assert tracker is not None
    await eventually(lambda: tracker.busy == (), 5, "the attempt ended")

    assert replica.reasons(key) == ["StuckDetected", "RecoveryStarted", "RecoveryFailed"]
    failed = replica.of(key)[-1]
    assert not failed.metadata.get(Meta.NEXT_STRATEGY)
    assert "suspended by a person" in failed.message
    assert writes(face) == (2, 0)  # suspend and resume; no status write
    held = view(cluster.store, key)
    assert held.suspend is True
    assert held.suspended_at is None
    assert held.ready is not None and held.ready.status == "Unknown"


async def test_status_correct_carries_the_precondition_of_the_view_judged(
    cluster: Cluster,
) -> None:
    """DESIGN: status-correct writes ``/status`` "with a resourceVersion precondition" of the
    view the decision was made on (FLUX-FACTS §3: the merge patch replaces the whole
    conditions list). When the release changed after it was judged stuck (here a person
    suspended it), the write is refused with 409 and nothing is written."""
    face = await cluster.face()
    key = add_stuck(cluster.store, "podinfo", since=becoming_stuck(-60))
    judged = view(cluster.store, key)
    cluster.store.patch(HR, *key, {"spec": {"suspend": True}})
    async with await KubeClient.from_config(cluster.kubeconfig(face)) as client:
        with pytest.raises(KubeApiError) as raised:
            await HelmReleaseWriter(client).correct_status(judged, time.time())
    assert raised.value.conflict
    after = view(cluster.store, key)
    assert after.ready is not None and after.ready.status == "Unknown"
    assert after.suspend is True
