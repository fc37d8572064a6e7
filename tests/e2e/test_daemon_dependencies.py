"""Dependency impact end to end (issue 12): what a stuck release blocks through dependsOn.

The seed's incident: one stuck ``bp-cilium``-style release holds thirty dependents,
which helm-controller keeps at Ready=False (DependencyNotReady). fluxwatch's
StuckDetected says how many releases wait for it and which, the blocked gauge counts
them, scan lists them, and the count falls to zero once the root is recovered.
"""

from __future__ import annotations

import json
import time

import pytest
from daemon_harness import (
    APPS,
    HR,
    TIME_SCALE,
    Cluster,
    Replicas,
    _component,
    add_stuck,
    becoming_stuck,
    eventually,
    make_settings,
)

from fluxwatch.kube.fields import format_rfc3339
from fluxwatch.notify.event import Meta
from fluxwatch.scan import run_scan
from fluxwatch.sim.helmcontroller import Desired, ready_status
from fluxwatch.sim.scenarios import helmrelease

pytestmark = pytest.mark.e2e


def add_waiting(cluster: Cluster, name: str, on: str) -> tuple[str, str]:
    """A release helm-controller holds back until ``on`` is Ready, as it writes it."""
    obj = helmrelease(_component(name, APPS))
    obj["spec"]["dependsOn"] = [{"name": on}]
    stamp = format_rfc3339(time.time() - 600 * TIME_SCALE)
    obj["status"] = {
        "observedGeneration": 1,
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "DependencyNotReady",
                "message": f"dependency '{APPS}/{on}' is not ready",
                "observedGeneration": 1,
                "lastTransitionTime": stamp,
            }
        ],
    }
    cluster.store.create(HR, obj)
    return APPS, name


async def test_stuck_root_names_and_counts_what_it_blocks(
    cluster: Cluster, replicas: Replicas, capsys: pytest.CaptureFixture[str]
) -> None:
    """bp-root stuck; ten releases dependsOn it and twenty more on those: StuckDetected
    says thirty wait for it, the gauge says 30 while it is stuck (no helm-controller
    here, so no recovery verifies) and 0 once a person has it Ready."""
    root = add_stuck(cluster.store, "bp-root", since=becoming_stuck(2.0))
    for i in range(10):
        add_waiting(cluster, f"direct-{i}", "bp-root")
        for j in range(2):
            add_waiting(cluster, f"second-{i}-{j}", f"direct-{i}")
    face = await cluster.face()
    replica = await replicas.start(make_settings(cluster.kubeconfig(face), "fluxwatch-0"))
    await replica.wait_ready()
    registry = replica.daemon.metrics.registry
    await eventually(lambda: "StuckDetected" in replica.reasons(root), 15, "StuckDetected")
    [detected] = [e for e in replica.of(root) if e.reason == "StuckDetected"]
    assert detected.metadata[Meta.BLOCKED] == "30"
    assert "30 HelmReleases wait for it through dependsOn: apps/direct-0, " in detected.message
    assert registry.get_sample_value("fluxwatch_blocked_helmreleases") == 30
    # scan lists them too, next to the stuck release's incident.
    capsys.readouterr()
    assert await run_scan(make_settings(cluster.kubeconfig(face), "scan"), output="json") == 0
    rows = {(r["namespace"], r["name"]): r for r in json.loads(capsys.readouterr().out)["releases"]}
    assert len(rows[root]["blocks"]) == 30 and "apps/second-9-1" in rows[root]["blocks"]
    assert rows[root]["incident"].startswith("inc-")
    assert rows[(APPS, "direct-0")]["blocks"] == []  # waiting, not stuck: blocks nothing
    # A person gets bp-root installed: Ready=True, nothing blocked any more.
    obj = cluster.store.get(HR, *root)
    at = time.time()
    obj["status"] = ready_status(
        Desired.of(obj), generation=1, version=1, action="install", first=at, last=at, transition=at
    )
    cluster.store.update(HR, obj, subresource="status")
    await eventually(
        lambda: registry.get_sample_value("fluxwatch_blocked_helmreleases") == 0, 10, "0"
    )
