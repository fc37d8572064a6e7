"""``watch.namespaces`` with more namespaces than the client's pool has connections.

Each watched namespace is a watch of its own, and a watch holds its HTTP/1.1 connection
for its whole life. kubernetes_asyncio's pool has 100 connections; with 120 namespaces the
watches took all of them, every other request (the leader Lease, the lists, the writes)
waited for one and failed after the connect timeout, and the daemon never led, synced or
recovered anything, and ``fluxwatch scan`` waited on its reads of Helm's storage. Both now
give each watch a connection of its own.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from daemon_harness import (
    Cluster,
    Processes,
    add_stuck,
    becoming_stuck,
    make_settings,
    running_processes,
    settings_data,
    suspended_by_fluxwatch,
)

from fluxwatch.kube.client import REQUEST_CONNECTIONS
from fluxwatch.scan import run_scan

pytestmark = pytest.mark.e2e


@pytest.fixture
async def processes(tmp_path: Path) -> AsyncIterator[Processes]:
    async with running_processes(tmp_path) as p:
        yield p


async def test_more_watched_namespaces_than_pooled_connections_still_recover(
    cluster: Cluster, processes: Processes
) -> None:
    namespaces = ["apps"] + [f"team-{i:03}" for i in range(REQUEST_CONNECTIONS + 20)]
    face = await cluster.face()
    kubeconfig = cluster.kubeconfig(face)
    extra = {
        "watch": {"namespaces": namespaces},
        "recovery": {"strategies": ["suspend-toggle"], "suspend_pause": 120.0},
    }
    daemon = await processes.run("fluxwatch-a", settings_data(kubeconfig, "fluxwatch-a", extra))
    key = add_stuck(cluster.store, "podinfo", since=becoming_stuck(1.0))
    # Led, synced all 121 namespaces, judged the release stuck and wrote: the pool had room.
    await cluster.log.wait_for(key, suspended_by_fluxwatch, timeout=40)
    assert daemon.proc.returncode is None, daemon.output()[-3000:]


async def test_a_scan_of_more_namespaces_than_pooled_connections_reads_helm_storage(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """``scan`` runs an informer per namespace too: past the pool, its reads of Helm's
    storage waited for a connection the watches held (30 s, then a connection error)."""
    key = add_stuck(cluster.store, "podinfo", since=time.time() - 3600)
    face = await cluster.face()
    namespaces = [f"team-{i:03}" for i in range(REQUEST_CONNECTIONS + 20)] + ["apps"]
    settings = make_settings(
        cluster.kubeconfig(face), "scan", {"watch": {"namespaces": namespaces}}
    )
    assert await run_scan(settings, output="json", sync_deadline=20.0) == 0
    [row] = orjson.loads(capsys.readouterr().out)["releases"]
    assert (row["namespace"], row["name"]) == key
    assert (row["verdict"], row["helmStatus"]) == ("stuck", "deployed")
