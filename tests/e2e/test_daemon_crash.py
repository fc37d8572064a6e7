"""Crash safety of suspend-toggle with real ``fluxwatch run`` processes killed by SIGKILL.

FLUX-FACTS §1 lists what the seed's CronJob got wrong: "a process killed between the two
patches leaves the HR suspended forever" and "it would resume an HR that a person had
suspended on purpose". fluxwatch's suspend patch also writes ``fluxwatch.io/suspended-at``;
whichever replica leads next resumes a release carrying it, and never one without it.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from daemon_harness import (
    LEASES,
    Cluster,
    Processes,
    add_ready,
    add_stuck,
    eventually,
    running_processes,
    settings_data,
    suspended_by_fluxwatch,
    view,
    writes,
)

pytestmark = pytest.mark.e2e

PAUSE = 120.0  # suspend_pause: the kill lands inside it, and the resume comes long before
LEASE = {"lease_duration": 2.0, "renew_deadline": 1.5, "retry_period": 0.2}


@pytest.fixture
async def processes(tmp_path: Path) -> AsyncIterator[Processes]:
    async with running_processes(tmp_path) as p:
        yield p


def holder(cluster: Cluster) -> str | None:
    lease = cluster.store.get(LEASES, "fluxwatch-system", "fluxwatch-leader-election")
    return lease["spec"].get("holderIdentity")


async def test_sigkill_between_suspend_and_resume_the_next_leader_resumes(
    cluster: Cluster, processes: Processes
) -> None:
    """SIGKILL lands between the suspend and the resume patch: the release stays suspended
    (with the marker) while no fluxwatch runs; the next process to lead resumes it at once,
    before any other write, and leaves the releases a person suspended untouched."""
    now = time.time()
    stuck = add_stuck(cluster.store, "podinfo", since=now - 3600 * 0.02)
    # A person suspended these two: one in the stuck shape, one Ready. Neither is ours.
    person_stuck = add_stuck(cluster.store, "held-stuck", since=now - 3600 * 0.02, suspend=True)
    person_ready = add_ready(cluster.store, "held-ready", suspend=True)
    face = await cluster.face()
    kubeconfig = cluster.kubeconfig(face)
    extra = {
        "recovery": {"strategies": ["suspend-toggle"], "suspend_pause": PAUSE},
        "guardrail": {"backoff_base": 600.0},  # no second attempt within the test
        "leader": LEASE,
    }

    first = await processes.run("fluxwatch-a", settings_data(kubeconfig, "fluxwatch-a", extra))
    suspended = await cluster.log.wait_for(stuck, suspended_by_fluxwatch, timeout=20)
    first.kill()
    assert await first.proc.wait() == -9
    killed_at = time.monotonic()
    assert writes(face) == (1, 0), first.output()[-3000:]
    assert suspended["metadata"]["generation"] == 2

    # Nobody resumes it while no fluxwatch runs: the marker is what will tell the next leader.
    left = view(cluster.store, stuck)
    assert left.suspend is True
    assert left.suspended_at is not None
    assert left.resource_version == suspended["metadata"]["resourceVersion"]

    second = await processes.run("fluxwatch-b", settings_data(kubeconfig, "fluxwatch-b", extra))

    led_at: list[float] = []

    def resumed() -> bool:
        if not led_at and holder(cluster) == "fluxwatch-b":
            led_at.append(time.monotonic())
        v = view(cluster.store, stuck)
        return v.suspend is False and v.suspended_at is None

    await eventually(resumed, 60, "the second process resumes the release")
    # It waited for the dead leader's Lease to expire (2 s on its own clock), then resumed
    # first thing on leading, long before the pause the first process was sleeping in.
    # Measured from its taking the Lease, not from its start: a Python process starting
    # on a loaded machine takes seconds of its own.
    assert led_at, "the resume came before the second process held the Lease"
    assert time.monotonic() - led_at[0] < 10, time.monotonic() - led_at[0]
    assert time.monotonic() - killed_at < PAUSE / 2
    assert writes(face) == (2, 0), second.output()[-3000:]
    assert second.proc.returncode is None, second.output()[-3000:]

    # The resume was one patch clearing both the suspend and the marker.
    versions = cluster.log.of(stuck)
    resume = versions[-1]
    assert resume["spec"]["suspend"] is False
    assert "fluxwatch.io/suspended-at" not in (resume["metadata"].get("annotations") or {})
    assert [o["metadata"]["generation"] for o in versions] == [1, 2, 3]

    # The releases a person suspended were never written to, by either process.
    for key in (person_stuck, person_ready):
        assert cluster.log.of(key)[1:] == [], cluster.log.of(key)
        held = view(cluster.store, key)
        assert held.suspend is True
        assert held.suspended_at is None


async def test_sigterm_between_suspend_and_resume_resumes_before_exit(
    cluster: Cluster, processes: Processes
) -> None:
    """SIGTERM in the pause of a suspend-toggle: the process lets the resume run, then
    releases its Lease (the next replica need not wait for it to expire) and exits 0."""
    stuck = add_stuck(cluster.store, "podinfo", since=time.time() - 3600 * 0.02)
    face = await cluster.face()
    kubeconfig = cluster.kubeconfig(face)
    extra = {
        "shutdown_timeout": 10.0,
        "recovery": {"strategies": ["suspend-toggle"], "suspend_pause": 2.0},
        "guardrail": {"backoff_base": 600.0},
        "leader": LEASE,
    }
    first = await processes.run("fluxwatch-a", settings_data(kubeconfig, "fluxwatch-a", extra))
    await cluster.log.wait_for(stuck, suspended_by_fluxwatch, timeout=20)
    first.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(first.proc.wait(), 15) == 0, first.output()[-3000:]

    resumed = view(cluster.store, stuck)
    assert resumed.suspend is False
    assert resumed.suspended_at is None
    assert writes(face) == (2, 0)
    lease = cluster.store.get(LEASES, "fluxwatch-system", "fluxwatch-leader-election")
    assert lease["spec"]["holderIdentity"] in ("", None)  # released on the way out
