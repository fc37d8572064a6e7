"""The blip's other casualties end to end (issue 12), on the ``blip-failures`` scenario.

An API blip during an upgrade wave leaves two releases stuck (the Lease lost mid-
upgrade) and five failed: three Stalled RetriesExceeded, two Ready=False UpgradeFailed
with nothing stored. Every cause is gone at the end. The failures happened inside the
stuck releases' incident window, so they are that incident's casualties: announced
(CasualtyDetected, with the incident and the command a person would run) and, with the
opt-in ``recovery.reset``, reset under the guardrail and verified through the watch.
"""

from __future__ import annotations

import asyncio

import pytest
from daemon_harness import (
    HR,
    TIME_SCALE,
    Cluster,
    Replicas,
    eventually,
    make_settings,
    view,
)

from fluxwatch.kube.helmrelease import ANNOTATION_RESET_AT
from fluxwatch.notify.event import Meta
from fluxwatch.sim import scenarios

pytestmark = pytest.mark.e2e


async def _blip(cluster: Cluster) -> scenarios.ScenarioRun:
    run = await scenarios.start("blip-failures", cluster.store, time_scale=TIME_SCALE)
    async with asyncio.timeout(120):
        await run.wait()
    assert len(run.expected_stuck) == 2 and len(run.expected_failed) == 5
    return run


@pytest.mark.parametrize("reset", [True, False])
async def test_a_blip_leaves_casualties_and_the_opt_in_reset_recovers_them(
    cluster: Cluster, replicas: Replicas, reset: bool
) -> None:
    run = await _blip(cluster)
    try:
        face = await cluster.face()
        settings = make_settings(
            cluster.kubeconfig(face), "fluxwatch-0", {"recovery": {"reset": reset}}
        )
        replica = await replicas.start(settings)
        await replica.wait_ready()
        failed, stuck = set(run.expected_failed), set(run.expected_stuck)

        def named(reason: str) -> dict[tuple[str, str], dict[str, str]]:
            return {
                (e.involved_object.namespace, e.involved_object.name): dict(e.metadata)
                for e in replica.events
                if e.reason == reason
            }

        await eventually(lambda: set(named("CasualtyDetected")) == failed, 30, "casualties")
        await eventually(lambda: set(named("RecoverySucceeded")) >= stuck, 30, "stuck recovered")
        incidents = {meta[Meta.INCIDENT] for meta in named("CasualtyDetected").values()}
        incidents |= {meta[Meta.INCIDENT] for meta in named("StuckDetected").values()}
        assert len(incidents) == 1, incidents  # the stuck ones and the casualties: one blip
        if reset:
            await eventually(
                lambda: set(named("RecoverySucceeded")) >= failed | stuck, 30, "all recovered"
            )
            for key in failed:
                assert named("RecoverySucceeded")[key][Meta.STRATEGY] == "reset"
                ready = view(cluster.store, key).ready
                assert ready is not None and ready.status == "True"
        else:
            for key in failed:
                event = next(
                    e
                    for e in replica.events
                    if e.reason == "CasualtyDetected" and e.involved_object.name == key[1]
                )
                assert f"flux reconcile hr {key[1]} -n {key[0]} --reset" in event.message
                annotations = cluster.store.get(HR, *key)["metadata"].get("annotations") or {}
                assert ANNOTATION_RESET_AT not in annotations  # never touched
            assert replica.reasons().count("CasualtyDetected") == len(failed)  # once each
    finally:
        await run.stop()
