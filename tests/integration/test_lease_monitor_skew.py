"""The Flux Lease monitor over real HTTP against the simulated helm-controller, whose
node clock is set apart from fluxwatch's: skew must neither invent nor hide an outage.

The controller runs Flux's 35s/30s/5s compressed 20 times (its Lease says 2 s, it
renews every 0.25 s); the monitor's grace is 1 s.
"""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from fluxwatch.engine.clock import Clock
from fluxwatch.engine.config import LeaseSettings
from fluxwatch.engine.leases import (
    ControllerLeaderless,
    Finding,
    LeaderChanged,
    LeaseMonitor,
    LeaseWatch,
)
from fluxwatch.kube.client import LEASES, KubeClient
from fluxwatch.kube.informer import Informer
from fluxwatch.kube.lease import lease_view
from fluxwatch.sim.apiserver import ApiServer
from fluxwatch.sim.helmcontroller import LeaseHolder, LeaseTimings

SCALE = 0.05


class Findings(list[Finding]):
    """What the monitor reported; ``arrived`` is set by the first."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = asyncio.Event()

    def __call__(self, finding: Finding) -> None:
        self.append(finding)
        self.arrived.set()


async def _watch(
    client: KubeClient, holder: LeaseHolder, seconds: float
) -> tuple[list[Finding], LeaseWatch, bool]:
    """Watch the Flux Leases while ``holder`` runs ``seconds``; whether it still leads."""
    found: list[Finding] = []
    watch = LeaseWatch(LeaseMonitor(LeaseSettings(grace=1.0)), Clock(), found.append)
    informer = Informer(client, LEASES, lease_view, watch.handle, namespace="flux-system")
    task = asyncio.create_task(informer.run())
    await holder.start()
    await asyncio.sleep(seconds)
    leading = holder.leading.is_set()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return found, watch, leading


@pytest.mark.parametrize("skew", [-20.0, -120.0, 3600.0])
async def test_a_renewing_controller_is_never_leaderless_whatever_its_clock_says(
    apiserver: ApiServer, client: KubeClient, skew: float
) -> None:
    """20 s or two minutes behind (every renewTime arrives long expired) or an hour
    ahead: the Lease keeps changing, so the controller has a leader."""
    holder = LeaseHolder(
        apiserver.store,
        "helm-controller",
        timings=LeaseTimings(),
        time_scale=SCALE,
        clock=lambda: time.time() + skew,
        rng=random.Random(1),
    )
    try:
        found, watch, leading = await _watch(client, holder, 4.0)
    finally:
        await holder.stop(release=False)
    watch.close()
    assert leading
    assert found == []


async def test_a_stopped_controller_whose_clock_ran_ahead_is_leaderless_in_time(
    apiserver: ApiServer, client: KubeClient
) -> None:
    """Its last renewTime lies an hour in the future; it is reported once its 2 s and
    the 1 s grace have passed on fluxwatch's clock, not an hour later."""
    holder = LeaseHolder(
        apiserver.store,
        "helm-controller",
        timings=LeaseTimings(),
        time_scale=SCALE,
        clock=lambda: time.time() + 3600,
        rng=random.Random(2),
    )
    found = Findings()
    watch = LeaseWatch(LeaseMonitor(LeaseSettings(grace=1.0)), Clock(), found)
    informer = Informer(client, LEASES, lease_view, watch.handle, namespace="flux-system")
    task = asyncio.create_task(informer.run())
    try:
        await holder.start()
        await asyncio.sleep(1.0)
        holder.drop()  # renewals fail from now on and no pod comes back
        stopped = time.monotonic()
        async with asyncio.timeout(10):
            await found.arrived.wait()
        took = time.monotonic() - stopped
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await holder.stop(release=False)
        watch.close()
    [gone] = found
    assert isinstance(gone, ControllerLeaderless) and gone.holder == holder.identity
    # The last renewal landed within a retry period of the drop: 2 s + 1 s after it.
    assert 2.5 <= took <= 4.5


async def test_a_lease_recreated_by_another_pod_is_a_leader_change(
    apiserver: ApiServer, client: KubeClient
) -> None:
    """Deleted, then created afresh by a new pod (leaseTransitions 0): the monitor has
    no deadline while it is gone and reports the new holder as a change."""
    first = LeaseHolder(apiserver.store, "helm-controller", time_scale=SCALE, rng=random.Random(3))
    found = Findings()
    watch = LeaseWatch(LeaseMonitor(LeaseSettings(grace=1.0)), Clock(), found)
    informer = Informer(client, LEASES, lease_view, watch.handle, namespace="flux-system")
    task = asyncio.create_task(informer.run())
    second = LeaseHolder(apiserver.store, "helm-controller", time_scale=SCALE, rng=random.Random(4))
    try:
        await first.start()
        await asyncio.sleep(0.5)
        await first.stop(release=False)
        apiserver.store.delete(
            "leases.coordination.k8s.io", "flux-system", "helm-controller-leader-election"
        )
        await asyncio.sleep(4.0)  # longer than the Lease's 2 s and the grace: no Lease, no alarm
        assert found == []
        await second.start()
        async with asyncio.timeout(5):
            await found.arrived.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await second.stop(release=False)
        watch.close()
    [change] = found
    assert isinstance(change, LeaderChanged)
    assert (change.old, change.new, change.transitions) == (first.identity, second.identity, 0)
