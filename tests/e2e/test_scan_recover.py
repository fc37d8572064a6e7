"""``fluxwatch scan --recover``: one pass that recovers what it finds stuck, through the
same Recovery and Announcer as the daemon, against the emulator over HTTPS and the
simulated helm-controller v1.x with the stuck bug (FLUX-FACTS §1, §3)."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from daemon_harness import Cluster, add_ready, add_stuck, make_settings, view, writes

from fluxwatch.scan import run_scan

pytestmark = pytest.mark.e2e


async def test_scan_recover_recovers_the_stuck_release_and_prints_its_events(
    cluster: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await cluster.start_helm_controller()
    face = await cluster.face()
    stuck = add_stuck(cluster.store, "podinfo", since=time.time() - 3600)
    add_ready(cluster.store, "healthy")
    settings = make_settings(cluster.kubeconfig(face), "fluxwatch-scan")
    capsys.readouterr()

    assert await run_scan(settings, output="json", recover=True) == 0

    doc = orjson.loads(capsys.readouterr().out)
    verdicts = {row["name"]: row["verdict"] for row in doc["releases"]}
    assert verdicts == {"podinfo": "stuck", "healthy": "ready"}
    events = doc["events"]
    assert [e["reason"] for e in events] == [
        "StuckDetected",
        "RecoveryStarted",
        "RecoverySucceeded",
    ]
    assert {e["involvedObject"]["name"] for e in events} == {"podinfo"}
    assert events[0]["metadata"]["revision"] == "6.7.1"
    assert events[0]["metadata"]["release"] == "podinfo"
    assert events[1]["metadata"]["strategy"] == "force-reconcile"
    assert events[2]["message"].startswith(
        "HelmRelease apps/podinfo is Ready again: fluxwatch recovered it with strategy "
        "force-reconcile in "
    )
    # One patch (requestedAt and forceAt), verified through the watch: Ready=True.
    assert writes(face) == (1, 0)
    final = view(cluster.store, stuck)
    assert final.ready is not None and final.ready.status == "True"
