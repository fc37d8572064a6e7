"""fluxwatch's own suspend is a debt: resumed as soon as the API allows, dry run or not.

A real daemon, the real client and the emulator over HTTPS. The API refuses writes
through the emulator's own fault hook (``faults.fail_next(..., verb="patch")``), as an
admission webhook outage would; ``dryRun`` is tested here end to end: alerts, no write,
except the resume of a suspend fluxwatch itself left behind.
"""

from __future__ import annotations

import asyncio
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

from fluxwatch.kube.helmrelease import ANNOTATION_SUSPENDED_AT

pytestmark = pytest.mark.e2e

TOGGLE = {"recovery": {"strategies": ["suspend-toggle"]}}
DRY_RUN = {"guardrail": {"dry_run": True}}
REFUSED_FOR = 8.0  # seconds the API refuses every HelmRelease patch after the suspend


async def test_a_refused_resume_is_retried_until_the_release_is_resumed(
    cluster: Cluster, replicas: Replicas
) -> None:
    """PATCHes are refused for ~8 s right after fluxwatch's suspend: more than the attempts
    and their backoff last. The resume is retried with backoff whatever the attempt count,
    the alert says the release is suspended by fluxwatch meanwhile, and the release ends
    resumed, marker gone, with one SuspendResumed saying so."""
    await cluster.start_helm_controller()
    face = await cluster.face()
    replica = await replicas.start(make_settings(cluster.kubeconfig(face), "fluxwatch-0", TOGGLE))
    await replica.wait_ready()
    key = add_stuck(cluster.store, "podinfo", since=becoming_stuck(0.5))

    await cluster.log.wait_for(key, suspended_by_fluxwatch, timeout=THRESHOLD + 5)
    face.faults.fail_next(100_000, 500, None, verb="patch", resource=HR)
    await asyncio.sleep(REFUSED_FOR)
    left = view(cluster.store, key)
    assert left.suspend is True and left.suspended_at is not None
    refused = [e for e in replica.of(key) if "refused the resume" in e.message]
    assert len(refused) == 1, replica.reasons(key)  # once per outage, not once per try
    assert f"is suspended by fluxwatch ({ANNOTATION_SUSPENDED_AT}" in refused[0].message
    face.faults.clear()

    def resumed() -> bool:
        v = view(cluster.store, key)
        return v.suspend is False and v.suspended_at is None

    await eventually(resumed, 40, "the release resumed once the API accepts patches")
    await eventually(lambda: "SuspendResumed" in replica.reasons(key), 5, "SuspendResumed")
    annotations = cluster.store.get(HR, *key)["metadata"].get("annotations") or {}
    assert ANNOTATION_SUSPENDED_AT not in annotations


async def test_dry_run_alerts_and_writes_nothing(cluster: Cluster, replicas: Replicas) -> None:
    """``dryRun``: a stuck release is detected and alerted as a live run would, with the
    dry run named as the reason nothing was done; the API saw no write."""
    await cluster.start_helm_controller()
    face = await cluster.face()
    settings = make_settings(cluster.kubeconfig(face), "fluxwatch-0", DRY_RUN)
    replica = await replicas.start(settings)
    await replica.wait_ready()
    key = add_stuck(cluster.store, "podinfo", since=time.time() - 3600 * 0.02)

    await eventually(lambda: len(replica.of(key)) >= 2, 10, "two alerts")
    assert replica.reasons(key) == ["StuckDetected", "RecoverySkipped"]
    assert "dry run" in replica.of(key)[1].message
    assert writes(face) == (0, 0)
    assert replica.writes == 0
    assert cluster.log.of(key)[1:] == []
    still = view(cluster.store, key)
    assert still.ready is not None and still.ready.status == "Unknown"


async def test_dry_run_still_resumes_an_interrupted_suspend(
    cluster: Cluster, replicas: Replicas
) -> None:
    """A release left suspended by fluxwatch (its marker) is resumed in a dry run too: the
    resume undoes fluxwatch's own earlier write, it is not a recovery. It is alerted, and it
    is the only write: the release, stuck again once resumed, gets a dry-run alert only."""
    face = await cluster.face()
    key = add_stuck(cluster.store, "podinfo", since=time.time() - 3600 * 0.02)
    cluster.store.patch(
        HR,
        *key,
        {
            "metadata": {"annotations": {ANNOTATION_SUSPENDED_AT: "2026-01-01T00:00:00Z"}},
            "spec": {"suspend": True},
        },
    )
    settings = make_settings(cluster.kubeconfig(face), "fluxwatch-0", DRY_RUN)
    replica = await replicas.start(settings)
    await replica.wait_ready()

    await eventually(lambda: len(replica.of(key)) >= 3, 10, "three alerts")
    assert replica.reasons(key) == ["SuspendResumed", "StuckDetected", "RecoverySkipped"]
    resumed = view(cluster.store, key)
    assert resumed.suspend is False and resumed.suspended_at is None
    assert writes(face) == (1, 0)  # the resume, nothing else
    assert replica.writes == 1
